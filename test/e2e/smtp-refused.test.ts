// The built binary against the real smtp-server on loopback: `enroll` and `renew` fail with the
// reason when the server refuses for good (login, 5xx, the CA file gone), the email stays in the
// outbox and status shows it; SMTP merely down is still "queued"; the daemon raises the alert.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { credentialYaml, dnFor, runCredd, startCreddDaemon } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, type TestCa } from "../helpers/openssl.js";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp.js";

let authSmtp: TestSmtpServer;
let refusing: TestSmtpServer;
let ca: TestCa;
before(async () => {
  authSmtp = await startSmtpServer({ auth: { user: "credd", pass: "right-password" } });
  refusing = await startSmtpServer({ refuseMessages: true });
  ca = makeCa(makeTempDir("credd-e2e-refused-ca-"));
});
after(async () => {
  await authSmtp.stop();
  await refusing.stop();
});

/** A config for `port`; `smtpExtra` lines go under smtp:, `credExtra` under the credential. */
function config(dir: string, port: number, smtpExtra: string[], credExtra: string[] = [], top: string[] = []): string {
  const file = join(dir, "credd.yaml");
  writeFileSync(
    file,
    [
      `state_dir: ${join(dir, "state")}`,
      `runtime_dir: ${join(dir, "run")}`,
      ...top,
      "smtp:",
      `  url: smtp://127.0.0.1:${port}`,
      '  from: "credd <credd@partner.example>"',
      "  timeout_ms: 3000",
      ...smtpExtra.map((l) => `  ${l}`),
      "alerts: { to: [ops@partner.example] }",
      "stellantis: { contact: connectedcar@stellantis.example }",
      "credentials:",
      credentialYaml("fleet-prod", "MZP128745", ...credExtra),
      "",
    ].join("\n"),
  );
  return file;
}

async function status(
  file: string,
): Promise<{ outbox: { queued: number; last_error: string | null }; alerts: { kind: string }[]; credentials: { problems: string[] }[] }> {
  return JSON.parse((await runCredd(["--config", file, "status", "--json"])).stdout);
}

test("enroll with the login refused: exit 1 with the reason and the fix; the email stays in the outbox; status shows it", async () => {
  const dir = makeTempDir("credd-e2e-refused-auth-");
  writeFileSync(join(dir, "smtp.pass"), "wrong-password\n", { mode: 0o600 });
  const file = config(dir, authSmtp.port, ["user: credd", `password_file: ${join(dir, "smtp.pass")}`, `ca_file: ${authSmtp.caPath}`]);
  const r = await runCredd(["--config", file, "enroll", "fleet-prod"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /renewal #1 started for fleet-prod/);
  assert.match(r.stderr, new RegExp(`not sent: SMTP 127\\.0\\.0\\.1:${authSmtp.port}: authentication failed for user credd \\(server said: 535`));
  assert.match(
    r.stderr,
    /this will not fix itself: check smtp\.user and the password in smtp\.password_file \(the server refused the login\), then reload credd/,
  );
  assert.match(r.stderr, /The email stays in the outbox and goes out once that is fixed/);
  assert.doesNotMatch(r.stderr, /will retry|stays queued; `credd run` retries/);
  assert.ok(!`${r.stdout}${r.stderr}`.includes("wrong-password"));
  const s = await status(file);
  assert.equal(s.outbox.queued, 1);
  assert.match(s.outbox.last_error ?? "", /authentication failed for user credd/);
  assert.ok(
    s.credentials[0]!.problems.some((p) => /^an email was refused for good by SMTP/.test(p)),
    s.credentials[0]!.problems.join("\n"),
  );
  assert.equal(authSmtp.received.length, 0);
});

test("renew with a 5xx reply: exit 1, the reason; the renewal and its email are kept", async () => {
  const dir = makeTempDir("credd-e2e-refused-5xx-");
  const file = config(dir, refusing.port, [`ca_file: ${refusing.caPath}`]);
  const hand = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, days: 365 });
  const imp = await runCredd(["--config", file, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath]);
  assert.equal(imp.code, 0, imp.stderr);
  const r = await runCredd(["--config", file, "renew", "fleet-prod"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /renewal #\d+ started for fleet-prod/);
  assert.match(r.stderr, /not sent: SMTP 127\.0\.0\.1:\d+: the server rejected the message \(server said: 554 Message refused/);
  assert.match(r.stderr, /this will not fix itself: the server refused it for good/);
  assert.equal((await status(file)).outbox.queued, 1);
});

test("enroll with smtp.ca_file gone: exit 1, the file named in plain words, no raw ENOENT", async () => {
  const dir = makeTempDir("credd-e2e-refused-ca-");
  const gone = join(dir, "mail-ca.pem");
  const file = config(dir, refusing.port, [`ca_file: ${gone}`]);
  const r = await runCredd(["--config", file, "enroll", "fleet-prod"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.ok(
    r.stderr.includes(
      `not sent: ${file}: smtp.ca_file: ${gone} does not exist; it should hold the CA certificate of the SMTP server (PEM): it signed the server's TLS certificate`,
    ),
    r.stderr,
  );
  assert.doesNotMatch(r.stderr, /ENOENT/);
  assert.equal((await status(file)).outbox.queued, 1);
});

test("enroll with SMTP down: still exit 0, queued for credd run (a temporary failure)", async () => {
  const srv = net.createServer();
  await new Promise<void>((res) => srv.listen(0, "127.0.0.1", res));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((res) => srv.close(() => res()));
  const dir = makeTempDir("credd-e2e-refused-down-");
  const file = config(dir, port, [`ca_file: ${authSmtp.caPath}`]);
  const r = await runCredd(["--config", file, "enroll", "fleet-prod"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stderr, /not sent yet: .*connection refused/);
  assert.match(r.stderr, /it stays queued; `credd run` retries it/);
});

test("the daemon: a refused login is logged as permanent and raised as an ops alert at once; status lists it", { timeout: 60_000 }, async (t) => {
  const dir = makeTempDir("credd-e2e-refused-daemon-");
  writeFileSync(join(dir, "smtp.pass"), "wrong-password\n", { mode: 0o600 });
  const file = config(
    dir,
    authSmtp.port,
    ["user: credd", `password_file: ${join(dir, "smtp.pass")}`, `ca_file: ${authSmtp.caPath}`],
    ["auto_enroll: true"],
  );
  const d = startCreddDaemon(["--config", file, "run"], { CREDD_OUTBOX_TICK_MS: "200" });
  t.after(() => {
    if (d.child.exitCode === null) d.child.kill("SIGKILL");
  });
  const refused = await d.waitForLog(
    (l) => l.msg === "email refused for good by SMTP: a person must fix it; it stays queued and is retried with backoff" && l.kind === "csr",
  );
  assert.equal(refused.permanent, true);
  assert.equal(refused.level, 50);
  assert.match(String(refused.err), /authentication failed for user credd/);
  assert.match(String(refused.fix), /smtp\.password_file/);
  const queued = await d.waitForLog((l) => l.msg === "alert digest queued", 10_000, d.lines.indexOf(refused));
  assert.ok((queued.alerts as string[]).includes("credd: smtp-refused 1"), JSON.stringify(queued));
  const s = await status(file);
  assert.ok(
    s.alerts.some((a) => a.kind === "smtp-refused"),
    JSON.stringify(s.alerts),
  );
  assert.equal(d.child.exitCode, null, "still running");
  assert.equal(await d.stop(), 0);
  assert.ok(!d.lines.some((l) => JSON.stringify(l).includes("wrong-password")));
});
