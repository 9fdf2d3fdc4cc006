// Table-driven tests of token refresh timing, backoff and state.
import assert from "node:assert/strict";
import { test } from "node:test";
import { probeBackoffMs, tokenBackoffMs, tokenRefreshAt, tokenState } from "../../src/domain/token-timing.js";

const t0 = new Date("2026-01-01T00:00:00Z");

test("tokenRefreshAt: two thirds of the life, jitter within ±5 %", () => {
  const cases: [number, number, number][] = [
    [3600, 0.5, 2400_000],
    [3600, 0, 2400_000 - 180_000],
    [3600, 0.999999, 2400_000 + 180_000],
    [300, 0.5, 200_000],
  ];
  for (const [life, jitter, offset] of cases) {
    assert.ok(Math.abs(tokenRefreshAt(t0, life, jitter).getTime() - t0.getTime() - offset) < 5, `${life} ${jitter}`);
  }
});

test("tokenBackoffMs: 1 s doubling to 5 min, Retry-After wins when longer", () => {
  const table: [number, number | undefined, number][] = [
    [1, undefined, 1000],
    [2, undefined, 2000],
    [5, undefined, 16000],
    [9, undefined, 256000],
    [10, undefined, 300000],
    [50, undefined, 300000],
    [1, 30_000, 30_000],
    [10, 1_000, 300_000],
  ];
  for (const [f, ra, ms] of table) assert.equal(tokenBackoffMs(f, ra), ms, `${f} ${ra}`);
});

test("probeBackoffMs: 1 min doubling to 1 h", () => {
  assert.deepEqual([1, 2, 3, 7, 8, 20].map(probeBackoffMs), [60_000, 120_000, 240_000, 3_600_000, 3_600_000, 3_600_000]);
});

test("tokenState", () => {
  const at = (ms: number) => new Date(t0.getTime() + ms);
  assert.equal(tokenState({}, t0), "none");
  assert.equal(tokenState({ expiresAt: at(3600_000), refreshAt: at(2400_000) }, t0), "valid");
  assert.equal(tokenState({ expiresAt: at(3600_000), refreshAt: at(-1) }, t0), "refresh-due");
  assert.equal(tokenState({ expiresAt: at(9 * 60_000), refreshAt: at(-1) }, t0), "expiring");
  assert.equal(tokenState({ expiresAt: at(0) }, t0), "expired");
});
