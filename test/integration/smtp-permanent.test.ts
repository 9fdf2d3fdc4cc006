// Permanent SMTP problems against the real smtp-server on loopback: a refused login, a 5xx reply,
// an untrusted certificate and an unusable CA file are told apart from "down, will retry"; the email
// stays queued, the alert is raised at once and status says why; once fixed it goes out and resolves.
import assert from "node:assert/strict";
import net from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ManualClock } from "../helpers/clock.js";
import { parseConfig } from "../../src/config/load.js";
import { evaluateAlerts } from "../../src/core/alerts.js";
import { sqliteCtx, type TestCtx } from "../helpers/ctx.js";
import { deliverDue } from "../../src/core/deliver.js";
import { startRenewal } from "../../src/core/renewal.js";
import { buildStatus } from "../../src/core/status.js";
import { createLogger } from "../../src/log.js";
import { makeMailerFactory } from "../../src/mail/factory.js";
import { newMessageId, type OutgoingMail } from "../../src/mail/message.js";
import { createMailer, SmtpError } from "../../src/mail/smtp.js";
import { openAlerts } from "../../src/store/alerts.js";
import { openDb } from "../../src/store/db.js";
import { queuedMails } from "../../src/store/outbox.js";
import { makeTempDir } from "../helpers/openssl.js";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp.js";

const MIN = 60_000;

function mail(to = ["connectedcar@mpsa.example"]): OutgoingMail {
  return {
    messageId: newMessageId("credd <credd@partner.example>"),
    from: "credd <credd@partner.example>",
    to,
    cc: [],
    subject: "CSR for MZP128745",
    text: "please sign\n",
    attachments: [],
  };
}

