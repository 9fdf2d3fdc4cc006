// Run times of check_schedule from an injected time (src/core/schedule.ts): candidates from
// node-cron's parse, each judged by node-cron's match; they must agree with node-cron's own
// getNextRuns, which only counts from the system clock.
import assert from "node:assert/strict";
import { test } from "node:test";
import cron from "node-cron";
import { firstRunAtOrAfter, runsAfter, schedulePeriodMs } from "../../src/core/schedule.js";

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

test("common schedules: the longest gap between runs over the next week, from the given time", () => {
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
    ["0 9-17 * * 1-5", 64 * HOUR], // Friday 17:00 to Monday 09:00
    ["0 0 1 * *", 31 * DAY], // 1 Dec, 1 Jan, 1 Feb
  ];
  for (const [expr, want] of cases) assert.equal(schedulePeriodMs(expr, from), want, expr);
});

test("the period depends only on the time given: a weekday schedule counts its weekend from any day", () => {
  for (let day = 23; day <= 29; day++) {
    // Monday 23 to Sunday 29 November 2026, local time: the weekend gap is always within the week ahead.
    assert.equal(schedulePeriodMs("0 9 * * 1-5", new Date(2026, 10, day, 12, 0, 0)), 3 * DAY, `from the ${day}th`);
  }
  assert.equal(schedulePeriodMs("*/10 * * * *", new Date(2030, 0, 1)), 10 * MIN);
  assert.equal(
    schedulePeriodMs("0 0 29 2 *", new Date(2026, 0, 1)),
    new Date(2032, 1, 29).getTime() - new Date(2028, 1, 29).getTime(),
    "29 February: 2028, 2032, 2036",
  );
});

test("runsAfter: the next runs strictly after the given time, a table", () => {
  const d = (y: number, mo: number, day: number, h: number, m: number, s = 0) => new Date(y, mo - 1, day, h, m, s).getTime();
  const cases: [string, Date, number, number[]][] = [
    ["*/10 * * * *", new Date(2026, 10, 25, 10, 3), 3, [d(2026, 11, 25, 10, 10), d(2026, 11, 25, 10, 20), d(2026, 11, 25, 10, 30)]],
    ["*/10 * * * *", new Date(2026, 10, 25, 10, 10), 1, [d(2026, 11, 25, 10, 20)]], // strictly after
    ["0 9,17 * * *", new Date(2026, 11, 31, 18, 0), 3, [d(2027, 1, 1, 9, 0), d(2027, 1, 1, 17, 0), d(2027, 1, 2, 9, 0)]], // over a new year
    ["0 9 * * 1-5", new Date(2026, 10, 27, 9, 30), 2, [d(2026, 11, 30, 9, 0), d(2026, 12, 1, 9, 0)]], // Friday after the run
    ["@daily", new Date(2026, 1, 28, 12, 0), 2, [d(2026, 3, 1, 0, 0), d(2026, 3, 2, 0, 0)]],
    ["0 0 L * *", new Date(2027, 0, 31, 1, 0), 2, [d(2027, 2, 28, 0, 0), d(2027, 3, 31, 0, 0)]],
    ["0 0 * * 1#2", new Date(2026, 10, 25, 10, 0), 1, [d(2026, 12, 14, 0, 0)]],
    ["*/20 * * * * *", new Date(2026, 10, 25, 23, 59, 50), 3, [d(2026, 11, 26, 0, 0, 0), d(2026, 11, 26, 0, 0, 20), d(2026, 11, 26, 0, 0, 40)]],
  ];
  for (const [expr, from, count, want] of cases) assert.deepEqual(runsAfter(expr, from, count), want, `${expr} after ${from.toString()}`);
});

test("agrees with node-cron's getNextRuns (which counts from the system clock, so this test does too)", () => {
  for (const expr of [
    "*/10 * * * *",
    "0 9,17 * * *",
    "15 3 * * 0",
    "0 0 29 2 *",
    "0 */6 * * *",
    "30 8 1,15 * *",
    "0 12 * 6 1-5",
    "0 0 L * *",
    "0 0 * * 1#2",
    "0 0 * * MON",
  ]) {
    const task = cron.createTask(expr, () => undefined);
    const before = Date.now();
    const runs = task.getNextRuns(3).map((d) => d.getTime());
    void task.destroy();
    assert.deepEqual(runsAfter(expr, new Date(before), 3), runs, expr);
  }
});

test("L (last day of the month) and nth weekday are left to node-cron: about a month apart", () => {
  const from = new Date(2026, 10, 25, 10, 3, 0);
  for (const expr of ["0 0 L * *", "0 0 * * 1#2"]) {
    const p = schedulePeriodMs(expr, from);
    assert.ok(p !== undefined, `${expr}: no period`);
    assert.ok(p >= 28 * DAY && p <= 35 * DAY + HOUR, `${expr}: ${p / DAY} days`);
  }
});

test("firstRunAtOrAfter: the check that runs at or after a time (local, as node-cron runs it)", () => {
  const d = (day: number, h: number, m: number, s = 0) => new Date(2026, 10, day, h, m, s);
  const cases: [string, Date, Date][] = [
    ["*/10 * * * *", d(25, 10, 3), d(25, 10, 10)],
    ["*/10 * * * *", d(25, 10, 10), d(25, 10, 10)], // a run exactly then: that run
    ["*/10 * * * *", d(25, 10, 10, 1), d(25, 10, 20)],
    ["*/10 * * * *", d(25, 23, 55), d(26, 0, 0)],
    ["0 9,17 * * *", d(25, 17, 0, 1), d(26, 9, 0)],
    ["0 9 * * 1-5", d(27, 9, 30), d(30, 9, 0)], // Friday after the run: Monday
    ["*/30 * * * * *", d(25, 10, 0, 31), d(25, 10, 1, 0)],
    ["0 0 L * *", d(25, 10, 0), d(30, 0, 0)], // node-cron's own rule for L
    ["0 0 * * 1#2", d(25, 10, 0), new Date(2026, 11, 14, 0, 0, 0)], // the second Monday of December
  ];
  for (const [expr, from, want] of cases) assert.equal(firstRunAtOrAfter(expr, from)?.getTime(), want.getTime(), `${expr} from ${from.toString()}`);
});

test("firstRunAtOrAfter agrees with node-cron's match: the run matches, no minute before it does", () => {
  const from = new Date(2026, 10, 25, 10, 3, 7);
  for (const expr of ["*/10 * * * *", "0 9,17 * * *", "15 3 * * 0", "0 */6 * * *", "30 8 1,15 * *", "0 0 L * *"]) {
    const task = cron.createTask(expr, () => undefined);
    const at = firstRunAtOrAfter(expr, from)!;
    assert.ok(task.match(at), `${expr}: ${at.toString()} is a run`);
    for (let t = Math.ceil(from.getTime() / MIN) * MIN; t < at.getTime(); t += MIN)
      assert.ok(!task.match(new Date(t)), `${expr}: no run at ${new Date(t).toString()}`);
    void task.destroy();
  }
});
