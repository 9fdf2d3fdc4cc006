// The demo's timeline: one line per step with the real seconds since start and the virtual date,
// and a spinner (on a terminal) or a line every few seconds (elsewhere) while it waits.
import type { Clock } from "../src/clock.js";

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export type Who = "sandbox" | "credd" | "you" | "mail" | "CA" | "IDP" | "API" | "time" | "demo";

export class Timeline {
  private readonly t0 = Date.now();
  private readonly tty: boolean;
  private waiting: { what: string; since: number; frame: number; timer: NodeJS.Timeout; lastPlain: number } | undefined;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly clock: Clock,
  ) {
    this.tty = out.isTTY === true && !process.env.CI;
  }

  private prefix(at?: Date): string {
    const s = ((Date.now() - this.t0) / 1000).toFixed(1).padStart(6);
    const v = (at ?? this.clock.now()).toISOString().replace("T", " ").slice(0, 16);
    return `${s}s  ${v}  `;
  }

  get width(): number {
    return this.out.columns && this.out.columns > 60 ? this.out.columns : 140;
  }

  /** One timeline line; long texts are cut to the terminal's width. `at`: the virtual time to show, if not the clock's. */
  line(who: Who, text: string, at?: Date): void {
    this.clearSpinner();
    const head = `${this.prefix(at)}${who.padEnd(8)}`;
    const full = `${head}${text}`;
    this.out.write(`${this.tty && full.length > this.width ? `${full.slice(0, this.width - 1)}…` : full}\n`);
    this.drawSpinner();
  }

  /** Lines under the last one, indented (command output). */
  block(lines: string[]): void {
    this.clearSpinner();
    const pad = " ".repeat(this.prefix().length + 8);
    for (const l of lines) {
      const full = l.trim() === "" ? "" : `${pad}${l}`;
      this.out.write(`${this.tty && full.length > this.width ? `${full.slice(0, this.width - 1)}…` : full}\n`);
    }
    this.drawSpinner();
  }

  plain(text = ""): void {
    this.clearSpinner();
    this.out.write(`${text}\n`);
    this.drawSpinner();
  }

  /** Shows progress while `p` runs: "⠋ waiting for the CA to sign… 3.2 s". */
  async wait<T>(what: string, p: Promise<T>): Promise<T> {
    this.stopWaiting();
    const since = Date.now();
    const timer = setInterval(() => this.tick(), 100);
    timer.unref();
    this.waiting = { what, since, frame: 0, timer, lastPlain: since };
    this.drawSpinner();
    try {
      return await p;
    } finally {
      this.stopWaiting();
    }
  }

  private tick(): void {
    const w = this.waiting;
    if (!w) return;
    w.frame++;
    if (this.tty) this.drawSpinner();
    else if (Date.now() - w.lastPlain >= 5000) {
      w.lastPlain = Date.now();
      this.out.write(`${" ".repeat(this.prefix().length + 8)}… still waiting for ${w.what} (${Math.round((Date.now() - w.since) / 1000)} s)\n`);
    }
  }

  private drawSpinner(): void {
    const w = this.waiting;
    if (!w || !this.tty) return;
    const secs = ((Date.now() - w.since) / 1000).toFixed(1);
    const text = `${" ".repeat(this.prefix().length)}${FRAMES[w.frame % FRAMES.length]} waiting for ${w.what}… ${secs} s`;
    this.out.write(`\r\x1b[2K${text.slice(0, this.width - 1)}`);
  }

  private clearSpinner(): void {
    if (this.waiting && this.tty) this.out.write("\r\x1b[2K");
  }

  private stopWaiting(): void {
    if (!this.waiting) return;
    clearInterval(this.waiting.timer);
    this.clearSpinner();
    this.waiting = undefined;
  }

  elapsedSeconds(): number {
    return Math.round((Date.now() - this.t0) / 100) / 10;
  }
}
