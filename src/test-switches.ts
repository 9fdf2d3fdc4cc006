// The test aids that ship inside credd, all read here: a fake or shifted clock, crash points and
// faster daemon ticks. They exist for the end-to-end tests, the reliability suite, the bench and the
// demo; when one is set credd says so loudly (a warning at the start of `credd run`, a banner on
// the first line of `credd status`, `test_switches` in `status --json`) and `credd run` refuses
// them under systemd unless CREDD_ALLOW_TEST_SWITCHES=1 (docs/operations.md, "Test switches").
import { readFileSync, statSync } from "node:fs";
import { systemClock, type Clock } from "./clock.js";
import { CreddError } from "./errors.js";

/** Every test switch, with what it does (for the banner's readers and docs/operations.md). */
export const TEST_SWITCHES = {
  CREDD_FAKE_NOW: "pins the clock to this time at the start (it then advances with real time)",
  CREDD_CLOCK_FILE: "adds the offset in milliseconds held in this file to the clock",
  CREDD_CRASH_AT: "kills the process with SIGKILL at the named crash point",
  CREDD_OUTBOX_TICK_MS: "how often `credd run` looks at queued emails (default 5000)",
  CREDD_INBOX_POLL_MS: "how often `credd run` looks at the inbox folder (default 2000)",
  CREDD_INBOX_MIN_AGE_MS: "how old an inbox file must be to be taken (default 1000)",
  CREDD_TOKEN_TICK_MS: "how often `credd run` looks at token refresh times (default 1000)",
} as const;

export type TestSwitch = keyof typeof TEST_SWITCHES;

/** Set to 1 to let `credd run` start under systemd with test switches (a test of the unit itself). */
export const ALLOW_TEST_SWITCHES = "CREDD_ALLOW_TEST_SWITCHES";

/** The test switches set (non-empty) in `env`, in TEST_SWITCHES order. */
export function activeTestSwitches(env: NodeJS.ProcessEnv = process.env): { name: TestSwitch; value: string }[] {
  return (Object.keys(TEST_SWITCHES) as TestSwitch[])
    .filter((k) => env[k] !== undefined && env[k] !== "")
    .map((name) => ({ name, value: env[name]! }));
}

/** The first line `credd status` prints when test switches are set; undefined when none is. */
export function testSwitchBanner(names: readonly string[]): string | undefined {
  if (names.length === 0) return undefined;
  return `TEST SWITCHES: ${names.join(", ")} set (test aids, not for production: docs/operations.md)`;
}

/**
 * `credd run` under systemd (INVOCATION_ID set) with a test switch is a mistake in the unit's
 * environment: a clock in the future renews everything, a crash point kills the daemon. Refused
 * unless CREDD_ALLOW_TEST_SWITCHES=1 says it is meant.
 */
export function refuseTestSwitchesUnderSystemd(env: NodeJS.ProcessEnv = process.env): void {
  const set = activeTestSwitches(env);
  if (set.length === 0 || !env.INVOCATION_ID || env[ALLOW_TEST_SWITCHES] === "1") return;
  throw new CreddError(
    "CONFIG",
    `refusing to start under systemd (INVOCATION_ID is set) with test switches set: ${set.map((s) => s.name).join(", ")} ` +
      `(fix: remove them from the unit's environment (systemctl edit credd; systemctl show credd -p Environment), ` +
      `or set ${ALLOW_TEST_SWITCHES}=1 too to test under systemd on purpose; docs/operations.md, "Test switches")`,
  );
}

/** The crash point named by CREDD_CRASH_AT (src/core/crash.ts), read at each call. */
export function crashPointFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.CREDD_CRASH_AT || undefined;
}

/** The daemon's tick knobs (src/daemon/run.ts, DaemonOptions): only those set to a number. */
export function daemonTicksFromEnv(env: NodeJS.ProcessEnv = process.env): {
  outboxTickMs?: number;
  inboxPollMs?: number;
  inboxMinAgeMs?: number;
  tokenTickMs?: number;
} {
  const num = (k: TestSwitch) => {
    const v = Number(env[k] ?? "");
    return env[k] !== undefined && env[k] !== "" && Number.isFinite(v) ? v : undefined;
  };
  const out: ReturnType<typeof daemonTicksFromEnv> = {};
  const tick = num("CREDD_OUTBOX_TICK_MS");
  const poll = num("CREDD_INBOX_POLL_MS");
  const age = num("CREDD_INBOX_MIN_AGE_MS");
  const tok = num("CREDD_TOKEN_TICK_MS");
  if (tick !== undefined) out.outboxTickMs = tick;
  if (poll !== undefined) out.inboxPollMs = poll;
  if (age !== undefined) out.inboxMinAgeMs = age;
  if (tok !== undefined) out.tokenTickMs = tok;
  return out;
}

/**
 * The clock every command uses: the system clock, unless a test switch moves it:
 * - CREDD_FAKE_NOW=2026-01-01T00:00:00Z pins "now" (advancing with real time from process start);
 * - CREDD_CLOCK_FILE=path adds an offset in milliseconds read from that file (a number, e.g.
 *   25920000000 for +300 days), re-read when the file changes, so another process (the demo, a
 *   test) moves this one's time forward without restarting it. No file means no offset.
 * Both may be set: the offset is added to the fake time.
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
