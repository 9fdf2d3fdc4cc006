// The SMTP adapter against a real SMTP server on loopback: TLS required and verified, auth,
// refusals and timeouts, each turned into a CreddError an ops person can read.
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";
import type { SmtpConfig } from "../../src/config/types.js";
import { CreddError } from "../../src/errors.js";
import type { OutgoingMail } from "../../src/mail/message.js";
import { newMessageId } from "../../src/mail/message.js";
import { createMailer, SmtpRejectedError } from "../../src/mail/smtp.js";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp.js";
import { makeServerTls, removeTestPki } from "../helpers/tls.js";

const CSR_PEM = [
  "-----BEGIN CERTIFICATE REQUEST-----",
  "MIIBWjCCAQACAQAwgZ0xCzAJBgNVBAYTAkZSMRcwFQYDVQQIDA5JbGUgZGUgRnJh",
  "bmNlMQ4wDAYDVQQHDAVQYXJpczESMBAGA1UECgwJRnJlZTJNb3ZlMRowGAYDVQQL",
  "DBFQcm9ncmFtcyBQYXJ0bmVyczESMBAGA1UEAwwJTVpQMTI4NzQ1MSEwHwYJKoZI",
  "-----END CERTIFICATE REQUEST-----",
  "",
].join("\n");

function mail(overrides: Partial<OutgoingMail> = {}): OutgoingMail {
  return {
    messageId: newMessageId("credd <credd@partner.example>"),
    from: "credd <credd@partner.example>",
    to: ["connectedcar@mpsa.example"],
    cc: ["ops@partner.example"],
    subject: "CSR for MZP128745 (fleet-prod)",
    text: "Hello,\n\nplease sign the attached CSR for MZP128745.\n\nRegards,\ncredd\n",
    attachments: [{ filename: "MZP128745.csr", contentType: "application/pkcs10", content: CSR_PEM }],
    ...overrides,
  };
}

async function rejectsNetwork(p: Promise<unknown>, message: RegExp): Promise<CreddError> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof CreddError, `expected a CreddError, got ${inspect(caught)}`);
  assert.equal(caught.code, "NETWORK");
  assert.match(caught.message, message);
  return caught;
}

