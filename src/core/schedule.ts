// The expected time between two runs of check_schedule, so `status` can tell a stale heartbeat.
import { nodeCron, parsePlainCron } from "../config/cron.js";

/** When fewer than three runs are found (never, for a valid expression). */
const FALLBACK_MS = 10 * 60_000;

/**
 * The longest gap between the next three runs, so an uneven schedule ("0 9,17 * * *") is not
 * flagged early. Worked out from node-cron's parsed fields (node-cron's own getNextRuns needs a
 * whole task and takes about 20 ms on a cold start, a sixth of a `status` over 1,000 credentials);
 * its rules are followed: day of month AND day of week must match, local time.
 */
export function schedulePeriodMs(expr: string, from: Date = new Date()): number {
  const f = parsePlainCron(expr) ?? nodeCron().parse(expr);
  const dom = f.dayOfMonth;
  const dow = f.dayOfWeek;
  // "L" (last day of the month) and "1#2" (second Monday): node-cron works those out itself.
  if (![...dom, ...dow].every((d) => typeof d === "number")) return periodByTask(expr);
  // A set: node-cron's parse keeps a value written twice ("5,1,1"), which would make a gap of 0.
  const times = [...new Set(f.hour.flatMap((h) => f.minute.flatMap((m) => f.second.map((s) => h * 3600 + m * 60 + s))))];
  times.sort((a, b) => a - b);
  const runs: number[] = [];
  // Sixteen years: a schedule on 29 February still finds three runs (leap days can be 8 years apart).
  for (let i = 0; i < 366 * 16 && runs.length < 3 && times.length > 0; i++) {
    const d = new Date(from.getFullYear(), from.getMonth(), from.getDate() + i);
    if (!f.month.includes(d.getMonth() + 1) || !dom.includes(d.getDate()) || !dow.includes(d.getDay())) continue;
    for (const t of times) {
      const at = new Date(d.getFullYear(), d.getMonth(), d.getDate(), Math.floor(t / 3600), Math.floor(t / 60) % 60, t % 60);
      if (at.getTime() > from.getTime()) runs.push(at.getTime());
      if (runs.length === 3) break;
    }
  }
  return longestGap(runs) ?? FALLBACK_MS;
}

function periodByTask(expr: string): number {
  const task = nodeCron().createTask(expr, () => undefined);
  try {
    return longestGap(task.getNextRuns(3).map((d) => d.getTime())) ?? FALLBACK_MS;
  } finally {
    void task.destroy();
  }
}

function longestGap(runs: number[]): number | undefined {
  if (runs.length < 3) return undefined;
  return Math.max(runs[1]! - runs[0]!, runs[2]! - runs[1]!);
}
