// Table-driven tests of the alert rules: (facts, now) → situations, and (open, current) → what to send.
import assert from "node:assert/strict";
import { test } from "node:test";
import { planAlerts, situations, type CredentialFacts } from "../../src/domain/alerts.js";

const D = 86_400_000;
const now = new Date("2026-06-01T12:00:00Z");
const at = (days: number) => new Date(now.getTime() + days * D);
const base: CredentialFacts = {
  credential: "fleet-prod",
  mzp: "MZP128745",
  contact: "connectedcar@mpsa.com",
  remindAfterDays: 7,
  expiryDays: [30, 14, 7, 3, 1],
};

const cases: { name: string; facts: CredentialFacts; expect: [string, string, string][] }[] = [
  { name: "far from expiry", facts: { ...base, live: { serial: "A", notAfter: at(200) } }, expect: [] },
  { name: "31 days left", facts: { ...base, live: { serial: "A", notAfter: at(31) } }, expect: [] },
  { name: "30 days left", facts: { ...base, live: { serial: "A", notAfter: at(30) } }, expect: [["certificate-expiry", "30d", "warning"]] },
  { name: "20 days left", facts: { ...base, live: { serial: "A", notAfter: at(20) } }, expect: [["certificate-expiry", "30d", "warning"]] },
  { name: "13.5 days left", facts: { ...base, live: { serial: "A", notAfter: at(13.5) } }, expect: [["certificate-expiry", "14d", "warning"]] },
  { name: "7 days left: critical", facts: { ...base, live: { serial: "A", notAfter: at(7) } }, expect: [["certificate-expiry", "7d", "critical"]] },
  { name: "2 days left", facts: { ...base, live: { serial: "A", notAfter: at(2) } }, expect: [["certificate-expiry", "3d", "critical"]] },
  { name: "0.5 days left", facts: { ...base, live: { serial: "A", notAfter: at(0.5) } }, expect: [["certificate-expiry", "1d", "critical"]] },
  {
    name: "expired today",
    facts: { ...base, live: { serial: "A", notAfter: at(-0.2) } },
    expect: [["certificate-expiry", "expired+0d", "critical"]],
  },
  {
    name: "expired 2.5 days ago",
    facts: { ...base, live: { serial: "A", notAfter: at(-2.5) } },
    expect: [["certificate-expiry", "expired+2d", "critical"]],
  },
  {
    name: "custom thresholds [60, 10]",
    facts: { ...base, expiryDays: [60, 10], live: { serial: "A", notAfter: at(45) } },
    expect: [["certificate-expiry", "60d", "warning"]],
  },
  {
    name: "leaf with 200 days, its intermediate with 20: the path decides",
    facts: { ...base, live: { serial: "A", notAfter: at(200), caFirst: { notAfter: at(20), role: "intermediate", subject: "CN=Sub CA" } } },
    expect: [["certificate-expiry", "30d", "warning"]],
  },
  {
    name: "leaf with 200 days, its anchor expired yesterday",
    facts: { ...base, live: { serial: "A", notAfter: at(200), caFirst: { notAfter: at(-1), role: "anchor", subject: "CN=Root" } } },
    expect: [["certificate-expiry", "expired+1d", "critical"]],
  },
  {
    name: "CSR sent 7 days ago",
    facts: {
      ...base,
      live: { serial: "A", notAfter: at(60) },
      pending: { id: 1, state: "sent", createdAt: at(-7), sentAt: at(-7), awaitingRegistration: false },
    },
    expect: [["csr-unanswered", "1", "warning"]],
  },
  {
    name: "CSR sent 6 days ago",
    facts: {
      ...base,
      live: { serial: "A", notAfter: at(60) },
      pending: { id: 1, state: "sent", createdAt: at(-6), sentAt: at(-6), awaitingRegistration: false },
    },
    expect: [],
  },
  {
    name: "refused certificate",
    facts: { ...base, live: { serial: "A", notAfter: at(60) }, refusal: { id: 42, file: "x.pem", check: "subject", reason: "O is wrong" } },
    expect: [["certificate-refused", "42", "warning"]],
  },
  {
    name: "awaiting registration, old one valid for 20 days",
    facts: { ...base, live: { serial: "A", notAfter: at(20) }, pending: { id: 1, state: "signed", createdAt: at(-3), awaitingRegistration: true } },
    expect: [
      ["certificate-expiry", "30d", "warning"],
      ["awaiting-registration", "warning", "warning"],
    ],
  },
  {
    name: "awaiting registration, old one expires in 5 days",
    facts: { ...base, live: { serial: "A", notAfter: at(5) }, pending: { id: 1, state: "signed", createdAt: at(-3), awaitingRegistration: true } },
    expect: [
      ["certificate-expiry", "7d", "critical"],
      ["awaiting-registration", "critical", "critical"],
    ],
  },
  {
    name: "token failing, token valid for an hour",
    facts: {
      ...base,
      live: { serial: "A", notAfter: at(60) },
      token: { failures: 2, expiresAt: new Date(now.getTime() + 3600_000), lastError: "HTTP 500" },
    },
    expect: [["token-failing", "warning", "warning"]],
  },
  {
    name: "token failing, lapses in 5 minutes",
    facts: { ...base, live: { serial: "A", notAfter: at(60) }, token: { failures: 2, expiresAt: new Date(now.getTime() + 300_000) } },
    expect: [["token-failing", "critical", "critical"]],
  },
  { name: "token fine", facts: { ...base, live: { serial: "A", notAfter: at(60) }, token: { failures: 0 } }, expect: [] },
  {
    name: "hook failed",
    facts: { ...base, live: { serial: "A", notAfter: at(60) }, failedHooks: { at: "2026-06-01T00:00:00Z", lines: ["systemctl reload app: exit 1"] } },
    expect: [["hook-failed", "2026-06-01T00:00:00Z", "warning"]],
  },
];

