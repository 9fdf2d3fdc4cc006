// The renewal pipeline in-process with an injected clock: real SQLite, real SMTP on loopback, real openssl.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { pino } from "pino";
import { ManualClock } from "../helpers/clock.js";
import { parseConfig } from "../../src/config/load.js";
import { checkAll } from "../../src/core/check.js";
import type { Ctx } from "../../src/core/context.js";
import { sqliteCtx, type TestCtx } from "../helpers/ctx.js";
import { deliverDue } from "../../src/core/deliver.js";
import { startRenewal } from "../../src/core/renewal.js";
import { createLogger } from "../../src/log.js";
import { makeMailerFactory } from "../../src/mail/factory.js";
import { openDb } from "../../src/store/db.js";
import { queuedMails } from "../../src/store/outbox.js";
import { pendingRenewal } from "../../src/store/renewals.js";
import { makeTempDir, openssl } from "../helpers/openssl.js";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp.js";

const MIN = 60_000;
const DAY = 86_400_000;

function makeCtx(
  dir: string,
  smtpPort: number,
  caPath: string,
  clock: ManualClock,
  opts: { busyTimeoutMs?: number; log?: Ctx["log"] } = {},
): TestCtx {
  const yaml = `state_dir: ${join(dir, "state")}
smtp: { url: "smtp://127.0.0.1:${smtpPort}", from: "credd <credd@partner.example>", ca_file: ${caPath}, timeout_ms: 2000 }
alerts: { to: [ops@partner.example] }
stellantis: { contact: connectedcar@stellantis.example }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    client_id: 1a2b3c
    remind_after_days: 7
    auto_enroll: true
    subject: { C: FR, ST: Ile de France, L: Saint-Étienne, O: Free2Move, emailAddress: it@partner.example }
  - name: broken
    mzp: MZP000002
    auto_enroll: true
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
`;
  const config = parseConfig(yaml, join(dir, "credd.yaml"));
  return sqliteCtx({
    config,
    db: openDb(config.state_dir, opts.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: opts.busyTimeoutMs }),
    clock,
    log: opts.log ?? createLogger({ level: "silent" }),
    mailer: makeMailerFactory(config),
  });
}

let smtp: TestSmtpServer;
before(async () => {
  smtp = await startSmtpServer();
});
after(async () => {
  await smtp.stop();
});

test("SMTP down at first, up later: the CSR email stays queued, is retried with backoff and arrives once", async () => {
  const dir = makeTempDir("credd-int-deliver-");
  const down = await startSmtpServer();
  const port = down.port;
  await down.stop();
  const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
  const ctx = makeCtx(dir, port, smtp.caPath, clock);
  const cred = ctx.config.credentials[0]!;
  const r = await startRenewal(ctx, cred, { kind: "enroll", forced: true, reason: "test" });

  const first = await deliverDue(ctx);
  assert.equal(first.failed, 1);
  assert.match(first.errors[0]!, /refused|ECONNREFUSED/i);
  assert.equal(pendingRenewal(ctx.db, cred.name)?.state, "created", "not sent yet");
  const q = queuedMails(ctx.db);
  assert.equal(q.length, 1);
  assert.equal(q[0]!.next_attempt_at, new Date(clock.now().getTime() + MIN).toISOString(), "retry in 1 min");

  clock.advance(30_000);
  assert.equal((await deliverDue(ctx)).failed, 0, "not due before the backoff ends");
  clock.advance(30_000);
  assert.equal((await deliverDue(ctx)).failed, 1, "second attempt, still down");
  assert.equal(queuedMails(ctx.db)[0]!.next_attempt_at, new Date(clock.now().getTime() + 2 * MIN).toISOString(), "then 2 min");

  const up = await startSmtpServer({ port });
  try {
    clock.advance(2 * MIN);
    const sentAt = clock.now().toISOString();
    const third = await deliverDue(ctx);
    assert.equal(third.sent, 1);
    const mails = await up.waitFor(1);
    const bare = (id: string) => id.replace(/^<|>$/g, "");
    assert.equal(bare(mails[0]!.parsed.messageId ?? ""), bare(r.messageId), "the Message-ID fixed when queued");
    assert.match(bare(mails[0]!.parsed.messageId ?? ""), /^credd\.[0-9a-f-]{36}@partner\.example$/, "on the domain of smtp.from");
    clock.advance(DAY);
    assert.equal((await deliverDue(ctx)).sent, 0, "nothing left to send");
    assert.equal(up.received.length, 1, "arrived once");
    const renewal = pendingRenewal(ctx.db, cred.name)!;
    assert.equal(renewal.state, "sent");
    assert.equal(renewal.sent_at, sentAt);
  } finally {
    await up.stop();
    ctx.db.close();
  }
});

