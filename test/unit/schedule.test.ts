// schedulePeriodMs works out the gap between check runs from node-cron's parsed fields: it must
// agree with node-cron's own getNextRuns, which it replaces on the common path.
import assert from "node:assert/strict";
import { test } from "node:test";
import cron from "node-cron";
import { schedulePeriodMs } from "../../src/core/schedule.js";

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

test("common schedules: the longest gap between the next runs", () => {
  const from = new Date(2026, 10, 25, 10, 3, 0); // a Wednesday, local time
  const cases: [string, number][] = [
    ["*/10 * * * *", 10 * MIN],
    ["* * * * *", MIN],
    ["*/30 * * * * *", 30_000],
    ["0 * * * *", HOUR],
    ["0 9,17 * * *", 16 * HOUR], // 17:00 today, 09:00 tomorrow, 17:00 tomorrow
    ["0 0 * * *", DAY],
    ["@daily", DAY],
    ["0 6 * * 1", 7 * DAY],
    ["0 9 * * 1-5", 3 * DAY], // Thu, Fri, then Monday
    ["0 0 1 * *", 31 * DAY], // 1 Dec, 1 Jan, 1 Feb
  ];
  for (const [expr, want] of cases) assert.equal(schedulePeriodMs(expr, from), want, expr);
});

test("agrees with node-cron's getNextRuns", () => {
  for (const expr of ["*/10 * * * *", "0 9,17 * * *", "15 3 * * 0", "0 0 29 2 *", "0 */6 * * *", "30 8 1,15 * *", "0 12 * 6 1-5"]) {
    const task = cron.createTask(expr, () => undefined);
    const before = Date.now();
    const runs = task.getNextRuns(3).map((d) => d.getTime());
    void task.destroy();
    const expected = Math.max(runs[1]! - runs[0]!, runs[2]! - runs[1]!);
    assert.equal(schedulePeriodMs(expr, new Date(before)), expected, expr);
  }
});

test("L (last day of the month) and nth weekday are left to node-cron: about a month apart", () => {
  const from = new Date(2026, 10, 25, 10, 3, 0);
  for (const expr of ["0 0 L * *", "0 0 * * 1#2"]) {
    const p = schedulePeriodMs(expr, from);
    assert.ok(p >= 28 * DAY && p <= 35 * DAY + HOUR, `${expr}: ${p / DAY} days`);
  }
});
