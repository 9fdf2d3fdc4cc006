// Alerts end to end in-process: the clock moved through 31 → 0 → −2 days before expiry produces exactly
// the threshold digests on a real SMTP server, a restart sends no duplicate, a new certificate resolves it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ManualClock } from "../helpers/clock.js";
import { parseConfig } from "../../src/config/load.js";
import { evaluateAlerts } from "../../src/core/alerts.js";
import { checkAll } from "../../src/core/check.js";
import { sqliteCtx, type TestCtx } from "../helpers/ctx.js";
import { deliverDue } from "../../src/core/deliver.js";
import { importCertificate } from "../../src/core/import.js";
import { ingestBatch } from "../../src/core/ingest.js";
import { createLogger } from "../../src/log.js";
import { makeMailerFactory } from "../../src/mail/factory.js";
import { openDb } from "../../src/store/db.js";
import { pendingRenewal } from "../../src/store/renewals.js";
import { dnFor } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, signCsr, type TestCa } from "../helpers/openssl.js";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp.js";

const D = 86_400_000;
let ca: TestCa;
let smtp: TestSmtpServer;
before(async () => {
  ca = makeCa(makeTempDir("credd-alerts-ca-"));
  smtp = await startSmtpServer();
});
after(async () => {
  await smtp.stop();
});

function yaml(dir: string, port: number): string {
  return `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
smtp: { url: "smtp://127.0.0.1:${port}", from: "credd <credd@partner.example>", ca_file: ${smtp.caPath}, timeout_ms: 2000 }
alerts: { to: [ops@partner.example], critical_to: [pager@partner.example] }
stellantis: { contact: connectedcar@stellantis.example, ca_file: ${ca.certPath} }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    remind_after_days: 90
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
`;
}

/** A fresh context on the same files: what a daemon restart looks like to the alert logic. */
function openCtx(dir: string, port: number, clock: ManualClock): TestCtx {
  const config = parseConfig(yaml(dir, port), join(dir, "credd.yaml"));
  return sqliteCtx({ config, db: openDb(config.state_dir), clock, log: createLogger({ level: "silent" }), mailer: makeMailerFactory(config) });
}

const alertSubjects = (from: number) =>
  smtp.received
    .slice(from)
    .filter((m) => m.parsed.subject?.startsWith("[credd]"))
    .map((m) => m.parsed.subject);

