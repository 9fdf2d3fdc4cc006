// Table-driven tests of the expiry check's decision: (state, now) → action and the named check.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decide, type CheckInput } from "../../src/domain/decide.js";

const D = 86_400_000;
const now = new Date("2026-06-01T12:00:00Z");
const ago = (days: number) => new Date(now.getTime() - days * D);
const ahead = (days: number) => new Date(now.getTime() + days * D);
const base: CheckInput = { name: "fleet-prod", oauth: false, autoEnroll: false, renewBeforeDays: 30, remindAfterDays: 7 };
const live = (notBeforeAgo: number, notAfterAhead: number) => ({
  serial: "0A",
  notBefore: ago(notBeforeAgo),
  notAfter: ahead(notAfterAhead),
});

const cases: { name: string; input: CheckInput; action: string; check: string }[] = [
  { name: "no cert, no auto_enroll", input: base, action: "none", check: "not-enrolled" },
  { name: "no cert, auto_enroll", input: { ...base, autoEnroll: true }, action: "enroll", check: "no-certificate" },
  {
    name: "no cert, auto_enroll, CSR made 2 h ago",
    input: { ...base, autoEnroll: true, lastCsrCreatedAt: new Date(now.getTime() - 2 * 3600_000) },
    action: "none",
    check: "csr-rate-limit",
  },
  { name: "1-year cert, 200 days left", input: { ...base, live: live(165, 200) }, action: "none", check: "valid" },
  { name: "1-year cert, 121 days left (a third)", input: { ...base, live: live(244, 121) }, action: "renew", check: "renewal-due" },
  { name: "60-day cert, 31 days left", input: { ...base, live: live(29, 31) }, action: "none", check: "valid" },
  { name: "60-day cert, 29 days left", input: { ...base, live: live(31, 29) }, action: "renew", check: "renewal-due" },
  { name: "expired cert", input: { ...base, live: live(400, -5) }, action: "renew", check: "renewal-due" },
  {
    name: "due, but a CSR made 23 h ago",
    input: { ...base, live: live(31, 29), lastCsrCreatedAt: new Date(now.getTime() - 23 * 3600_000) },
    action: "none",
    check: "csr-rate-limit",
  },
  {
    name: "due, last CSR 25 h ago",
    input: { ...base, live: live(31, 29), lastCsrCreatedAt: new Date(now.getTime() - 25 * 3600_000) },
    action: "renew",
    check: "renewal-due",
  },
  {
    name: "pending, created (CSR not sent): never a second key",
    input: { ...base, live: live(31, 29), pending: { id: 1, state: "created", createdAt: ago(3) } },
    action: "none",
    check: "csr-queued",
  },
  {
    name: "pending, sent 6 days ago",
    input: { ...base, live: live(31, 29), pending: { id: 1, state: "sent", createdAt: ago(6), sentAt: ago(6) } },
    action: "none",
    check: "awaiting-ca",
  },
  {
    name: "pending, sent 7 days ago: remind",
    input: { ...base, live: live(31, 29), pending: { id: 1, state: "sent", createdAt: ago(7), sentAt: ago(7) } },
    action: "remind",
    check: "reminder-due",
  },
  {
    name: "pending, sent 10 days ago, reminded 3 days ago",
    input: {
      ...base,
      live: live(31, 29),
      pending: { id: 1, state: "sent", createdAt: ago(10), sentAt: ago(10), remindedAt: ago(3) },
    },
    action: "none",
    check: "awaiting-ca",
  },
  {
    name: "pending, reminded 8 days ago: remind again",
    input: {
      ...base,
      live: live(31, 29),
      pending: { id: 1, state: "sent", createdAt: ago(16), sentAt: ago(16), remindedAt: ago(8) },
    },
    action: "remind",
    check: "reminder-due",
  },
  {
    name: "pending enrollment with no cert, not due to remind",
    input: { ...base, autoEnroll: true, pending: { id: 1, state: "sent", createdAt: ago(1), sentAt: ago(1) } },
    action: "none",
    check: "awaiting-ca",
  },
  {
    name: "signed, Basic auth: goes live without the IDP",
    input: { ...base, live: live(31, 29), pending: { id: 1, state: "signed", createdAt: ago(3), sentAt: ago(3) } },
    action: "none",
    check: "renewal-in-progress",
  },
  {
    name: "signed, OAuth2: waits for Stellantis to bind it to the client",
    input: { ...base, oauth: true, live: live(31, 29), pending: { id: 1, state: "signed", createdAt: ago(3), sentAt: ago(3) } },
    action: "none",
    check: "awaiting-registration",
  },
  {
    name: "remind_after_days 1",
    input: { ...base, remindAfterDays: 1, live: live(31, 29), pending: { id: 1, state: "sent", createdAt: ago(1), sentAt: ago(1) } },
    action: "remind",
    check: "reminder-due",
  },
];

