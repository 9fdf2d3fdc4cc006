// Table-driven tests of status severity: (state, now) → ok / warning / critical.
import assert from "node:assert/strict";
import { test } from "node:test";
import { assessHealth, type HealthInput } from "../../src/domain/health.js";

const D = 86_400_000;
const now = new Date("2026-06-01T12:00:00Z");
const at = (days: number) => new Date(now.getTime() + days * D);
const base: HealthInput = { failingMails: 0, checkPeriodMs: 600_000, lastCheckAt: new Date(now.getTime() - 60_000) };

const cases: { name: string; input: HealthInput; severity: string; problem?: RegExp }[] = [
  { name: "valid, recent check", input: { ...base, liveNotAfter: at(200), renewAt: at(80) }, severity: "ok" },
  { name: "no certificate", input: base, severity: "warning", problem: /no certificate/ },
  { name: "renewal pending", input: { ...base, liveNotAfter: at(25), pendingState: "sent" }, severity: "warning", problem: /renewal sent/ },
  {
    name: "renewal due, not started",
    input: { ...base, liveNotAfter: at(25), renewAt: at(-5) },
    severity: "warning",
    problem: /due but not started/,
  },
  { name: "6 days left", input: { ...base, liveNotAfter: at(6.5), pendingState: "sent" }, severity: "critical", problem: /expires in 6 days/ },
  { name: "7 days left is a warning", input: { ...base, liveNotAfter: at(7.5), pendingState: "sent" }, severity: "warning" },
  { name: "expired", input: { ...base, liveNotAfter: at(-2) }, severity: "critical", problem: /expired/ },
  { name: "last check failed", input: { ...base, liveNotAfter: at(200), lastError: "boom" }, severity: "warning", problem: /boom/ },
  { name: "email failing", input: { ...base, liveNotAfter: at(200), failingMails: 1 }, severity: "warning", problem: /email/ },
  {
    name: "stale heartbeat (over two periods)",
    input: { ...base, liveNotAfter: at(200), lastCheckAt: new Date(now.getTime() - 21 * 60_000) },
    severity: "warning",
    problem: /daemon may be stopped/,
  },
  {
    name: "heartbeat within two periods",
    input: { ...base, liveNotAfter: at(200), lastCheckAt: new Date(now.getTime() - 19 * 60_000) },
    severity: "ok",
  },
  {
    name: "the intermediate of the path expires in 5 days, the leaf in 200",
    input: {
      ...base,
      liveNotAfter: at(200),
      renewAt: at(-25),
      pendingState: "sent",
      caFirst: { notAfter: at(5.5), role: "intermediate", subject: "CN=Sub CA" },
    },
    severity: "critical",
    problem: /intermediate CA certificate "CN=Sub CA" of its path expires in 5 days/,
  },
  {
    name: "the anchor of the path has expired",
    input: {
      ...base,
      liveNotAfter: at(200),
      renewAt: at(-40),
      pendingState: "sent",
      caFirst: { notAfter: at(-1.5), role: "anchor", subject: "CN=Root" },
    },
    severity: "critical",
    problem: /root \(anchor\) CA certificate "CN=Root" of its path expired 2 days ago/,
  },
  {
    name: "a CA of the path 20 days away: the pending renewal's warning only",
    input: {
      ...base,
      liveNotAfter: at(200),
      renewAt: at(-10),
      pendingState: "sent",
      caFirst: { notAfter: at(20), role: "intermediate", subject: "CN=Sub CA" },
    },
    severity: "warning",
    problem: /renewal sent/,
  },
  { name: "never checked", input: { failingMails: 0, checkPeriodMs: 600_000, liveNotAfter: at(200) }, severity: "warning", problem: /never checked/ },
];

for (const c of cases) {
  test(`health: ${c.name}`, () => {
    const h = assessHealth(c.input, now);
    assert.equal(h.severity, c.severity, h.problems.join("; "));
    if (c.problem)
      assert.ok(
        h.problems.some((p) => c.problem!.test(p)),
        h.problems.join("; "),
      );
    if (c.severity === "ok") assert.deepEqual(h.problems, []);
  });
}
