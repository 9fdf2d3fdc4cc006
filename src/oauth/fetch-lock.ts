// One token request per credential across processes: a lock file beside the token (the daemon and `credd token`).
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { tokenDir } from "./token-files.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the lock or returns undefined when a live process holds it; a dead holder's lock is reclaimed. */
export function tryFetchLock(runtimeDir: string, name: string): (() => void) | undefined {
  const dir = tokenDir(runtimeDir, name);
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const file = join(dir, ".fetch.lock");
  for (let i = 0; i < 2; i++) {
    try {
      const fd = openSync(file, "wx", 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          unlinkSync(file);
        } catch {
          /* gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      let pid = NaN;
      try {
        pid = Number(readFileSync(file, "utf8"));
      } catch {
        continue; // released meanwhile
      }
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) return undefined;
      try {
        unlinkSync(file);
      } catch {
        /* someone else reclaimed it */
      }
    }
  }
  return undefined;
}

/** Waits (polling) until nobody holds the lock, at most `maxMs`. */
export async function waitForFetchLock(runtimeDir: string, name: string, maxMs: number): Promise<void> {
  const file = join(tokenDir(runtimeDir, name), ".fetch.lock");
  const until = Date.now() + maxMs;
  while (Date.now() < until) {
    try {
      const pid = Number(readFileSync(file, "utf8"));
      if (!alive(pid)) return;
    } catch {
      return;
    }
    await sleep(50);
  }
}
