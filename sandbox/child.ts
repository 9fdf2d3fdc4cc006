// The real credd binary as child processes, for the demo: the daemon (its JSON log lines parsed and
// kept, and copied to a file) and one-shot commands. Every child is tracked so Ctrl-C can end them all.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { fileURLToPath } from "node:url";

/** The built binary (`npm run build`), as an installed credd would run: dist/main.js of this checkout. */
export const CREDD_MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

const children = new Set<ChildProcess>();

/** Ends every child still running (SIGTERM, then SIGKILL after `graceMs`). */
export async function killChildren(graceMs = 5000): Promise<void> {
  await Promise.all(
    [...children].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          const t = setTimeout(() => c.kill("SIGKILL"), graceMs);
          c.once("close", () => {
            clearTimeout(t);
            resolve();
          });
          c.kill("SIGTERM");
        }),
    ),
  );
}

function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once("close", () => children.delete(c));
  return c;
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a one-shot command; `onLine` sees each stdout line as it comes. */
export function runCredd(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000, onLine?: (line: string) => void): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const c = track(spawn(process.execPath, [CREDD_MAIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] }));
    let stdout = "";
    let stderr = "";
    let seen = 0;
    c.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      const done = stdout.lastIndexOf("\n");
      if (!onLine || done < seen) return;
      for (const l of stdout.slice(seen, done).split("\n")) onLine(l);
      seen = done + 1;
    });
    c.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      c.kill("SIGKILL");
      reject(new Error(`credd ${args.join(" ")} did not finish in ${timeoutMs} ms`));
    }, timeoutMs);
    c.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    c.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface CreddDaemon {
  pid: number;
  lines: LogLine[];
  /** Called with every log line as it comes. */
  onLine(fn: (l: LogLine, index: number) => void): void;
  /** The first line at index >= `from` for which `pred` holds (already seen or still to come). */
  waitFor(pred: (l: LogLine) => boolean, opts: { from?: number; timeoutMs?: number; what: string }): Promise<{ line: LogLine; index: number }>;
  stderr(): string;
  exited: Promise<number | null>;
  /** SIGTERM and the exit code. */
  stop(): Promise<number | null>;
}

export function startCreddDaemon(args: string[], env: NodeJS.ProcessEnv, logFile: string): CreddDaemon {
  const c = track(spawn(process.execPath, [CREDD_MAIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] }));
  const out: WriteStream = createWriteStream(logFile, { flags: "a" });
  const lines: LogLine[] = [];
  const listeners: ((l: LogLine, i: number) => void)[] = [];
  let buf = "";
  let err = "";
  c.stdout!.on("data", (d: Buffer) => {
    out.write(d);
    buf += d.toString();
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { raw: text };
      }
      lines.push(line);
      for (const l of listeners) l(line, lines.length - 1);
    }
  });
  c.stderr!.on("data", (d: Buffer) => {
    out.write(d);
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    c.on("close", (code) => {
      out.end();
      resolve(code);
    }),
  );
  const daemon: CreddDaemon = {
    pid: c.pid ?? 0,
    lines,
    onLine: (fn) => void listeners.push(fn),
    waitFor(pred, { from = 0, timeoutMs = 30_000, what }) {
      return new Promise((resolve, reject) => {
        for (let i = from; i < lines.length; i++) {
          if (pred(lines[i]!)) return resolve({ line: lines[i]!, index: i });
        }
        let done = false;
        const finish = () => {
          done = true;
          clearTimeout(timer);
          const k = listeners.indexOf(listen);
          if (k >= 0) listeners.splice(k, 1);
        };
        const listen = (l: LogLine, i: number) => {
          if (done || i < from || !pred(l)) return;
          finish();
          resolve({ line: l, index: i });
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`credd did not log ${what} within ${Math.round(timeoutMs / 1000)} s`));
        }, timeoutMs);
        listeners.push(listen);
        void exited.then((code) => {
          if (done) return;
          finish();
          reject(new Error(`credd run exited (${code}) before it logged ${what}:\n${err.trim()}`));
        });
      });
    },
    stderr: () => err,
    exited,
    async stop() {
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
      return exited;
    },
  };
  return daemon;
}
