// parsePlainCron reads the plain form of cron without node-cron; whatever it accepts, node-cron
// must accept with the same values, and anything else is left to node-cron.
import assert from "node:assert/strict";
import { test } from "node:test";
import cron from "node-cron";
import { cronProblem, parsePlainCron } from "../../src/config/cron.js";

const FIELDS = ["second", "minute", "hour", "dayOfMonth", "month", "dayOfWeek"] as const;
const asSet = (vals: (number | string)[], dow: boolean) => [...new Set(vals.map((v) => (dow && v === 7 ? 0 : v)))].sort((a, b) => Number(a) - Number(b));

/** A small seeded generator (mulberry32): the same expressions on every run. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomExpr(r: () => number): string {
  const n = () => String(Math.floor(r() * 65));
  const item = () => {
    const k = Math.floor(r() * 6);
    return ["*", `*/${Math.floor(r() * 16)}`, n(), `${n()}-${n()}`, `${n()}-${n()}/${Math.floor(r() * 16)}`, `${n()}/${Math.floor(r() * 16)}`][k]!;
  };
  const fieldText = () => Array.from({ length: 1 + Math.floor(r() * 3) }, item).join(",");
  return Array.from({ length: r() < 0.5 ? 5 : 6 }, fieldText).join(" ");
}

test("whatever parsePlainCron accepts, node-cron accepts with the same values (3,000 seeded expressions)", () => {
  const r = rng(20261125);
  let plain = 0;
  for (let i = 0; i < 3000; i++) {
    // Small values most of the time, so that many expressions are valid.
    const expr = randomExpr(() => r() * (r() < 0.8 ? 0.4 : 1));
    const mine = parsePlainCron(expr);
    if (!mine) continue;
    plain++;
    assert.equal(cron.validateDetailed(expr).valid, true, `node-cron refuses ${expr}`);
    const theirs = cron.parse(expr);
    for (const f of FIELDS) assert.deepEqual(mine[f], asSet(theirs[f], f === "dayOfWeek"), `${expr}: ${f}`);
  }
  assert.ok(plain > 300, `enough of them are plain (${plain})`);
});

test("the usual schedules are plain; names, nicknames, L, # and odd forms go to node-cron", () => {
  for (const e of ["*/10 * * * *", "0 9,17 * * 1-5", "*/30 * * * * *", "15 3 1 */2 *", "0 0 * * 7", "  0  0 * * * "]) {
    assert.ok(parsePlainCron(e), e);
  }
  for (const e of ["@daily", "0 0 * * MON", "0 0 * JAN *", "0 0 L * *", "0 0 * * 1#2", "5/10 * * * *", "5-1 * * * *", "60 * * * *", "*/0 * * * *", "0 0 0 * *", "* * * *", "0 0 * * * * *", ""]) {
    assert.equal(parsePlainCron(e), undefined, e);
  }
  assert.deepEqual(parsePlainCron("0 0 * * 5-7")?.dayOfWeek, [0, 5, 6], "7 is Sunday");
});

test("cronProblem: node-cron's verdict and message for what is not plain", () => {
  assert.equal(cronProblem("*/10 * * * *"), undefined);
  assert.equal(cronProblem("@daily"), undefined, "valid for node-cron");
  assert.equal(cronProblem("0 0 * * MON"), undefined);
  assert.match(cronProblem("60 * * * *") ?? "", /60 is a invalid expression for minute/);
  assert.match(cronProblem("every 10 minutes") ?? "", /./);
});
