// A clock for tests (and the demo): starts at `start`, moves only when told.
import type { Clock } from "../../src/clock.js";

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