async function failure(p: Promise<unknown>): Promise<SmtpError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SmtpError, `an SmtpError, got ${String(err)}`);
    assert.equal(err.code, "NETWORK");
    return err;
  }
  assert.fail("the send succeeded");
}

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe("permanent or temporary: what retrying can cure", () => {
  const servers: TestSmtpServer[] = [];
  const start = async (o: Parameters<typeof startSmtpServer>[0]) => {
    const s = await startSmtpServer(o);
    servers.push(s);
    return s;
  };
  after(async () => {
    for (const s of servers) await s.stop();
  });

  test("the login refused (535): permanent, names the user, never the password", async () => {
    const s = await start({ auth: { user: "credd", pass: "right-password" } });
    const err = await failure(createMailer(s.config(), { password: "wrong-password" }, { ca: s.caPem }).send(mail()));
    assert.equal(err.permanent, true);
    assert.match(err.message, /authentication failed for user credd \(server said: 535/);
    assert.match(err.fix, /smtp\.user and the password in smtp\.password_file/);
    assert.ok(!err.message.includes("wrong-password") && !err.fix.includes("wrong-password"));
  });

  test("a 5xx reply to the message (554): permanent", async () => {
    const s = await start({ refuseMessages: true });
    const err = await failure(createMailer(s.config(), {}, { ca: s.caPem }).send(mail()));
    assert.equal(err.permanent, true);
    assert.match(err.message, /the server rejected the message \(server said: 554/);
    assert.match(err.fix, /refused it for good/);
  });

  test("every recipient refused (550): permanent", async () => {
    const s = await start({ rejectRecipients: ["connectedcar@mpsa.example"] });
    const err = await failure(createMailer(s.config(), {}, { ca: s.caPem }).send(mail()));
    assert.equal(err.permanent, true);
    assert.match(err.message, /550/);
  });

  test("the server's certificate not trusted: permanent, the fix names smtp.ca_file", async () => {
    const s = await start({});
    const err = await failure(createMailer(s.config(), {}, {}).send(mail()));
    assert.equal(err.permanent, true);
    assert.match(err.fix, /smtp\.ca_file/);
  });

  test("a 451 and a closed port: temporary (the outbox retries them by itself)", async () => {
    const s = await start({ failNext: 1 });
    const deferred = await failure(createMailer(s.config(), {}, { ca: s.caPem }).send(mail()));
    assert.equal(deferred.permanent, false);
    assert.match(deferred.message, /451/);
    const port = await closedPort();
    const down = await failure(createMailer(s.config({ url: `smtp://127.0.0.1:${port}`, port }), {}, { ca: s.caPem }).send(mail()));
    assert.equal(down.permanent, false);
    assert.match(down.message, /connection refused/);
  });
});

describe("the outbox with a permanent refusal", () => {
  let smtp: TestSmtpServer;
  before(async () => {
    smtp = await startSmtpServer({ auth: { user: "credd", pass: "right-password" } });
  });
  after(async () => {
    await smtp.stop();
  });

  function makeCtx(dir: string, clock: ManualClock, smtpYaml: string): TestCtx {
    const config = parseConfig(
      `state_dir: ${join(dir, "state")}
smtp: { url: "smtp://127.0.0.1:${smtp.port}", from: "credd <credd@partner.example>", timeout_ms: 2000, ${smtpYaml} }
alerts: { to: [ops@partner.example] }
stellantis: { contact: connectedcar@stellantis.example }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
`,
      join(dir, "credd.yaml"),
      {},
    );
    return sqliteCtx({ config, db: openDb(config.state_dir), clock, log: createLogger({ level: "silent" }), mailer: makeMailerFactory(config) });
  }

  test("login refused: stays queued, marked permanent, alert at once (once), status says why; fixed, it goes out and resolves", async () => {
    const dir = makeTempDir("credd-int-smtp-refused-");
    const pass = join(dir, "smtp.pass");
    writeFileSync(pass, "wrong-password\n");
    const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
    const ctx = makeCtx(dir, clock, `user: credd, password_file: ${pass}, ca_file: ${smtp.caPath}`);
    try {
      const cred = ctx.config.credentials[0]!;
      await startRenewal(ctx, cred, { kind: "enroll", forced: true, reason: "test" });
      const r = await deliverDue(ctx);
      assert.equal(r.failed, 1);
      assert.equal(r.permanent.length, 1);
      assert.match(r.permanent[0]!.error, /authentication failed for user credd/);
      const q = queuedMails(ctx.db);
      assert.equal(q.length, 1, "the email stays in the outbox");
      assert.equal(q[0]!.last_error_permanent, 1);
      assert.equal(q[0]!.sent_at, null);

      const first = await evaluateAlerts(ctx);
      assert.equal(first.fired, 1);
      const alert = openAlerts(ctx.db).find((a) => a.kind === "smtp-refused");
      assert.ok(alert, "the smtp-refused alert is open");
      assert.match(alert.detail, /1 queued email was refused for good \(retrying cannot help\): SMTP 127\.0\.0\.1:\d+: authentication failed/);
      const view = await buildStatus(ctx);
      assert.ok(
        view.alerts.some((a) => a.kind === "smtp-refused"),
        "status lists the alert",
      );
      const c = view.credentials[0]!;
      assert.ok(
        c.problems.some((p) =>
          /^an email was refused for good by SMTP \(it stays queued until that is fixed\): SMTP .*authentication failed/.test(p),
        ),
        c.problems.join("\n"),
      );

      // The digest about it is refused too (same login): no new alert, no loop of digests.
      clock.advance(2 * MIN);
      const again = await deliverDue(ctx);
      assert.equal(again.permanent.length, 2, "the CSR email and the alert digest, both refused");
      assert.equal((await evaluateAlerts(ctx)).fired, 0);

      // Fixed (the password, and a new transport as a reload makes): both go out, the alert resolves.
      writeFileSync(pass, "right-password\n");
      ctx.mailer = makeMailerFactory(ctx.config);
      clock.advance(10 * MIN);
      const fixed = await deliverDue(ctx);
      assert.equal(fixed.sent, 2);
      assert.equal(queuedMails(ctx.db).length, 0);
      assert.equal((await evaluateAlerts(ctx)).resolved, 1);
      assert.ok(!openAlerts(ctx.db).some((a) => a.kind === "smtp-refused"));
    } finally {
      ctx.db.close();
    }
  });

  test("smtp.ca_file gone when the email is sent: permanent, in plain words, no raw ENOENT", async () => {
    const dir = makeTempDir("credd-int-smtp-ca-");
    const pass = join(dir, "smtp.pass");
    writeFileSync(pass, "right-password\n");
    const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
    const ca = join(dir, "gone-ca.pem");
    const ctx = makeCtx(dir, clock, `user: credd, password_file: ${pass}, ca_file: ${ca}`);
    try {
      await startRenewal(ctx, ctx.config.credentials[0]!, { kind: "enroll", forced: true, reason: "test" });
      const r = await deliverDue(ctx);
      assert.equal(r.permanent.length, 1);
      assert.equal(
        r.permanent[0]!.error,
        `${join(dir, "credd.yaml")}: smtp.ca_file: ${ca} does not exist; it should hold the CA certificate of the SMTP server (PEM): it signed the server's TLS certificate ` +
          "(fix: save the CA certificate of the SMTP server there as PEM (the mail server's administrator gives it), or correct smtp.ca_file)",
      );
      assert.ok(!r.errors.join("\n").includes("ENOENT"));
      assert.equal(queuedMails(ctx.db)[0]!.last_error_permanent, 1);
    } finally {
      ctx.db.close();
    }
  });
});
