// Deploy hooks: the user's commands run after a certificate goes live, each as a plain argv
// (never through a shell), one after another, with a timeout that takes down the hook's whole
// process group, and a bounded tail of what they printed for `credd status` and the log.
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

export interface HookResult {
  argv: string[];
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  /** stdout and stderr in the order they arrived, the last 4 KiB. */
  output: string;
  /** Spawn failure or timeout, for a person to read. A non-zero exit is not an error here: see exitCode. */
  error?: string;
  /** Started, finished in time and exited 0. */
  ok: boolean;
}

/** What a hook learns about the certificate that just went live: nothing secret. */
export interface HookEnv {
  credential: string;
  liveDir: string;
  /** Upper-case hex, as `openssl x509 -serial` prints it. */
  serial: string;
  version: number;
  /** ISO 8601. */
  notAfter: string;
}

export interface HookOptions {
  /** Per hook; default 60 s. */
  timeoutMs?: number;
  /** Between SIGTERM and SIGKILL after a timeout; default 5 s. */
  killGraceMs?: number;
  /** Clock for durations only; default performance.now. */
  now?: () => number;
}

export const MAX_OUTPUT_BYTES = 4096;
const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_GRACE_MS = 5_000;
/** After a normal exit, how long to wait for the pipes to close: a daemon the hook left behind may hold them forever. */
const DRAIN_MS = 1_000;
const POLL_MS = 50;

/** When credd itself has no PATH (an empty environment): the usual system one. */
export const DEFAULT_HOOK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** When credd itself has no LANG. */
export const DEFAULT_HOOK_LANG = "C.UTF-8";

/**
 * Runs every hook in order, each to completion. A hook that fails (cannot start, exits non-zero,
 * is killed, times out) does not stop the ones after it: they usually reload independent
 * consumers of the same files, and each one's outcome is reported on its own. Never throws for a
 * hook's failure.
 */
export async function runHooks(hooks: string[][], env: HookEnv, opts: HookOptions = {}): Promise<HookResult[]> {
  const childEnv = hookEnvironment(env);
  const settings = {
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    graceMs: opts.killGraceMs ?? DEFAULT_GRACE_MS,
    now: opts.now ?? (() => performance.now()),
  };
  const results: HookResult[] = [];
  for (const argv of hooks) results.push(await runHook(argv, childEnv, settings));
  return results;
}

/**
 * A hook's whole environment (docs/lifecycle.md): PATH and LANG from credd's (or the defaults above),
 * and the five CREDD_ variables. Nothing else is inherited: credd's environment holds what is
 * credd's alone, such as systemd's CREDENTIALS_DIRECTORY (the secrets), NOTIFY_SOCKET and the
 * watchdog (a hook could speak for credd), INVOCATION_ID, and the test switches.
 */
export function hookEnvironment(env: HookEnv, parent: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {
    PATH: parent.PATH || DEFAULT_HOOK_PATH,
    LANG: parent.LANG || DEFAULT_HOOK_LANG,
  };
  out.CREDD_CREDENTIAL = env.credential;
  out.CREDD_LIVE_DIR = env.liveDir;
  out.CREDD_SERIAL = env.serial;
  out.CREDD_VERSION = String(env.version);
  out.CREDD_NOT_AFTER = env.notAfter;
  return out;
}

interface Settings {
  timeoutMs: number;
  graceMs: number;
  now: () => number;
}

