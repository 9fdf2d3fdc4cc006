// The IMAP source against a real Dovecot started by the test on loopback (its own config, TLS
// certificate and passwd-file login; STARTTLS on its port): replies put in by IMAP APPEND, seen
// through IDLE, taken in by the real ingest, flagged and moved; a restart of the server mid-IDLE; a
// wrong password (one ops alert, no secret anywhere). Skipped, with the reason, without Dovecot.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ImapFlow } from "imapflow";
import { pino } from "pino";
import { ManualClock } from "../helpers/clock.js";
import { parseConfig } from "../../src/config/load.js";
import { sqliteCtx, type TestCtx } from "../helpers/ctx.js";
import { startRenewal } from "../../src/core/renewal.js";
import { buildStatus } from "../../src/core/status.js";
import { makeMailerFactory } from "../../src/mail/factory.js";
import type { OutgoingMail } from "../../src/mail/message.js";
import { startImapSource, type ImapSource } from "../../src/mailbox/imap.js";
import { liveCertificate } from "../../src/store/certificates.js";
import { openDb } from "../../src/store/db.js";
import { queuedMails } from "../../src/store/outbox.js";
import { dovecotMissing, startDovecot, type Dovecot } from "../helpers/dovecot.js";
import { composeReply } from "../helpers/mailbox.js";
import { makeCa, makeTempDir, signCsr, type TestCa } from "../helpers/openssl.js";

const skip = dovecotMissing();
const MZP = "MZP128745";

let ca: TestCa;
let dovecot: Dovecot;
before(async () => {
  if (skip) return;
  ca = makeCa(makeTempDir("credd-int-imap-ca-"));
  dovecot = await startDovecot(makeTempDir("credd-int-dovecot-"));
});
after(async () => {
  await dovecot?.stop();
});

