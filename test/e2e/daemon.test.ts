// `credd run` as a real child process: a certificate inside the renewal window gets a CSR emailed once,
// a restart makes no second key and no second email, and status reflects each step.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { configFor, dnFor, runCredd, startCreddDaemon } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, openssl, type TestCa } from "../helpers/openssl.js";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp.js";

let smtp: TestSmtpServer;
let ca: TestCa;
before(async () => {
  smtp = await startSmtpServer();
  ca = makeCa(makeTempDir("credd-e2e-daemon-ca-"));
});
after(async () => {
  await smtp.stop();
});

const isCsrSent = (l: Record<string, unknown>) => l.msg === "email sent" && l.kind === "csr";
const isCheckDone = (l: Record<string, unknown>) => l.msg === "check done";

test("a certificate inside the window is renewed once: CSR emailed, no second key or email after a restart", async () => {
  const dir = makeTempDir("credd-e2e-daemon-");
  const config = configFor(dir, smtp.port, smtp.caPath, { prodExtra: "renew_before_days: 30" });
  // Made by hand with openssl, 20 days left: renewal is due.
  const hand = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, days: 20 });
  const imp = await runCredd(["--config", config, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath]);
  assert.equal(imp.code, 0, imp.stderr);
  const serial = openssl(["x509", "-in", hand.certPath, "-noout", "-serial"])
    .stdout.trim()
    .replace(/^serial=0*/, "");

  const n = smtp.received.length;
  const d1 = startCreddDaemon(["--config", config, "run"], { CREDD_OUTBOX_TICK_MS: "200" });
  const sent = await d1.waitForLog(isCsrSent);
  assert.equal(sent.credential, "fleet-prod");
  // Ops also get the 30-day expiry alert (20 days left); the contact gets one CSR.
  await d1.waitForLog((l) => l.msg === "email sent" && l.kind === "alert");
  assert.equal(await d1.stop(), 0, "clean stop exits 0");
  await smtp.waitFor(n + 2);
  const mails = smtp.received.slice(n).filter((m) => !m.parsed.subject?.startsWith("[credd]"));
  assert.equal(mails.length, 1, "one CSR email");
  const mail = mails[0]!;
  assert.match(mail.parsed.subject ?? "", /renewal/);
  assert.match(mail.parsed.text as string, new RegExp(`serial 0*${serial}`, "i"));
  const archive = join(dir, "state/credentials/fleet-prod/archive");
  assert.deepEqual(Buffer.from(mail.parsed.attachments[0]!.content), readFileSync(join(archive, "csr-2.pem")));
  // The daemon logs never carry key material.
  assert.ok(!d1.lines.some((l) => JSON.stringify(l).includes("PRIVATE KEY")));

  const d2 = startCreddDaemon(["--config", config, "run"], { CREDD_OUTBOX_TICK_MS: "200" });
  await d2.waitForLog(isCheckDone);
  assert.equal(await d2.stop(), 0);
  assert.equal(smtp.received.length, n + 2, "no second CSR or alert after the restart");
  assert.deepEqual(
    readdirSync(archive)
      .filter((f) => f.startsWith("key-"))
      .sort(),
    ["key-1.pem", "key-2.pem"],
    "the imported key and one renewal key, nothing more",
  );

  const s = await runCredd(["--config", config, "status", "--json"]);
  assert.equal(s.code, 1, "a pending renewal is a warning");
  const j = JSON.parse(s.stdout);
  const prod = j.credentials.find((c: { name: string }) => c.name === "fleet-prod");
  assert.equal(prod.renewal.state, "sent");
  assert.equal(prod.renewal.kind, "renew");
  assert.match(prod.renewal.reason, /19 days left|20 days left/);
  assert.equal(prod.next_step.check, "awaiting-ca");
  assert.ok(prod.last_check_at);
  assert.equal(j.daemon.stale, false);
});

test("status exit codes: 0 all well after a check, 2 under 7 days left, 3 unreadable config", async () => {
  const dir = makeTempDir("credd-e2e-status-");
  const config = configFor(dir, smtp.port, smtp.caPath);
  const far = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, days: 365 });
  const far2 = makeKeyAndCert(dir, dnFor("MZP654321"), { ca, days: 365, keyType: "ec" });
  assert.equal((await runCredd(["--config", config, "import", "fleet-prod", "--cert", far.certPath, "--key", far.keyPath])).code, 0);
  assert.equal((await runCredd(["--config", config, "import", "fleet-test", "--cert", far2.certPath, "--key", far2.keyPath])).code, 0);

  const never = await runCredd(["--config", config, "status", "--json"]);
  assert.equal(never.code, 1, "never checked by the daemon: warning");
  assert.ok(JSON.parse(never.stdout).credentials[0].problems.some((p: string) => /never checked/.test(p)));

  const d = startCreddDaemon(["--config", config, "run"]);
  await d.waitForLog(isCheckDone);
  assert.equal(await d.stop(), 0);
  const ok = await runCredd(["--config", config, "status"]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /credd status OK/);
  assert.match(ok.stdout, /fleet-prod \(MZP128745\)\s+OK/);

  // Seen from 360 days later (an injected clock), the certificate has under 7 days left: critical.
  const later = new Date(Date.now() + 360 * 86_400_000).toISOString();
  const crit = await runCredd(["--config", config, "status", "--json", "fleet-prod"], { CREDD_FAKE_NOW: later });
  assert.equal(crit.code, 2);
  const cj = JSON.parse(crit.stdout);
  assert.equal(cj.status, "critical");
  assert.ok(
    cj.credentials[0].problems.some((p: string) => /expires in [0-6] days/.test(p)),
    cj.credentials[0].problems.join(),
  );

  const bad = await runCredd(["--config", join(dir, "missing.yaml"), "status", "--json"]);
  assert.equal(bad.code, 3);
  assert.equal(JSON.parse(bad.stdout).status, "unknown");
});

test("a second `credd run` on the same state folder refuses to start", async () => {
  const dir = makeTempDir("credd-e2e-lock-");
  const config = configFor(dir, smtp.port, smtp.caPath);
  const d = startCreddDaemon(["--config", config, "run"]);
  await d.waitForLog(isCheckDone);
  const second = await runCredd(["--config", config, "run"]);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /another credd run \(pid \d+\)/);
  assert.equal(await d.stop(), 0);
});

test("a restart after a crash sends one alert; a clean restart sends none", async () => {
  const dir = makeTempDir("credd-e2e-crash-");
  const config = configFor(dir, smtp.port, smtp.caPath);
  const d1 = startCreddDaemon(["--config", config, "run"], { CREDD_OUTBOX_TICK_MS: "100" });
  await d1.waitForLog(isCheckDone);
  d1.child.kill("SIGKILL");
  await d1.exited;
  const n = smtp.received.length;
  const d2 = startCreddDaemon(["--config", config, "run"], { CREDD_OUTBOX_TICK_MS: "100" });
  await d2.waitForLog((l) => l.msg === "email sent" && l.kind === "alert");
  assert.equal(await d2.stop(), 0);
  const [m] = (await smtp.waitFor(n + 1)).slice(n);
  assert.equal(m!.parsed.subject, "[credd] WARNING credd: credd restarted after a crash");
  const d3 = startCreddDaemon(["--config", config, "run"], { CREDD_OUTBOX_TICK_MS: "100" });
  await d3.waitForLog(isCheckDone);
  assert.equal(await d3.stop(), 0);
  assert.equal(smtp.received.length, n + 1, "a clean restart sends nothing");
});
