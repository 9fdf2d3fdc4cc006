// Temp files of credd's own naming left by a kill mid-write (archive/.chain-N.pem.*.tmp): removed at start.
import { lstatSync, readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";

/**
 * The temp names credd makes: writeFileAtomic's `.NAME.<12 hex>.tmp` (files/atomic.ts) and the live
 * symlink's `.live.<pid>.tmp` (files/live.ts). Nothing else is ever removed.
 */
export const OWN_TEMP = /^(?:\..+\.[0-9a-f]{12}\.tmp|\.live\.\d+\.tmp)$/;

/** Younger than this, a temp file may belong to a write in progress (a `credd ingest` beside the daemon). */
export const STALE_AFTER_MS = 10 * 60_000;

/**
 * Removes stale temp files of credd's naming from `dirs` (folders credd owns; a missing one is
 * skipped). Only regular files and symbolic links are removed, never followed. Returns what went.
 */
export function removeStaleTemps(dirs: string[], nowMs: number): string[] {
  const removed: string[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!OWN_TEMP.test(name)) continue;
      const p = join(dir, name);
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (!st || !(st.isFile() || st.isSymbolicLink()) || nowMs - st.mtimeMs < STALE_AFTER_MS) continue;
      try {
        unlinkSync(p);
        removed.push(p);
      } catch {
        /* gone meanwhile, or not ours to remove: left as it is */
      }
    }
  }
  return removed;
}

/** Every folder under state_dir and runtime_dir where credd writes with a temp file. */
export function ownedWriteDirs(root: { credentials: string; runtime: string }, names: string[]): string[] {
  const out: string[] = [];
  for (const n of names) {
    const credRoot = join(root.credentials, n);
    out.push(credRoot, join(credRoot, "archive"), join(root.runtime, n));
    let entries: string[] = [];
    try {
      entries = readdirSync(credRoot).filter((e) => /^\.live-\d+$/.test(e));
    } catch {
      /* no such credential folder yet */
    }
    out.push(...entries.map((e) => join(credRoot, e)));
  }
  return out;
}