test("threshold digests at 30/14/7/3/1 days and daily once expired, no duplicate after a restart, then resolved", async () => {
  const dir = makeTempDir("credd-alerts-");
  const hand = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, days: 365 });
  const notAfter = Date.parse(new (await import("node:crypto")).X509Certificate(readFileSync(hand.certPath)).validTo);
  const clock = new ManualClock(Date.now() + 5000);
  let ctx = openCtx(dir, smtp.port, clock);
  await importCertificate(ctx, ctx.config.credentials[0]!, {
    certText: readFileSync(hand.certPath, "utf8"),
    certFile: hand.certPath,
    keyText: readFileSync(hand.keyPath, "utf8"),
    keyFile: hand.keyPath,
  });
  const start = smtp.received.length;
  const step = async (daysLeft: number) => {
    clock.set(notAfter - daysLeft * D);
    ctx.db.close();
    ctx = openCtx(dir, smtp.port, clock); // a restart between steps
    await checkAll(ctx);
    await checkAll(ctx); // a second check at the same time sends nothing more
    await deliverDue(ctx);
    return alertSubjects(start);
  };

  const expected: [number, string | undefined][] = [
    [31, undefined],
    [29.9, "[credd] WARNING fleet-prod: certificate expires in 29 days"],
    [20, undefined],
    [13.9, "[credd] WARNING fleet-prod: certificate expires in 13 days"],
    [10, undefined],
    [6.9, "[credd] CRITICAL fleet-prod: certificate expires in 6 days"],
    [2.9, "[credd] CRITICAL fleet-prod: certificate expires in 2 days"],
    [0.9, "[credd] CRITICAL fleet-prod: certificate expires in 0 days"],
    [-0.1, "[credd] CRITICAL fleet-prod: certificate expired 0 days ago"],
    [-1.1, "[credd] CRITICAL fleet-prod: certificate expired 1 days ago"],
    [-1.5, undefined],
    [-2.1, "[credd] CRITICAL fleet-prod: certificate expired 2 days ago"],
  ];
  const want: string[] = [];
  for (const [left, subject] of expected) {
    if (subject) want.push(subject);
    const got = await step(left);
    assert.deepEqual(got, want, `at ${left} days left`);
  }
  const critical = smtp.received.slice(start).find((m) => m.parsed.subject?.startsWith("[credd] CRITICAL"))!;
  assert.ok(critical.envelopeTo.includes("pager@partner.example"), "critical_to is told of critical digests");
  assert.match(critical.parsed.text as string, /what to do: chase connectedcar@stellantis\.example/);
  const warning = smtp.received.slice(start).find((m) => m.parsed.subject?.startsWith("[credd] WARNING"))!;
  assert.ok(!warning.envelopeTo.includes("pager@partner.example"));

  // The renewal's CSR comes back signed: once live, the situation ends with one "resolved" email.
  const renewal = pendingRenewal(ctx.db, "fleet-prod")!;
  const signed = join(dir, "signed.pem");
  signCsr(ca, join(ctx.config.state_dir, `credentials/fleet-prod/archive/csr-${renewal.version}.pem`), signed, { days: 900 });
  const out = await ingestBatch(ctx, [{ name: "signed.pem", bytes: readFileSync(signed) }]);
  assert.equal(out[0]!.outcome, "installed", JSON.stringify(out));
  await checkAll(ctx);
  await deliverDue(ctx);
  const all = alertSubjects(start);
  assert.equal(all.length, want.length + 1);
  assert.equal(all.at(-1), "[credd] RESOLVED fleet-prod: certificate expired 2 days ago");
  await checkAll(ctx);
  await deliverDue(ctx);
  assert.equal(alertSubjects(start).length, want.length + 1, "nothing more once resolved");
  ctx.db.close();
});

test("SMTP down when a threshold is reached: the digest arrives once after SMTP is back", async () => {
  const dir = makeTempDir("credd-alerts-down-");
  const hand = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, days: 20 });
  const down = await startSmtpServer();
  const port = down.port;
  await down.stop();
  const clock = new ManualClock(Date.now() + 5000);
  const ctx = openCtx(dir, port, clock);
  await importCertificate(ctx, ctx.config.credentials[0]!, {
    certText: readFileSync(hand.certPath, "utf8"),
    certFile: hand.certPath,
    keyText: readFileSync(hand.keyPath, "utf8"),
    keyFile: hand.keyPath,
  });
  await checkAll(ctx);
  const r = await deliverDue(ctx);
  assert.ok(r.failed >= 1, "SMTP is down");
  const up = await startSmtpServer({ port });
  try {
    clock.advance(2 * 60_000);
    await checkAll(ctx);
    await deliverDue(ctx);
    clock.advance(10 * 60_000);
    await checkAll(ctx);
    await deliverDue(ctx);
    const alerts = up.received.filter((m) => m.parsed.subject?.startsWith("[credd]"));
    assert.equal(alerts.length, 1, alerts.map((m) => m.parsed.subject).join(" | "));
    assert.match(alerts[0]!.parsed.subject ?? "", /^\[credd\] WARNING fleet-prod: certificate expires in 19 days/);
  } finally {
    await up.stop();
    ctx.db.close();
  }
});

