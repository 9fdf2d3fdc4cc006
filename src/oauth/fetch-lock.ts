// One token request per credential across processes (the daemon and `credd token`): a kernel lock
// on an empty file beside the token (files/kernel-lock.ts), dropped when its holder ends however it
// ends, so there is never a stale lock to reclaim and of two askers exactly one gets it.
// (`.fetch-lock`, not the `.fetch.lock` pid file earlier versions left, which is not empty.)
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { openLockFile, tryLockExclusive } from "../files/kernel-lock.js";
import { tokenDir } from "./token-files.js";

function lockFile(runtimeDir: string, name: string): string {
  const dir = tokenDir(runtimeDir, name);
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  return join(dir, ".fetch-lock");
}

/** Takes the lock, or returns undefined when another process (or another caller here) holds it. */
export function tryFetchLock(runtimeDir: string, name: string): (() => void) | undefined {
  const held = tryLockExclusive(openLockFile(lockFile(runtimeDir, name)));
  return held ? () => held.close() : undefined;
}

/** Waits (polling) until nobody holds the lock, at most `maxMs`. */
export async function waitForFetchLock(runtimeDir: string, name: string, maxMs: number): Promise<void> {
  const until = Date.now() + maxMs;
  while (Date.now() < until) {
    const release = tryFetchLock(runtimeDir, name);
    if (release) return release();
    await sleep(50);
  }
}
