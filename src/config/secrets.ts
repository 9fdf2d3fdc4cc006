// Secrets live in files (systemd LoadCredential= or a 0600 file), never in the config itself.
// Paths are resolved when the config loads; the files are read only when a secret is needed.

import fs from "node:fs";
import path from "node:path";
import { ConfigError } from "../errors.js";
import { fsFound, runningUser } from "../files/file-errors.js";
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

/** A secret read, or what was found instead (never any of the file's content). */
export type SecretRead = { secret: string } | { found: string; fix: string; cause?: unknown };

/**
 * Reads the secret at `file` (already resolved) for config key `what`. On failure, `found` goes
 * after the path in a sentence ("does not exist", "is empty") and `fix` says what to do.
 */
export function readSecret(file: string, what: string): SecretRead {
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile())
      return {
        found: stat.isDirectory() ? "is a folder, not a regular file" : "is not a regular file",
        fix: `point ${what} at the file holding the secret`,
      };
    if (stat.size > MAX_SECRET_BYTES)
      return { found: `is ${stat.size} bytes, more than a secret should be`, fix: `point ${what} at the file holding only the secret` };
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const fix =
      code === "ENOENT" || code === "ENOTDIR"
        ? `create it holding only the secret (mode 0640, group of credd's user), or correct ${what}; under systemd, LoadCredential=NAME:/path and ${what}: NAME`
        : code === "EACCES" || code === "EPERM"
          ? `let ${runningUser()} read it (e.g. chmod 0640 and credd's group), or pass it with systemd LoadCredential=`
          : `check the file named by ${what}`;
    return { found: fsFound(err, file), fix, cause: err };
  }
  const secret = text.endsWith("\r\n") ? text.slice(0, -2) : text.endsWith("\n") ? text.slice(0, -1) : text;
  if (secret === "") return { found: "is empty", fix: "write the secret into it" };
  return { secret };
}

/**
 * Reads a secret file and drops one trailing newline (`echo secret > file` adds one).
 * Errors name the config key and the file, never any of the content.
 */
export function readSecretFile(p: string, what: string, env: NodeJS.ProcessEnv = process.env): string {
  const file = resolveSecretPath(p, env);
  const r = readSecret(file, what);
  if ("secret" in r) return r.secret;
  throw new ConfigError(file, what, `the secret file ${r.found}`, r.fix, r.cause === undefined ? undefined : { cause: r.cause });
}