test("shared store: a standby missing for an hour is one alert email from the leader; back, it is resolved", async () => {
  const dir = makeTempDir("credd-alerts-standby-");
  const clock = new ManualClock(new Date("2026-11-25T15:00:00.000Z"));
  const ctx = openCtx(dir, smtp.port, clock);
  // The rule reads the hosts table only on a shared store; the table and its rows are the same on SQLite.
  ctx.config.store = { postgres: { url_file: join(dir, "url"), key_encryption_key_file: join(dir, "kek") } } as typeof ctx.config.store;
  const MIN = 60_000;
  await ctx.store.setCheckPeriodMs(MIN);
  const beat = async (name: string, role: "leader" | "follower", startedAt: string) =>
    ctx.store.heartbeatHost({ name, pid: 1, role, version: "0", started_at: startedAt, last_heartbeat_at: clock.now().toISOString() });
  const t0 = clock.now().toISOString();
  await beat("host-a", "leader", t0);
  await beat("host-b", "follower", t0);
  const sent0 = smtp.received.length;
  assert.equal((await evaluateAlerts(ctx)).fired, 0, "two hosts: nothing");
  // host-b stops; it is stale after two periods, and the alert waits for an hour of that.
  clock.advance(50 * MIN);
  await beat("host-a", "leader", t0);
  assert.equal((await evaluateAlerts(ctx)).fired, 0, "48 minutes without a standby: not yet");
  clock.advance(13 * MIN);
  await beat("host-a", "leader", t0);
  const fired = await evaluateAlerts(ctx);
  assert.equal(fired.fired, 1, "an hour without a standby: one alert");
  await deliverDue(ctx);
  const mails = smtp.received.slice(sent0);
  assert.equal(mails.length, 1);
  assert.match(mails[0]!.parsed.subject ?? "", /standby/);
  assert.match(mails[0]!.parsed.text ?? "", /only host-a sent a heartbeat .* since 2026-11-25T15:02:00\.000Z/);
  clock.advance(30 * MIN);
  await beat("host-a", "leader", t0);
  assert.equal((await evaluateAlerts(ctx)).fired, 0, "once per outage, not at every check");
  // host-b is back: resolved, and said so.
  await beat("host-b", "follower", clock.now().toISOString());
  const back = await evaluateAlerts(ctx);
  assert.equal(back.resolved, 1);
  await deliverDue(ctx);
  assert.equal(smtp.received.length, sent0 + 2);
  assert.match(smtp.received.at(-1)!.parsed.text ?? "", /resolved|back|no standby/i);
  ctx.db.close();
});

test("shared store: the leader restarting while the standby is still missing neither resolves the alert nor fires it again", async () => {
  const dir = makeTempDir("credd-alerts-standby-restart-");
  const clock = new ManualClock(new Date("2026-11-25T15:00:00.000Z"));
  const ctx = openCtx(dir, smtp.port, clock);
  ctx.config.store = { postgres: { url_file: join(dir, "url"), key_encryption_key_file: join(dir, "kek") } } as typeof ctx.config.store;
  const MIN = 60_000;
  await ctx.store.setCheckPeriodMs(MIN);
  const beat = async (name: string, startedAt: string) =>
    ctx.store.heartbeatHost({ name, pid: 1, role: "leader", version: "0", started_at: startedAt, last_heartbeat_at: clock.now().toISOString() });
  const t0 = clock.now().toISOString();
  await beat("host-a", t0);
  await beat("host-b", t0);
  clock.advance(70 * MIN);
  await beat("host-a", t0);
  assert.equal((await evaluateAlerts(ctx)).fired, 1, "host-b gone for over an hour: alerted");
  // host-a is restarted (an upgrade): a new started_at; host-b is still gone.
  clock.advance(5 * MIN);
  const restarted = clock.now().toISOString();
  await beat("host-a", restarted);
  const after = await evaluateAlerts(ctx);
  assert.deepEqual({ fired: after.fired, resolved: after.resolved }, { fired: 0, resolved: 0 }, "still missing: no RESOLVED email");
  clock.advance(70 * MIN);
  await beat("host-a", restarted);
  const later = await evaluateAlerts(ctx);
  assert.deepEqual({ fired: later.fired, resolved: later.resolved }, { fired: 0, resolved: 0 }, "nor a second alert an hour later");
  // host-b is back: resolved.
  await beat("host-b", clock.now().toISOString());
  assert.equal((await evaluateAlerts(ctx)).resolved, 1);
  ctx.db.close();
});