test("check: enrolls once, never a second key while pending, reminds after remind_after_days with the same CSR", async () => {
  const dir = makeTempDir("credd-int-check-");
  const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
  const ctx = makeCtx(dir, smtp.port, smtp.caPath, clock);
  const n = smtp.received.length;
  await checkAll(ctx, [ctx.config.credentials[0]!]);
  await deliverDue(ctx);
  const [csrMail] = (await smtp.waitFor(n + 1)).slice(n);
  const csrPath = join(ctx.config.state_dir, "credentials/fleet-prod/archive/csr-1.pem");
  const csr = readFileSync(csrPath);
  assert.deepEqual(Buffer.from(csrMail!.parsed.attachments[0]!.content), csr);
  // The UTF8String locality went out intact.
  assert.match(openssl(["req", "-in", csrPath, "-noout", "-subject", "-nameopt", "utf8"]).stdout, /Saint-Étienne/);

  for (let day = 1; day < 7; day++) {
    clock.advance(DAY);
    await checkAll(ctx, [ctx.config.credentials[0]!]);
    await deliverDue(ctx);
  }
  assert.equal(smtp.received.length, n + 1, "no email during the first 6 days");
  clock.advance(DAY);
  await checkAll(ctx, [ctx.config.credentials[0]!]);
  await deliverDue(ctx);
  // The reminder to the contact, and the alert digest to ops about the unanswered CSR.
  const day7 = (await smtp.waitFor(n + 3)).slice(n + 1);
  const reminder = day7.find((m) => m.parsed.subject?.startsWith("Reminder"));
  assert.match(reminder!.parsed.subject ?? "", /^Reminder 1: CSR for MZP128745/);
  const alert = day7.find((m) => m.parsed.subject?.startsWith("[credd]"));
  assert.equal(alert?.parsed.subject, "[credd] WARNING fleet-prod: CSR sent 7 days ago, no certificate back");
  assert.deepEqual(Buffer.from(reminder!.parsed.attachments[0]!.content), csr, "the same CSR, not a new key");
  assert.notEqual(reminder!.parsed.messageId, csrMail!.parsed.messageId);
  await checkAll(ctx, [ctx.config.credentials[0]!]);
  await deliverDue(ctx);
  assert.equal(smtp.received.length, n + 3, "one reminder and one alert per period");
  const keys = ctx.db.prepare("SELECT COUNT(*) AS n FROM renewals").get() as { n: number };
  assert.equal(keys.n, 1, "one renewal, one key");
  ctx.db.close();
});

test("one credential's failure is recorded and does not stop the others", async () => {
  const dir = makeTempDir("credd-int-isolate-");
  const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
  const ctx = makeCtx(dir, smtp.port, smtp.caPath, clock);
  // Make "broken"'s folder unusable: a file where its credentials/ folder should be.
  const { mkdirSync, writeFileSync } = await import("node:fs");
  mkdirSync(join(ctx.config.state_dir, "credentials"), { recursive: true });
  writeFileSync(join(ctx.config.state_dir, "credentials/broken"), "not a folder");
  const summary = await checkAll(ctx, [ctx.config.credentials[1]!, ctx.config.credentials[0]!]);
  assert.equal(summary.failed.length, 1);
  assert.equal(summary.failed[0]!.name, "broken");
  assert.ok(pendingRenewal(ctx.db, "fleet-prod"), "fleet-prod still enrolled");
  const row = ctx.db.prepare("SELECT last_error FROM checks WHERE credential = 'broken'").get() as { last_error: string };
  assert.match(row.last_error, /ENOTDIR|EEXIST|not a directory/i);
  ctx.db.close();
});

