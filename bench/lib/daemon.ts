// `credd run` as a child process of the bench, its JSON log lines followed with test/helpers/credd.ts's followLog, on the bench's build.
import { spawn, type ChildProcess } from "node:child_process";
import { followLog } from "../../test/helpers/credd.js";
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

/** `nodeFlags`: what node is given before dist/main.js (the idle figure passes the unit's, bench/lib/unit.ts). */
export function startDaemon(config: string, env: NodeJS.ProcessEnv = {}, nodeFlags: readonly string[] = []): RunningDaemon {
  const child = spawn(process.execPath, [...nodeFlags, creddMain(), "--config", config, "run"], {
    env: childEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const log = followLog(child, {
    stripPriority: true,
    context: () =>
      `credd run:\n${log.lines
        .slice(-20)
        .map((l) => JSON.stringify(l))
        .join("\n")}\n${err}`,
  });
  return {
    child,
    lines: log.lines,
    waitForLog: log.waitForLog,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return (await log.exited).code;
    },
  };
}
