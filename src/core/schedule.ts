// When check_schedule runs, from a time given by the caller (the injected clock, never the system
// clock): the expected time between checks (`credd run` stores it so `status` can tell a stale
// heartbeat) and the first check at or after a given time (when a due registration probe runs).
// node-cron decides what a run is: the candidates come from its parse() and its task.match()
// judges each day. Why this small walk remains: docs/architecture.md, "check_schedule".
import { nodeCron } from "../config/cron.js";

/** How far ahead the period looks: a whole week, so a weekday schedule's weekend gap counts. */
const PERIOD_SPAN_MS = 7 * 86_400_000;
/** ...but no more runs than this (a schedule every second or minute is even anyway). */
const PERIOD_MAX_RUNS = 1_000;

/**
 * The longest gap between runs after `from`, over the next seven days (at least three runs, at
 * most 1,000), so an uneven schedule ("0 9,17 * * *", "0 9 * * 1-5") is not flagged stale over
 * its long gap. Undefined if fewer than three runs are found (never, for a valid expression).
 */
export function schedulePeriodMs(expr: string, from: Date): number | undefined {
  const runs = runsAfter(expr, from, PERIOD_MAX_RUNS, from.getTime() + PERIOD_SPAN_MS);
  if (runs.length < 3) return undefined;
  let gap = 0;
  for (let i = 1; i < runs.length; i++) gap = Math.max(gap, runs[i]! - runs[i - 1]!);
  return gap;
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

/** Sixteen years: a schedule on 29 February still finds three runs (leap days can be 8 years apart). */
const SEARCH_DAYS = 366 * 16;

/**
 * The next `count` runs strictly after `from` (ms since the epoch; with `until`, fewer once at
 * least three runs reach past `until`, ms since the epoch), in local time as node-cron runs them
 * (the daemon gives it no timezone). node-cron's own getNextRuns counts from the system clock, so
 * it cannot answer for an injected one. This walks the days from `from`; each day's candidate times
 * are built from node-cron's parsed second, minute and hour fields, and node-cron's task.match()
 * judges the day on its first candidate (day of month, weekday, L, #, month: a refusal of a time
 * made of its own fields can only be the day's). A day it accepts runs at every candidate, except
 * one a DST gap moved, which match() judges again. The parsed month and plain days of the month
 * only skip days match() would refuse (match() is about 0.1 ms: a month-long search asks it little).
 */
export function runsAfter(expr: string, from: Date, count: number, until = Infinity): number[] {
  const cron = nodeCron();
  const f = cron.parse(expr);
  const task = cron.createTask(expr, () => undefined);
  try {
    // Ascending, each value once: node-cron's parse keeps a value written twice ("5,1,1").
    const asc = (v: number[]) => [...new Set(v)].sort((a, b) => a - b);
    const [hours, minutes, seconds] = [asc(f.hour), asc(f.minute), asc(f.second)];
    const plainDays = f.dayOfMonth.every((d) => typeof d === "number") ? new Set(f.dayOfMonth) : undefined;
    const runs: number[] = [];
    const enough = () => runs.length >= count || (runs.length >= 3 && runs[runs.length - 1]! >= until);
    for (let i = 0; i < SEARCH_DAYS && !enough(); i++) {
      const date = new Date(from.getFullYear(), from.getMonth(), from.getDate() + i);
      if (!f.month.includes(date.getMonth() + 1) || (plainDays && !plainDays.has(date.getDate()))) continue;
      const found = new Set<number>();
      let dayJudged = false;
      candidates: for (const h of hours) {
        for (const m of minutes) {
          for (const s of seconds) {
            const at = new Date(date.getFullYear(), date.getMonth(), date.getDate(), h, m, s);
            if (at.getTime() <= from.getTime()) continue;
            const asBuilt = at.getHours() === h && at.getMinutes() === m && at.getSeconds() === s;
            if (asBuilt && dayJudged) found.add(at.getTime());
            else if (task.match(at)) {
              found.add(at.getTime());
              dayJudged ||= asBuilt;
            } else if (asBuilt) break candidates; // the day is not one of the schedule's
            if (runs.length + found.size >= count) break candidates;
          }
        }
      }
      // A DST gap can move a candidate onto a later one's time: each run once, in order.
      for (const at of [...found].sort((a, b) => a - b)) if (runs.length < count) runs.push(at);
    }
    return runs;
  } finally {
    void task.destroy();
  }
}
