// Finding a configured credential by the NAME given on the command line (kept light: `status` uses it).
import { CreddError } from "../errors.js";
import { closest } from "./suggest.js";
import type { Config, CredentialConfig } from "./types.js";

export function requireCredential(config: Config, name: string | undefined): CredentialConfig {
  if (!name) throw new CreddError("USAGE", "missing credential NAME");
  const cred = config.credentials.find((c) => c.name === name);
  if (!cred) {
    const names = config.credentials.map((c) => c.name);
    const near = closest(name, names);
    throw new CreddError(
      "NOT_FOUND",
      `no credential named "${name}" in ${config.file}${near ? ` (did you mean ${near}?)` : ""}; configured: ${names.join(", ") || "none"}`,
    );
  }
  return cred;
}
