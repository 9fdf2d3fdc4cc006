// When check_schedule runs: the expected time between checks (so `status` can tell a stale
// heartbeat) and the first check at or after a given time (when a due registration probe runs).
import { nodeCron, parsePlainCron } from "../config/cron.js";

/** When fewer than three runs are found (never, for a valid expression). */
const FALLBACK_MS = 10 * 60_000;

/**
 * The longest gap between the next three runs, so an uneven schedule ("0 9,17 * * *") is not
 * flagged early.
 */
export function schedulePeriodMs(expr: string, from: Date = new Date()): number {
  return longestGap(runsAfter(expr, from, 3)) ?? FALLBACK_MS;
}

/**
 * The first run of `expr` at or after `notBefore`: the daemon probes a new certificate's
 * registration (core/check.ts) only inside a scheduled check, once its backoff time has come, so
 * that is when the probe really runs. Undefined if none is found (never, for a valid expression).
 */
export function firstRunAtOrAfter(expr: string, notBefore: Date): Date | undefined {
  const [at] = runsAfter(expr, new Date(notBefore.getTime() - 1), 1);
  return at === undefined ? undefined : new Date(at);
}

/**
 * The next `count` runs strictly after `from`, in local time as node-cron runs them (the daemon
 * gives it no timezone). Worked out from node-cron's parsed fields (node-cron's own getNextRuns
 * needs a whole task, counts from the real clock, not an injected one, and takes about 20 ms on a
 * cold start, a sixth of a `status` over 1,000 credentials); its rules are followed: day of month
 * AND day of week must match. "L" (last day of the month) and "1#2" (second Monday) are asked of
 * node-cron's task.match, day by day.
 */
export function runsAfter(expr: string, from: Date, count: number): number[] {
  const f = parsePlainCron(expr) ?? nodeCron().parse(expr);
  const dom = f.dayOfMonth;
  const dow = f.dayOfWeek;
  const numeric = [...dom, ...dow].every((d) => typeof d === "number");
  const task = numeric ? undefined : nodeCron().createTask(expr, () => undefined);
  try {
    // A set: node-cron's parse keeps a value written twice ("5,1,1"), which would make a gap of 0.
    const times = [...new Set(f.hour.flatMap((h) => f.minute.flatMap((m) => f.second.map((s) => h * 3600 + m * 60 + s))))];
    times.sort((a, b) => a - b);
    const runs: number[] = [];
    // Sixteen years: a schedule on 29 February still finds three runs (leap days can be 8 years apart).
    for (let i = 0; i < 366 * 16 && runs.length < count && times.length > 0; i++) {
      const d = new Date(from.getFullYear(), from.getMonth(), from.getDate() + i);
      if (!f.month.includes(d.getMonth() + 1)) continue;
      if (numeric && (!dom.includes(d.getDate()) || !dow.includes(d.getDay()))) continue;
      for (const t of times) {
        const at = new Date(d.getFullYear(), d.getMonth(), d.getDate(), Math.floor(t / 3600), Math.floor(t / 60) % 60, t % 60);
        if (at.getTime() > from.getTime() && (!task || task.match(at))) runs.push(at.getTime());
        if (runs.length === count) break;
      }
    }
    return runs;
  } finally {
    void task?.destroy();
  }
}

function longestGap(runs: number[]): number | undefined {
  if (runs.length < 3) return undefined;
  return Math.max(runs[1]! - runs[0]!, runs[2]! - runs[1]!);
}
