// Time comes in from outside: production uses the system clock, tests inject their own
// (test/helpers/clock.ts); the test switches that move it are read in src/test-switches.ts.

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export const DAY_MS = 86_400_000;
