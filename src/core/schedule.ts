// The expected time between two runs of check_schedule, so `status` can tell a stale heartbeat.
import cron from "node-cron";

export function schedulePeriodMs(expr: string): number {
  const task = cron.createTask(expr, () => undefined);
  try {
    const runs = task.getNextRuns(3);
    if (runs.length < 3) return 10 * 60_000;
    // The longest gap of the next few, so an uneven schedule ("0 9,17 * * *") is not flagged early.
    return Math.max(runs[1]!.getTime() - runs[0]!.getTime(), runs[2]!.getTime() - runs[1]!.getTime());
  } finally {
    void task.destroy();
  }
}
