// Time comes in from outside: production uses the system clock, tests inject their own.
import { readFileSync, statSync } from "node:fs";

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock for tests and the demo: starts at `start`, moves only when told. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start: Date | number) {
    this.t = typeof start === "number" ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.t);
  }
  set(t: Date | number): void {
    this.t = typeof t === "number" ? t : t.getTime();
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/**
 * A clock read from the environment, for end-to-end tests of the real binary and the demo:
 * - CREDD_FAKE_NOW=2026-01-01T00:00:00Z pins "now" (advancing with real time from process start);
 * - CREDD_CLOCK_FILE=path adds an offset in milliseconds read from that file (a number, e.g.
 *   25920000000 for +300 days), re-read when the file changes, so another process (the demo, a
 *   test) moves this one's time forward without restarting it. No file means no offset.
 * Both may be set: the offset is added to the fake time. Never set under systemd; testing aids only.
 */
export function clockFromEnv(env: NodeJS.ProcessEnv = process.env): Clock {
  let base: Clock = systemClock;
  const fake = env.CREDD_FAKE_NOW;
  if (fake) {
    const start = Date.parse(fake);
    if (Number.isNaN(start)) throw new Error(`CREDD_FAKE_NOW is not a date: ${fake}`);
    const started = Date.now();
    base = { now: () => new Date(start + (Date.now() - started)) };
  }
  const file = env.CREDD_CLOCK_FILE;
  if (!file) return base;
  const offset = offsetFromFile(file);
  return { now: () => new Date(base.now().getTime() + offset()) };
}

/** How often, at most, the clock file is looked at (one stat); it is read only when it changed. */
const CLOCK_FILE_LOOK_MS = 200;

/**
 * The offset kept in `file`. A stat at most every 200 ms; the file is read again only when its
 * mtime, size or inode changed. Unreadable at the start is an error; later, a file caught
 * mid-write keeps the previous offset until it parses.
 */
function offsetFromFile(file: string): () => number {
  let offset = 0;
  let stamp = "";
  let lookedAt = -Infinity;
  const look = (first: boolean): void => {
    lookedAt = Date.now();
    let st;
    try {
      st = statSync(file);
    } catch {
      offset = 0; // no file: no offset
      stamp = "";
      return;
    }
    const s = `${st.mtimeMs}:${st.size}:${st.ino}`;
    if (s === stamp) return;
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      return;
    }
    const n = text.trim() === "" ? Number.NaN : Number(text.trim());
    if (!Number.isFinite(n)) {
      if (first) throw new Error(`CREDD_CLOCK_FILE ${file} does not hold a number of milliseconds: ${JSON.stringify(text.slice(0, 40))}`);
      return; // caught mid-write: try again at the next look
    }
    offset = n;
    stamp = s;
  };
  look(true);
  return () => {
    if (Date.now() - lookedAt >= CLOCK_FILE_LOOK_MS) look(false);
    return offset;
  };
}

export const DAY_MS = 86_400_000;
