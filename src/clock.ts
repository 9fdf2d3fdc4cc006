// Time comes in from outside: production uses the system clock, tests inject their own.

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
 * A clock read from the environment, for end-to-end tests of the real binary:
 * CREDD_FAKE_NOW=2026-01-01T00:00:00Z pins "now" (advancing with real time from process start).
 * Never set under systemd; documented as a testing aid only.
 */
export function clockFromEnv(env: NodeJS.ProcessEnv = process.env): Clock {
  const fake = env.CREDD_FAKE_NOW;
  if (!fake) return systemClock;
  const base = Date.parse(fake);
  if (Number.isNaN(base)) throw new Error(`CREDD_FAKE_NOW is not a date: ${fake}`);
  const started = Date.now();
  return { now: () => new Date(base + (Date.now() - started)) };
}

export const DAY_MS = 86_400_000;
