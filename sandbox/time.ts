// The sandbox's virtual clock: an offset in milliseconds kept in a file that credd (CREDD_CLOCK_FILE)
// and the sandbox both read, so the demo moves everyone's time forward at once without restarts.
import { existsSync, readFileSync } from "node:fs";
import { DAY_MS, type Clock } from "../src/clock.js";
import { clockFromEnv } from "../src/test-switches.js";
import { writeFileAtomic } from "../src/files/atomic.js";

/** The clock credd sees with CREDD_CLOCK_FILE=file: real time plus the file's offset. */
export function fileClock(file: string): Clock {
  if (!existsSync(file)) writeClockOffset(file, 0);
  return clockFromEnv({ CREDD_CLOCK_FILE: file });
}

export function readClockOffset(file: string): number {
  try {
    const n = Number(readFileSync(file, "utf8").trim());
    return Number.isFinite(n) ? n : 0;
  } catch {
    return 0;
  }
}

/** Writes the offset atomically (a new inode, so readers see the change at their next look). */
export function writeClockOffset(file: string, offsetMs: number): void {
  writeFileAtomic(file, `${Math.round(offsetMs)}\n`, 0o644);
}

/** Moves time forward by `ms` for every reader of `file`; returns the new offset. */
export function travel(file: string, ms: number): number {
  const next = readClockOffset(file) + ms;
  writeClockOffset(file, next);
  return next;
}

/** How long a clock-file reader may take to see a change (it looks at most every 200 ms). */
export const CLOCK_SETTLE_MS = 250;

/** "+250 days", "+2 min", "+45 s" */
export function describeJump(ms: number): string {
  if (ms >= DAY_MS) return `+${Math.round(ms / DAY_MS)} days`;
  if (ms >= 60_000) return `+${Math.round(ms / 60_000)} min`;
  return `+${Math.round(ms / 1000)} s`;
}
