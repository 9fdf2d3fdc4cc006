// The token files consumers read: runtime_dir/NAME/token (the bare token) and token.json, 0640, atomic.
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../files/atomic.js";

export interface TokenJson {
  token: string;
  type: string;
  scope: string;
  obtained_at: string;
  expires_at: string;
}

export function tokenDir(runtimeDir: string, name: string): string {
  return join(runtimeDir, name);
}

export function writeTokenFiles(runtimeDir: string, name: string, t: TokenJson): void {
  const dir = tokenDir(runtimeDir, name);
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  // token.json first: a reader of `token` then always finds metadata at least as new.
  writeFileAtomic(join(dir, "token.json"), `${JSON.stringify(t, null, 2)}\n`, 0o640);
  writeFileAtomic(join(dir, "token"), t.token, 0o640);
}

export function readTokenFiles(runtimeDir: string, name: string): TokenJson | undefined {
  try {
    const t = JSON.parse(readFileSync(join(tokenDir(runtimeDir, name), "token.json"), "utf8")) as TokenJson;
    return typeof t.token === "string" && typeof t.expires_at === "string" ? t : undefined;
  } catch {
    return undefined;
  }
}

/** Both token files exist and are not empty (a cheap test for the daemon's every-second tick). */
export function tokenFilesPresent(runtimeDir: string, name: string): boolean {
  const dir = tokenDir(runtimeDir, name);
  try {
    return ["token", "token.json"].every((f) => (statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0) > 0);
  } catch {
    return false; // unreadable (EACCES, ELOOP, ...): fetch again, which writes them anew or says what is wrong
  }
}

/** After a certificate change the old token may be bound to the old certificate (RFC 8705): drop it. */
export function removeTokenFiles(runtimeDir: string, name: string): void {
  const dir = tokenDir(runtimeDir, name);
  rmSync(join(dir, "token"), { force: true });
  rmSync(join(dir, "token.json"), { force: true });
}
