// Table-driven tests of the pure renewal timing and mail backoff rules.
import assert from "node:assert/strict";
import { test } from "node:test";
import { daysLeft, mailBackoffMs, renewalTime } from "../../src/domain/timing.js";

const D = 86_400_000;
const t0 = Date.parse("2026-01-01T00:00:00Z");

test("renewalTime: a third of the lifetime left, never later than renew_before_days", () => {
  const cases: { name: string; lifetimeDays: number; before: number; expectDaysBeforeExpiry: number }[] = [
    { name: "1-year cert: a third (121.67 d) is earlier than 30 d", lifetimeDays: 365, before: 30, expectDaysBeforeExpiry: 365 / 3 },
    { name: "60-day cert: a third is 20 d, 30 d wins", lifetimeDays: 60, before: 30, expectDaysBeforeExpiry: 30 },
    { name: "90-day cert: a third is 30 d, equal", lifetimeDays: 90, before: 30, expectDaysBeforeExpiry: 30 },
    { name: "2-year cert with renew_before_days 300", lifetimeDays: 730, before: 300, expectDaysBeforeExpiry: 300 },
    { name: "short cert (3 d) with 1 d: a third is 1 d", lifetimeDays: 3, before: 1, expectDaysBeforeExpiry: 1 },
  ];
  for (const c of cases) {
    const nb = new Date(t0);
    const na = new Date(t0 + c.lifetimeDays * D);
    const at = renewalTime(nb, na, c.before);
    assert.ok(
      Math.abs(na.getTime() - at.getTime() - c.expectDaysBeforeExpiry * D) < 1000,
      `${c.name}: got ${(na.getTime() - at.getTime()) / D} days before expiry`,
    );
  }
});

test("daysLeft rounds down and goes negative after expiry", () => {
  const na = new Date(t0 + 10 * D);
  assert.equal(daysLeft(na, new Date(t0)), 10);
  assert.equal(daysLeft(na, new Date(t0 + 0.5 * D)), 9);
  assert.equal(daysLeft(na, new Date(t0 + 10 * D)), 0);
  assert.equal(daysLeft(na, new Date(t0 + 11.5 * D)), -2);
});

test("mailBackoffMs: 1 min doubling to 1 h", () => {
  const table: [number, number][] = [
    [1, 60_000],
    [2, 120_000],
    [3, 240_000],
    [6, 1_920_000],
    [7, 3_600_000],
    [30, 3_600_000],
  ];
  for (const [attempts, ms] of table) assert.equal(mailBackoffMs(attempts), ms, `attempts ${attempts}`);
});
