// The test's hand on credd's clock: CREDD_CLOCK_FILE=path adds the offset (ms) kept in this file to
// credd's time, re-read when it changes (src/clock.ts), so a running daemon's time moves on when told.
import { renameSync, writeFileSync } from "node:fs";

export class ClockFile {
  offset = 0;
  constructor(readonly path: string) {
    this.set(0);
  }
  /** Written beside and renamed in, so credd never reads half a number. */
  set(ms: number): void {
    this.offset = ms;
    writeFileSync(`${this.path}.tmp`, String(ms));
    renameSync(`${this.path}.tmp`, this.path);
  }
  advance(ms: number): void {
    this.set(this.offset + ms);
  }
}
