// Secrets live in files (systemd LoadCredential= or a 0600 file), never in the config itself.
// Paths are resolved when the config loads; the files are read only when a secret is needed.

import fs from "node:fs";
import path from "node:path";
import { ConfigError } from "../errors.js";
import { filePath, str } from "./checks.js";
import type { At, Issues } from "./issues.js";

/** A secret larger than this is not a password: refuse rather than read a log file into memory. */
const MAX_SECRET_BYTES = 64 * 1024;

/**
 * An absolute path stays as it is. A relative one is resolved against $CREDENTIALS_DIRECTORY when
 * systemd set it (LoadCredential=NAME:... makes `NAME` work), else against `base` (the config
 * file's folder when called by the loader; the working directory otherwise).
 */
export function resolveSecretPath(p: string, env: NodeJS.ProcessEnv = process.env, base: string = process.cwd()): string {
  if (path.isAbsolute(p)) return path.normalize(p);
  const credentials = env.CREDENTIALS_DIRECTORY;
  return path.resolve(credentials ? credentials : base, p);
}

/** Config reader for a `*_password_file` key: a path string, resolved, not read. */
export function secretPath(ix: Issues, at: At, v: unknown, base: string, env: NodeJS.ProcessEnv): string | undefined {
  const s = str(ix, at, v, `e.g. ${at.label.split(".").pop() ?? "password_file"}: /run/credentials/credd.service/NAME`);
  if (s === undefined) return undefined;
  if (path.isAbsolute(s) || !env.CREDENTIALS_DIRECTORY) return filePath(ix, at, s, base, "");
  return resolveSecretPath(s, env, base);
}

/**
 * Reads a secret file and drops one trailing newline (`echo secret > file` adds one).
 * Errors name the config key and the file, never any of the content.
 */
export function readSecretFile(p: string, what: string, env: NodeJS.ProcessEnv = process.env): string {
  const file = resolveSecretPath(p, env);
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) throw new ConfigError(file, what, "the secret file is not a regular file", `point ${what} at a file`);
    if (stat.size > MAX_SECRET_BYTES)
      throw new ConfigError(file, what, `the secret file is ${stat.size} bytes, more than a secret should be`, `point ${what} at the file holding only the secret`);
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const [problem, fix] =
      code === "ENOENT"
        ? ["the secret file does not exist", `create it, or correct ${what}; under systemd, LoadCredential=NAME:/path and ${what}: NAME`]
        : code === "EACCES" || code === "EPERM"
          ? ["the secret file cannot be read: permission denied", "let credd's user read it (e.g. chmod 0640 and its group), or pass it with systemd LoadCredential="]
          : [`the secret file cannot be read (${code ?? "unknown error"})`, `check the file named by ${what}`];
    throw new ConfigError(file, what, problem, fix, { cause: err });
  }
  const secret = text.endsWith("\r\n") ? text.slice(0, -2) : text.endsWith("\n") ? text.slice(0, -1) : text;
  if (secret === "") throw new ConfigError(file, what, "the secret file is empty", "write the secret into it");
  return secret;
}