for (const c of cases) {
  test(`decide: ${c.name}`, () => {
    const d = decide(c.input, now);
    assert.equal(d.action, c.action, d.reason);
    assert.equal(d.check, c.check, d.reason);
    assert.ok(d.reason.length > 0);
  });
}

test("hints name the credential, never a NAME placeholder; awaiting registration does not offer a new key", () => {
  const none = decide(base, now);
  assert.match(none.reason, /credd enroll fleet-prod/);
  assert.match(none.reason, /credd import fleet-prod/);
  const limited = decide({ ...base, live: live(31, 29), lastCsrCreatedAt: new Date(now.getTime() - 3600_000) }, now);
  assert.match(limited.reason, /credd renew fleet-prod/);
  const signed = decide({ ...base, oauth: true, live: live(31, 29), pending: { id: 1, state: "signed", createdAt: ago(3) } }, now);
  assert.match(signed.reason, /waiting for Stellantis to bind it to the OAuth2 client/);
  for (const d of [none, limited, signed]) assert.doesNotMatch(d.reason, /\bNAME\b/);
  assert.doesNotMatch(signed.reason, /--force|renew/);
});

test("decide gives renewAt for a live certificate", () => {
  const d = decide({ ...base, live: live(31, 29) }, now);
  assert.equal(d.renewAt?.toISOString(), new Date(ahead(29).getTime() - 30 * D).toISOString());
});

// A leaf that outlives a CA of its path: renewal is due renew_before_days before the earliest CA expiry.
const caCases: { name: string; leaf: [number, number]; caAhead?: number; action: string; renewIn: number; by: "leaf" | "ca" }[] = [
  { name: "no CA expiry recorded (before migration 0007): the leaf decides", leaf: [165, 200], action: "none", renewIn: 78, by: "leaf" },
  { name: "CA outlives the leaf: the leaf decides", leaf: [165, 200], caAhead: 900, action: "none", renewIn: 78, by: "leaf" },
  { name: "CA expires in 60 days, leaf in 200: due in 30", leaf: [165, 200], caAhead: 60, action: "none", renewIn: 30, by: "ca" },
  { name: "CA expires in 29 days, leaf in 200: due now", leaf: [165, 200], caAhead: 29, action: "renew", renewIn: -1, by: "ca" },
  {
    name: "CA expiry minus 30 days just after the leaf's third-of-life date",
    leaf: [165, 200],
    caAhead: 109,
    action: "none",
    renewIn: 78,
    by: "leaf",
  },
];
for (const c of caCases) {
  test(`decide: ${c.name}`, () => {
    const l = { ...live(...c.leaf), ...(c.caAhead !== undefined ? { caNotAfter: ahead(c.caAhead) } : {}) };
    const d = decide({ ...base, live: l }, now);
    assert.equal(d.action, c.action, d.reason);
    assert.equal(d.renewAtSetBy, c.by);
    assert.equal(Math.round((d.renewAt!.getTime() - now.getTime()) / D), c.renewIn, d.reason);
    if (c.by === "ca") assert.match(d.reason, /set by a CA certificate of its chain/);
  });
}
