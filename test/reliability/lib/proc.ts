// The built `credd` as a child process that the reliability tests can SIGKILL at any moment, with
// every byte it printed kept in a journal (scanned for secrets at the end of each file).
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after } from "node:test";
import { CREDD_BIN, creddEnv, followLog } from "../../helpers/credd.js";

/**
 * A private copy of dist/ taken when the test file starts, so that a rebuild of dist/ by someone else
 * in the middle of a long run (the crash test runs for minutes) cannot pull the binary out from under
 * it. node_modules and migrations are linked, package.json copied (ESM, and `--version` reads it).
 */
function snapshotDist(): string {
  const root = dirname(dirname(CREDD_BIN));
  const snap = mkdtempSync(join(tmpdir(), "credd-rel-dist-"));
  cpSync(join(root, "dist"), join(snap, "dist"), { recursive: true });
  cpSync(join(root, "package.json"), join(snap, "package.json"));
  symlinkSync(join(root, "node_modules"), join(snap, "node_modules"));
  symlinkSync(join(root, "migrations"), join(snap, "migrations"));
  process.once("exit", () => rmSync(snap, { recursive: true, force: true }));
  return join(snap, "dist", "main.js");
}

/**
 * Every child still running. A test that fails between its spawn and its stop would otherwise leave
 * a daemon holding the test file's process open (its pipes), and the run would hang until CI's own
 * timeout: the file's last hook, and its exit, SIGKILL whatever is left.
 */
const running = new Set<ChildProcess>();
function killLeftovers(): void {
  for (const child of running) child.kill("SIGKILL");
  running.clear();
}
after(killLeftovers);
process.once("exit", killLeftovers);

/** The built entry (a snapshot of dist/main.js); CREDD_RELIABILITY_BIN points at another build. */
export const BIN = process.env.CREDD_RELIABILITY_BIN || snapshotDist();

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface JournalEntry {
  args: string[];
  env: Record<string, string>;
  stdout: string;
  stderr: string;
  exit?: Exit;
}

/** Everything every credd process of one test file printed. */
export class Journal {
  readonly entries: JournalEntry[] = [];
  /** Logs and messages: all of it except the stdout of `credd token`, whose job is to print the token. */
  text(): string {
    return this.entries.map((e) => `${e.args.includes("token") ? "" : e.stdout}\n${e.stderr}`).join("\n");
  }
}

export interface Proc {
  child: ChildProcess;
  entry: JournalEntry;
  /** Parsed JSON lines of stdout (a line that is not JSON is kept as { raw }). */
  lines: Record<string, unknown>[];
  exited: Promise<Exit>;
  /** Resolves with the first line (already seen or still to come) matching `pred`; rejects on timeout or exit. */
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  running(): boolean;
  kill(signal?: NodeJS.Signals): void;
}

export function spawnCredd(journal: Journal, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { env: creddEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  const entry: JournalEntry = { args, env, stdout: "", stderr: "" };
  journal.entries.push(entry);
  running.add(child);
  child.on("exit", () => running.delete(child));
  child.stdout!.on("data", (d: Buffer) => (entry.stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (entry.stderr += d.toString()));
  // Registered before followLog's: the journal has the exit before any waiter hears of it.
  let done = false;
  child.on("close", (code, signal) => {
    done = true;
    entry.exit = { code, signal };
  });
  const log = followLog(child, {
    context: () => `from credd ${args.join(" ")} (exit ${JSON.stringify(entry.exit)})\n${entry.stdout.slice(-4000)}\n${entry.stderr.slice(-2000)}`,
  });
  return {
    child,
    entry,
    lines: log.lines,
    exited: log.exited,
    waitForLog: (pred, timeoutMs) => log.waitForLog(pred, timeoutMs),
    running: () => !done,
    kill(signal = "SIGKILL") {
      if (!done) child.kill(signal);
    },
  };
}

export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
  /** True when the timer of `killAfterMs` sent the SIGKILL. */
  killedByTimer: boolean;
}

/** Runs one command; with `killAfterMs` it is SIGKILLed then if still running. */
export async function runCli(
  journal: Journal,
  args: string[],
  env: Record<string, string> = {},
  opts: { killAfterMs?: number; timeoutMs?: number } = {},
): Promise<CliResult> {
  const p = spawnCredd(journal, args, env);
  let killedByTimer = false;
  const killer =
    opts.killAfterMs !== undefined
      ? setTimeout(() => {
          if (p.running()) {
            killedByTimer = true;
            p.kill("SIGKILL");
          }
        }, opts.killAfterMs)
      : undefined;
  const guard = setTimeout(() => p.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
  const exit = await p.exited;
  clearTimeout(killer);
  clearTimeout(guard);
  return { ...exit, stdout: p.entry.stdout, stderr: p.entry.stderr, killedByTimer };
}

/** No stack trace, no JavaScript error class name: what a person must never see from credd. */
export function crashSigns(text: string): string[] {
  const signs: string[] = [];
  if (/\b(TypeError|ReferenceError|RangeError|SyntaxError|AssertionError)\b/.test(text)) signs.push("a JavaScript error name");
  if (/^\s+at .+\(.+:\d+:\d+\)$/m.test(text) || /^\s+at (file:|node:|\/)/m.test(text)) signs.push("a stack trace");
  if (/Unhandled|uncaught/i.test(text)) signs.push("an unhandled error");
  return signs;
}