/** A port that was free a moment ago: nothing listens on it. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe("SMTP over STARTTLS", () => {
  let server: TestSmtpServer;
  before(async () => {
    server = await startSmtpServer({ tls: "starttls" });
  });
  after(() => server.stop());

  test("a mail with a PEM attachment arrives encrypted, intact, with our Message-ID", async () => {
    const m = mail();
    const mailer = createMailer(server.config(), {}, { ca: server.caPem, now: () => new Date("2026-03-01T10:00:00Z") });
    const result = await mailer.send(m);
    mailer.close();
    assert.deepEqual(result.accepted.sort(), ["connectedcar@mpsa.example", "ops@partner.example"]);
    assert.match(result.response, /^250 /);

    const [got] = await server.waitFor(1);
    assert.ok(got);
    assert.equal(got.secure, true);
    assert.equal(got.envelopeFrom, "credd@partner.example");
    assert.deepEqual(got.envelopeTo.sort(), ["connectedcar@mpsa.example", "ops@partner.example"]);
    const p = got.parsed;
    assert.equal(p.messageId, m.messageId);
    assert.equal(p.subject, m.subject);
    assert.equal(p.text, m.text);
    assert.equal(p.html, false);
    assert.deepEqual(
      (Array.isArray(p.to) ? p.to : [p.to]).flatMap((a) => a?.value.map((v) => v.address) ?? []),
      ["connectedcar@mpsa.example"],
    );
    assert.deepEqual(
      (Array.isArray(p.cc) ? p.cc : [p.cc]).flatMap((a) => a?.value.map((v) => v.address) ?? []),
      ["ops@partner.example"],
    );
    assert.equal(p.from?.value[0]?.address, "credd@partner.example");
    assert.equal(p.date?.toISOString(), "2026-03-01T10:00:00.000Z");
    assert.equal(p.attachments.length, 1);
    const att = p.attachments[0]!;
    assert.equal(att.filename, "MZP128745.csr");
    assert.equal(att.contentType, "application/pkcs10");
    assert.ok(Buffer.from(CSR_PEM, "utf8").equals(att.content), "attachment bytes differ");
  });

  test("a resend of the same stored mail carries the same Message-ID", async () => {
    const m = mail({ subject: "resend" });
    const mailer = createMailer(server.config(), {}, { ca: server.caPem });
    const before = server.received.length;
    await mailer.send(m);
    await mailer.send(JSON.parse(JSON.stringify(m)) as OutgoingMail);
    mailer.close();
    const got = await server.waitFor(before + 2);
    assert.equal(got[before]!.parsed.messageId, m.messageId);
    assert.equal(got[before + 1]!.parsed.messageId, m.messageId);
  });

  test("verify() connects and upgrades without sending", async () => {
    const before = server.received.length;
    const mailer = createMailer(server.config(), {}, { ca: server.caPem });
    await mailer.verify();
    mailer.close();
    assert.equal(server.received.length, before);
  });

  test("a server certificate from an unknown CA is refused (verification is on)", async () => {
    const before = server.received.length;
    const mailer = createMailer(server.config(), {});
    await rejectsNetwork(mailer.send(mail()), /^SMTP 127\.0\.0\.1:\d+: the server's TLS certificate was not accepted: .*certificate.*smtp\.ca_file/);
    mailer.close();
    assert.equal(server.received.length, before);
  });

  test("a certificate from another CA than the one given is refused too", async () => {
    const other = makeServerTls();
    try {
      const mailer = createMailer(server.config(), {}, { ca: other.caPem });
      await rejectsNetwork(mailer.send(mail()), /TLS certificate was not accepted/);
      mailer.close();
    } finally {
      removeTestPki(other.dir);
    }
  });

  test("a recipient the server refuses fails the send, naming that recipient", async () => {
    const s = await startSmtpServer({ rejectRecipients: ["nobody@mpsa.example"] });
    try {
      const mailer = createMailer(s.config(), {}, { ca: s.caPem });
      const err = await rejectsNetwork(
        mailer.send(mail({ to: ["connectedcar@mpsa.example", "nobody@mpsa.example"], cc: [] })),
        /nobody@mpsa\.example/,
      );
      assert.ok(err instanceof SmtpRejectedError);
      assert.deepEqual(err.rejected, ["nobody@mpsa.example"]);
      assert.deepEqual(err.accepted, ["connectedcar@mpsa.example"]);
      assert.doesNotMatch(err.message, /connectedcar@mpsa\.example.*refused/);

      // every recipient refused: nodemailer throws itself, still named
      await rejectsNetwork(mailer.send(mail({ to: ["nobody@mpsa.example"], cc: [] })), /refused recipient nobody@mpsa\.example.*550/);
      mailer.close();
    } finally {
      await s.stop();
    }
  });

  test("a temporary refusal of the message (451) is a NETWORK error saying so", async () => {
    const s = await startSmtpServer({ failNext: 1 });
    try {
      const mailer = createMailer(s.config(), {}, { ca: s.caPem });
      await rejectsNetwork(mailer.send(mail()), /deferred the message.*451/);
      await mailer.send(mail());
      mailer.close();
      assert.equal((await s.waitFor(1)).length, 1);
    } finally {
      await s.stop();
    }
  });
});

describe("SMTP authentication", () => {
  const PASSWORD = "s3cret-Pa55word!";
  let server: TestSmtpServer;
  before(async () => {
    server = await startSmtpServer({ tls: "starttls", auth: { user: "credd", pass: PASSWORD } });
  });
  after(() => server.stop());

  test("the right password sends", async () => {
    const cfg = server.config();
    assert.equal(cfg.user, "credd");
    const mailer = createMailer(cfg, { password: PASSWORD }, { ca: server.caPem });
    await mailer.verify();
    await mailer.send(mail());
    mailer.close();
    const [got] = await server.waitFor(1);
    assert.equal(got?.secure, true);
  });

  test("a wrong password fails as NETWORK naming the user, and no password leaks", async () => {
    const wrong = "wr0ng-Passw0rd-xyz";
    const mailer = createMailer(server.config(), { password: wrong }, { ca: server.caPem });
    const before = server.received.length;
    const err = await rejectsNetwork(mailer.send(mail()), /^SMTP 127\.0\.0\.1:\d+: authentication failed for user credd/);
    const everything = inspect(err, { depth: 10, showHidden: true });
    assert.ok(!everything.includes(wrong), "the wrong password appears in the error");
    assert.ok(!everything.includes(PASSWORD));
    assert.ok(!everything.includes(Buffer.from(`\0credd\0${wrong}`).toString("base64")));
    await rejectsNetwork(mailer.verify(), /authentication failed for user credd/);
    mailer.close();
    assert.ok(server.authFailures >= 1);
    assert.equal(server.received.length, before);
  });

  test("a user without a password is a CONFIG error before any connection", () => {
    assert.throws(
      () => createMailer(server.config(), {}, { ca: server.caPem }),
      (err: unknown) => err instanceof CreddError && err.code === "CONFIG" && /password_file/.test(err.message),
    );
  });
});

describe("a server that offers no STARTTLS", () => {
  let server: TestSmtpServer;
  before(async () => {
    server = await startSmtpServer({ tls: "none" });
  });
  after(() => server.stop());

  test("is refused when TLS is required, and receives nothing", async () => {
    const mailer = createMailer(server.config({ tls: "starttls" }), {}, { ca: server.caPem });
    await rejectsNetwork(
      mailer.send(mail()),
      /^SMTP 127\.0\.0\.1:\d+: STARTTLS not offered by the server and tls is required \(set smtp\.tls: none only on a trusted network\)/,
    );
    mailer.close();
    assert.equal(server.received.length, 0);
  });

  test("is used in plaintext with tls: none", async () => {
    const mailer = createMailer(server.config({ tls: "none" }), {}, { ca: server.caPem });
    await mailer.send(mail());
    mailer.close();
    const [got] = await server.waitFor(1);
    assert.equal(got?.secure, false);
  });
});

describe("SMTP with implicit TLS (smtps)", () => {
  test("sends over TLS from the first byte", async () => {
    const s = await startSmtpServer({ tls: "implicit" });
    try {
      const cfg = s.config();
      assert.equal(cfg.secure, true);
      const mailer = createMailer(cfg, {}, { ca: s.caPem });
      await mailer.send(mail());
      mailer.close();
      const [got] = await s.waitFor(1);
      assert.equal(got?.secure, true);
    } finally {
      await s.stop();
    }
  });
});

describe("SMTP server unreachable or silent", () => {
  test("a closed port fails fast with 'connection refused'", async () => {
    const port = await closedPort();
    const mailer = createMailer(
      { url: `smtp://127.0.0.1:${port}`, secure: false, host: "127.0.0.1", port, from: "credd@partner.example", tls: "starttls", timeout_ms: 10_000 },
      {},
    );
    const started = Date.now();
    await rejectsNetwork(mailer.send(mail()), new RegExp(`^SMTP 127\\.0\\.0\\.1:${port}: connection refused`));
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    mailer.close();
  });

  test("a server that never sends its greeting times out after timeout_ms", async () => {
    const silent = await silentServer();
    try {
      const mailer = createMailer(silent.config(500), {});
      const started = Date.now();
      await rejectsNetwork(mailer.send(mail()), /timed out after 0\.5 s waiting for the server's greeting/);
      const took = Date.now() - started;
      assert.ok(took >= 400 && took < 3000, `took ${took} ms`);
      await rejectsNetwork(mailer.verify(), /timed out after 0\.5 s/);
      mailer.close();
    } finally {
      await silent.stop();
    }
  });

  test("a server that greets and then goes silent times out too", async () => {
    const silent = await silentServer("220 mail.partner.example ESMTP\r\n");
    try {
      const mailer = createMailer(silent.config(500), {});
      const started = Date.now();
      await rejectsNetwork(mailer.send(mail()), /timed out after \d+(\.\d)? s/);
      const took = Date.now() - started;
      assert.ok(took >= 400 && took < 3000, `took ${took} ms`);
      assert.ok(silent.heard().startsWith("EHLO "), `the client said: ${silent.heard()}`);
      mailer.close();
    } finally {
      await silent.stop();
    }
  });
});

/** A TCP server that accepts, optionally says `greeting`, then never answers. */
async function silentServer(greeting?: string) {
  const sockets = new Set<net.Socket>();
  let heard = "";
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("data", (d: Buffer) => {
      heard += d.toString("latin1");
    });
    s.on("close", () => sockets.delete(s));
    if (greeting) s.write(greeting);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as net.AddressInfo;
  return {
    heard: () => heard,
    config: (timeout_ms: number): SmtpConfig => ({
      url: `smtp://127.0.0.1:${port}`,
      secure: false,
      host: "127.0.0.1",
      port,
      from: "credd@partner.example",
      tls: "starttls",
      timeout_ms,
    }),
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}