test("a recipient refused while the contact accepted: recorded, not resent (no duplicate to the contact)", async () => {
  const dir = makeTempDir("credd-int-partial-");
  const picky = await startSmtpServer({ rejectRecipients: ["ops@partner.example"] });
  const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
  const ctx = makeCtx(dir, picky.port, picky.caPath, clock);
  try {
    await startRenewal(ctx, ctx.config.credentials[0]!, { kind: "enroll", forced: true, reason: "test" });
    const r = await deliverDue(ctx);
    assert.equal(r.sent, 1);
    const [m] = await picky.waitFor(1);
    assert.deepEqual(m!.envelopeTo, ["connectedcar@stellantis.example"]);
    const row = ctx.db.prepare("SELECT sent_at, last_error FROM outbox").get() as { sent_at: string; last_error: string };
    assert.ok(row.sent_at);
    assert.match(row.last_error, /ops@partner\.example/);
    clock.advance(DAY);
    assert.equal((await deliverDue(ctx)).sent, 0);
    assert.equal(picky.received.length, 1);
  } finally {
    await picky.stop();
    ctx.db.close();
  }
});

test("SMTP accepted the email but the database cannot record it: logged as sent (not 'not sent'), recorded later, never sent twice", async () => {
  const dir = makeTempDir("credd-int-unrecorded-");
  const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: "info" }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  const ctx = makeCtx(dir, smtp.port, smtp.caPath, clock, { busyTimeoutMs: 100, log });
  const dbFile = join(ctx.config.state_dir, "credd.db");
  const cred = ctx.config.credentials[0]!;
  const r = await startRenewal(ctx, cred, { kind: "enroll", forced: true, reason: "test" });
  const n = smtp.received.length;
  // Another connection takes the write lock the moment the server has the message, before credd
  // reads the server's 250: the SMTP transaction succeeds, the "mark sent" write that follows cannot.
  const other = openDb(ctx.config.state_dir);
  const locked = smtp.waitFor(n + 1).then(() => other.exec("BEGIN EXCLUSIVE"));
  const sentAt = clock.now().toISOString();
  const first = await deliverDue(ctx);
  await locked;
  try {
    assert.equal(first.sent, 1, "the server has it");
    assert.equal(first.failed, 0, "not a failed attempt");
    assert.equal(first.unrecorded.length, 1);
    assert.match(first.unrecorded[0]!, /the SMTP server accepted it \(Message-ID <credd\.[^>]+>\), but the database could not record it as sent/);
    assert.ok(first.unrecorded[0]!.includes(`database ${dbFile} is locked`), first.unrecorded[0]);
    assert.ok(!lines.some((l) => /not sent/.test(String(l.msg))), `never "not sent": ${JSON.stringify(lines)}`);
    const logged = lines.find((l) => /^email sent, but the database could not record it/.test(String(l.msg)));
    assert.ok(logged, JSON.stringify(lines));
    assert.equal(logged.level, 50);
    assert.equal(logged.messageId, r.messageId);
    assert.match(String(logged.msg), /sent again with the same Message-ID/);
    assert.match(String(logged.err), /is locked/);
  } finally {
    other.exec("COMMIT");
    other.close();
  }
  const row = () =>
    ctx.db.prepare("SELECT sent_at, attempts, last_error FROM outbox WHERE id = ?").get(r.outboxId) as {
      sent_at: string | null;
      attempts: number;
      last_error: string | null;
    };
  assert.deepEqual(row(), { sent_at: null, attempts: 0, last_error: null }, "nothing recorded while locked, and not as a failure");

  // The lock is gone; the claim has run out: the next run records it instead of sending it again.
  clock.advance(10 * MIN);
  const second = await deliverDue(ctx);
  assert.deepEqual({ sent: second.sent, failed: second.failed, unrecorded: second.unrecorded }, { sent: 0, failed: 0, unrecorded: [] });
  assert.equal(row().sent_at, sentAt, "recorded with the time it went out");
  assert.equal(pendingRenewal(ctx.db, cred.name)?.state, "sent");
  assert.equal(pendingRenewal(ctx.db, cred.name)?.sent_at, sentAt);
  assert.ok(lines.some((l) => /^email recorded as sent/.test(String(l.msg)) && l.messageId === r.messageId));
  clock.advance(DAY);
  await deliverDue(ctx);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(smtp.received.length, n + 1, "sent once");
  ctx.db.close();
});