/** Waits for `cond` (an event seen through the database), failing after `ms`. */
async function waitFor<T>(what: string, cond: () => T | undefined | false, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface World {
  ctx: TestCtx;
  lines: string[];
  passwordFile: string;
  csrMessageId: string;
  certPem: string;
  start(): ImapSource;
  rows(): Array<{ message_key: string; outcome: string; folder: string | null; moved_at: string | null }>;
  mails(kind: string): OutgoingMail[];
}

async function world(password = dovecot.password): Promise<World> {
  const dir = makeTempDir("credd-int-imap-");
  const passwordFile = join(dir, "imap-password");
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  const config = parseConfig(
    `state_dir: ${join(dir, "state")}
smtp: { url: "smtp://127.0.0.1:9", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example] }
stellantis: { contact: connectedcar@stellantis.example, ca_file: ${ca.certPath} }
credentials:
  - name: fleet-prod
    mzp: ${MZP}
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
mailbox:
  imap:
    host: ${dovecot.host}
    port: ${dovecot.imapPort}
    user: ${dovecot.user}
    password_file: ${passwordFile}
    ca_file: ${dovecot.tls.caPath}
`,
    join(dir, "credd.yaml"),
  );
  const lines: string[] = [];
  const ctx: TestCtx = sqliteCtx({
    config,
    db: openDb(config.state_dir),
    clock: new ManualClock(Date.now() + 5 * 60_000),
    log: pino({ level: "info" }, { write: (l: string) => void lines.push(l) }),
    mailer: makeMailerFactory(config),
  });
  const started = await startRenewal(ctx, config.credentials[0]!, { kind: "enroll", forced: true, reason: "test" });
  const certPem = signCsr(ca, started.csrPath, join(dir, "signed.pem"));
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(_what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    const next = chain.then(fn);
    chain = next.catch(() => undefined);
    return next;
  };
  return {
    ctx,
    lines,
    passwordFile,
    csrMessageId: started.messageId,
    certPem,
    start: () =>
      startImapSource(
        ctx,
        { ...config.mailbox!, imap: config.mailbox!.imap! },
        { serial, deps: {}, backoff: { initialMs: 50, maxMs: 400 }, pollMs: 60_000 },
      ),
    rows: () => ctx.db.prepare("SELECT message_key, outcome, folder, moved_at FROM mailbox_messages ORDER BY id").all() as ReturnType<World["rows"]>,
    mails: (kind) =>
      queuedMails(ctx.db)
        .filter((r) => r.kind === kind)
        .map((r) => JSON.parse(r.mail_json) as OutgoingMail),
  };
}

/** The test's own IMAP client: APPENDs replies and looks at the folders as a mail client would. */
async function mailClient(): Promise<ImapFlow> {
  const c = new ImapFlow({
    host: dovecot.host,
    port: dovecot.imapsPort,
    secure: true,
    auth: { user: dovecot.user, pass: dovecot.password },
    tls: { ca: dovecot.tls.caPem },
    logger: false,
  });
  c.on("error", () => undefined);
  await c.connect();
  return c;
}

async function folderState(c: ImapFlow, folder: string): Promise<Array<{ uid: number; seen: boolean; subject: string }>> {
  const lock = await c.getMailboxLock(folder);
  try {
    const out: Array<{ uid: number; seen: boolean; subject: string }> = [];
    if (c.mailbox && c.mailbox.exists > 0) {
      for await (const m of c.fetch("1:*", { uid: true, flags: true, envelope: true }))
        out.push({ uid: m.uid, seen: m.flags?.has("\\Seen") ?? false, subject: m.envelope?.subject ?? "" });
    }
    return out;
  } finally {
    lock.release();
  }
}

async function emptyFolders(c: ImapFlow): Promise<void> {
  for (const f of ["INBOX", "credd/done", "credd/refused"]) {
    try {
      const lock = await c.getMailboxLock(f);
      try {
        if (c.mailbox && c.mailbox.exists > 0) await c.messageDelete("1:*");
      } finally {
        lock.release();
      }
    } catch {
      /* not created yet */
    }
  }
}

describe("IMAP (Dovecot on loopback)", { skip }, () => {
  test("a reply APPENDed is seen through IDLE, goes live, and is flagged and moved; a restart handles nothing twice", async () => {
    const w = await world();
    const mc = await mailClient();
    await emptyFolders(mc);
    const other = await composeReply({ subject: "Newsletter", from: "news@elsewhere.example", text: "hello" });
    await mc.append("INBOX", other);
    const src = w.start();
    await src.ready();
    assert.deepEqual(
      w.rows().map((r) => r.outcome),
      ["ignored"],
      "the newsletter: looked at once",
    );
    const reply = await composeReply({
      inReplyTo: w.csrMessageId,
      references: [w.csrMessageId],
      text: "Please find the certificate attached.",
      attachments: [{ filename: `${MZP}.pem`, content: w.certPem, contentType: "application/x-pem-file" }],
    });
    const t0 = Date.now();
    await mc.append("INBOX", reply);
    await waitFor("the reply to be handled and moved", () => w.rows().find((r) => r.outcome === "installed" && r.moved_at));
    const ms = Date.now() - t0;
    assert.ok(liveCertificate(w.ctx.db, "fleet-prod"), "live");
    assert.ok(ms < 10_000, `seen through IDLE in ${ms} ms`);
    const done = await folderState(mc, "credd/done");
    assert.equal(done.length, 1);
    assert.equal(done[0]!.seen, true, "flagged \\Seen");
    const inbox = await folderState(mc, "INBOX");
    assert.deepEqual(
      inbox.map((m) => [m.subject, m.seen]),
      [["Newsletter", false]],
      "the newsletter untouched, unflagged",
    );
    await src.stop();

    // A restart: a new source on the same database handles nothing again.
    const again = w.start();
    await again.ready();
    assert.equal(w.rows().length, 2, "nothing handled twice");
    await again.stop();
    await mc.logout();
    w.ctx.db.close();
  });

  test("the server restarted mid-IDLE: credd reconnects with backoff and takes the next reply in", async () => {
    const w = await world();
    const mc0 = await mailClient();
    await emptyFolders(mc0);
    await mc0.logout();
    const src = w.start();
    await src.ready();
    await dovecot.stop();
    await dovecot.start();
    const mc = await mailClient();
    await mc.append("INBOX", await composeReply({ inReplyTo: w.csrMessageId, attachments: [{ filename: "cert.crt", content: w.certPem }] }));
    await waitFor("the reply after the restart", () => w.rows().find((r) => r.outcome === "installed" && r.moved_at), 30_000);
    assert.ok(
      w.lines.some((l) => l.includes("the IMAP connection was lost; reconnecting")),
      w.lines.filter((l) => l.includes("mailbox")).join("\n"),
    );
    assert.equal(w.mails("mailbox-alert").length, 0, "a short outage is no alert");
    await src.stop();
    await mc.logout();
    w.ctx.db.close();
  });

  test("the store refusing to record the source's health is logged once; the loop goes on, no unhandled rejection", async () => {
    const w = await world("not-the-password-5512");
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown) => void unhandled.push(r);
    process.on("unhandledRejection", onUnhandled);
    const store = w.ctx.store as { recordSourceFailure: (...a: unknown[]) => Promise<unknown> };
    const real = store.recordSourceFailure.bind(store);
    let refused = 0;
    store.recordSourceFailure = async () => {
      refused++;
      throw new Error("connection terminated (PostgreSQL restarting)");
    };
    const src = w.start();
    try {
      await waitFor("several refused attempts", () => refused >= 3);
      const logged = w.lines.filter((l) => l.includes("cannot record the mailbox's state in the store"));
      assert.equal(logged.length, 1, "logged once for the same error");
      // The store is back: the next attempt records the failure as usual.
      store.recordSourceFailure = real;
      await waitFor(
        "the failure recorded",
        () => ((w.ctx.db.prepare("SELECT failures FROM mailbox_sources").get() as { failures: number } | undefined)?.failures ?? 0) >= 1,
      );
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(unhandled, [], "no unhandled rejection");
    } finally {
      process.off("unhandledRejection", onUnhandled);
      await src.stop();
      w.ctx.db.close();
    }
  });

  test("a wrong password: one ops alert with the fix and no secret; a resolved email once the file is right", async () => {
    const wrong = "not-the-password-7731";
    const w = await world(wrong);
    const src = w.start();
    const alert = await waitFor("the ops alert", () => w.mails("mailbox-alert")[0]);
    assert.match(alert.subject, /credd cannot read imap:credd@partner\.example@127\.0\.0\.1/);
    assert.match(alert.text, /the login was refused/);
    assert.match(alert.text, /mailbox\.imap\.password_file/);
    const failing = (await buildStatus(w.ctx)).mailbox!;
    assert.equal(failing.reading, false, "status says the mailbox cannot be read");
    assert.match(failing.last_error ?? "", /the login was refused/);
    await waitFor(
      "a few more attempts",
      () => ((w.ctx.db.prepare("SELECT failures FROM mailbox_sources").get() as { failures: number } | undefined)?.failures ?? 0) >= 3,
    );
    assert.equal(w.mails("mailbox-alert").length, 1, "one alert however many attempts");
    writeFileSync(w.passwordFile, `${dovecot.password}\n`);
    await src.ready();
    const resolved = await waitFor("the resolved email", () => w.mails("mailbox-alert")[1]);
    assert.match(resolved.subject, /RESOLVED/);
    await src.stop();
    const everything = [
      ...w.lines,
      JSON.stringify(w.ctx.db.prepare("SELECT * FROM mailbox_sources").all()),
      ...queuedMails(w.ctx.db).map((r) => r.mail_json),
    ].join("\n");
    for (const secret of [wrong, dovecot.password]) assert.ok(!everything.includes(secret), `no secret in logs, database or emails`);
    w.ctx.db.close();
  });
});
