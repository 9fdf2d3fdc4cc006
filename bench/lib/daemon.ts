// `credd run` as a child process of the bench, its JSON log lines collected (test/helpers/credd.ts's, on the bench's build).
import { spawn, type ChildProcess } from "node:child_process";
import { creddMain } from "./dist.js";
import { childEnv } from "./proc.js";

export interface RunningDaemon {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  /** The first log line from index `after` on for which `pred` holds. */
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number, after?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

export function startDaemon(config: string, env: NodeJS.ProcessEnv = {}): RunningDaemon {
  const child = spawn(process.execPath, [creddMain(), "--config", config, "run"], { env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let buf = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line.replace(/^<\d>/, "")) as Record<string, unknown>);
      } catch {
        lines.push({ raw: line });
      }
    }
    for (const w of [...waiters]) w();
  });
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  child.on("close", () => {
    for (const w of [...waiters]) w();
  });
  return {
    child,
    lines,
    waitForLog: (pred, timeoutMs = 30_000, after = 0) =>
      new Promise((resolve, reject) => {
        const look = () => {
          const hit = lines.slice(after).find(pred);
          if (hit) {
            done();
            resolve(hit);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(new Error(`credd run exited (${child.exitCode ?? child.signalCode}) first:\n${lines.slice(-20).map((l) => JSON.stringify(l)).join("\n")}\n${err}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no matching log line from credd run in ${timeoutMs} ms:\n${lines.slice(-20).map((l) => JSON.stringify(l)).join("\n")}\n${err}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(look);
        };
        waiters.add(look);
        look();
      }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}