for (const c of cases) {
  test(`situations: ${c.name}`, () => {
    const got = situations([c.facts], {}, now).map((s) => [s.kind, s.stage, s.severity]);
    assert.deepEqual(got, c.expect);
  });
}

test("situations: daemon-wide SMTP failure, unmatched refusal and unclean restart (events)", () => {
  const got = situations(
    [],
    {
      smtpFailing: { attempts: 3, error: "ECONNREFUSED" },
      uncleanRestartAt: "T",
      unmatchedRefusal: { id: 9, file: "f", check: "key-match", reason: "r" },
    },
    now,
  );
  assert.deepEqual(
    got.map((s) => [s.credential, s.kind, s.stage, !!s.event]),
    [
      [null, "smtp-failing", "1", false],
      [null, "certificate-refused", "9", true],
      [null, "daemon-restart", "T", true],
    ],
  );
});

test("planAlerts: once per stage, escalation fires again, ended situations resolve", () => {
  const s = (kind: string, stage: string) => ({ credential: "a", kind, stage, severity: "warning" as const, title: kind, detail: "", action: "" });
  const open = [
    { id: 1, credential: "a", kind: "certificate-expiry", stage: "30d", event: false },
    { id: 2, credential: "a", kind: "token-failing", stage: "warning", event: false },
  ];
  const plan = planAlerts(open, [s("certificate-expiry", "30d"), s("csr-unanswered", "1")]);
  assert.deepEqual(
    plan.fire.map((f) => f.kind),
    ["csr-unanswered"],
    "30d already sent: not again",
  );
  assert.deepEqual(
    plan.resolve.map((r) => r.id),
    [2],
    "token recovered: resolved",
  );
  const esc = planAlerts(open, [s("certificate-expiry", "14d"), s("token-failing", "warning")]);
  assert.deepEqual(
    esc.fire.map((f) => f.stage),
    ["14d"],
  );
  assert.deepEqual(esc.resolve, []);
});

test("an expiry set by a CA of the path names that CA in the alert", () => {
  const [s] = situations(
    [{ ...base, live: { serial: "A", notAfter: at(200), caFirst: { notAfter: at(6), role: "intermediate", subject: "CN=Sub CA" } } }],
    {},
    now,
  );
  assert.equal(s?.title, "certificate path expires in 6 days");
  assert.match(s?.detail ?? "", /valid until .*, but the intermediate CA certificate "CN=Sub CA" of its path expires/);
  assert.equal(s?.severity, "critical");
});