function runHook(argv: string[], env: NodeJS.ProcessEnv, s: Settings): Promise<HookResult> {
  const start = s.now();
  const tail = new OutputTail(MAX_OUTPUT_BYTES);
  const result = (fields: Pick<HookResult, "exitCode" | "signal"> & { error?: string }): HookResult => {
    const r: HookResult = {
      argv: [...argv],
      exitCode: fields.exitCode,
      signal: fields.signal,
      durationMs: Math.max(0, s.now() - start),
      output: tail.text(),
      ok: fields.error === undefined && fields.exitCode === 0,
    };
    if (fields.error !== undefined) r.error = fields.error;
    return r;
  };

  const command = argv[0];
  if (command === undefined || command === "") {
    return Promise.resolve(result({ exitCode: null, signal: null, error: "empty hook: no command to run" }));
  }

  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      // shell: false, always: arguments reach the program exactly as configured. detached: the
      // hook leads a new process group (setsid), so a timeout can kill what it started too.
      child = spawn(command, argv.slice(1), { shell: false, detached: true, env, stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
      // Synchronous refusals, e.g. a NUL byte in an argument.
      resolve(result({ exitCode: null, signal: null, error: startError(command, err) }));
      return;
    }

    let finished = false;
    let timedOut = false;
    let sentKill = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const timers = new Set<NodeJS.Timeout>();
    const later = (ms: number, fn: () => void): void => {
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
      }, ms);
      timers.add(t);
    };
    const pid = child.pid;

    const finish = (error?: string): void => {
      if (finished) return;
      finished = true;
      for (const t of timers) clearTimeout(t);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve(result({ exitCode: exit?.code ?? null, signal: exit?.signal ?? null, ...(error !== undefined ? { error } : {}) }));
    };
    const timeoutMessage = (): string =>
      `timed out after ${s.timeoutMs} ms: sent SIGTERM to its process group${sentKill ? `, then SIGKILL after ${s.graceMs} ms` : ""}`;

    child.stdout?.on("data", (chunk: Buffer) => tail.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => tail.push(chunk));

    child.on("error", (err) => {
      // Without a pid the program never started (ENOENT, EACCES, ...); later errors (a failed
      // kill) change nothing: the exit event still comes.
      if (child.pid === undefined) finish(startError(command, err));
    });

    child.on("exit", (code, signal) => {
      exit = { code, signal };
      if (timedOut) {
        waitForGroup();
        return;
      }
      for (const t of timers) clearTimeout(t);
      timers.clear();
      // "close" follows once the pipes have delivered the last output; a background process the
      // hook left holding them must not keep us waiting.
      child.once("close", () => finish());
      later(DRAIN_MS, () => finish());
    });

    if (pid === undefined) return; // the error event follows

    later(s.timeoutMs, () => {
      if (exit) return;
      timedOut = true;
      signalGroup(pid, "SIGTERM");
      later(s.graceMs, () => {
        sentKill = true;
        signalGroup(pid, "SIGKILL");
        // SIGKILL cannot be ignored; waiting for zombies nobody reaps could take forever.
        if (exit) finish(timeoutMessage());
      });
    });

    // After a timeout the leader may die at SIGTERM while its children ignore it: keep watching
    // the group until it is empty or the grace period ends in SIGKILL.
    const waitForGroup = (): void => {
      if (sentKill || !groupAlive(pid)) finish(timeoutMessage());
      else later(POLL_MS, waitForGroup);
    };
  });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/**
 * Does any process of the group still run? kill(-pgid, 0) also counts zombies, and an orphan
 * stays a zombie until PID 1 reaps it: promptly under systemd, a second or more under some
 * container inits. So on Linux a "yes" is checked against /proc, ignoring zombies.
 */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return true; // no /proc: trust kill()
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z") return true;
  }
  return false;
}

function startError(command: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") return `command not found: ${command}`;
  if (code === "EACCES") return `permission denied: ${command} (is it executable?)`;
  const message = err instanceof Error ? err.message : String(err);
  return `could not start ${command}: ${message}`;
}

/** Keeps the last `max` bytes of a stream of chunks, whatever their sizes. */
class OutputTail {
  private buf = Buffer.alloc(0);
  private dropped = false;
  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    if (chunk.length >= this.max) {
      this.dropped ||= chunk.length > this.max || this.buf.length > 0;
      this.buf = Buffer.from(chunk.subarray(chunk.length - this.max));
      return;
    }
    const joined = Buffer.concat([this.buf, chunk]);
    if (joined.length > this.max) this.dropped = true;
    this.buf = joined.length > this.max ? joined.subarray(joined.length - this.max) : joined;
  }

  text(): string {
    let start = 0;
    // A cut may land inside a UTF-8 sequence: skip its continuation bytes rather than show U+FFFD.
    if (this.dropped) while (start < this.buf.length && start < 3 && (this.buf[start]! & 0xc0) === 0x80) start++;
    return this.buf.subarray(start).toString("utf8");
  }
}
