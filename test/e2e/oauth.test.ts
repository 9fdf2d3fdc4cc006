// OAuth2 with the real binary: `credd token`, staged go-live awaiting IDP registration, and `credd doctor`,
// against a loopback IDP + API that require client certificates, with a real SMTP server.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { dnFor, runCredd, startCreddDaemon, writeConfig } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, signCsr, type TestCa } from "../helpers/openssl.js";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp.js";
import { startFakeStellantis, type FakeStellantis } from "../helpers/stellantis.js";

let smtp: TestSmtpServer;
let ca: TestCa;
let fake: FakeStellantis;
before(async () => {
  smtp = await startSmtpServer();
  ca = makeCa(makeTempDir("credd-oauth-ca-"));
  fake = await startFakeStellantis({ clientCaPem: ca.certPem, basic: { user: "MZP654321", password: "basic-S3cret" } });
});
after(async () => {
  await smtp.stop();
  await fake.close();
});

const fingerprint = (pemPath: string) => new X509Certificate(readFileSync(pemPath)).fingerprint256;

function setup(opts: { caFile?: string } = {}) {
  const dir = makeTempDir("credd-oauth-");
  const caFile = join(dir, "stellantis-ca.pem");
  writeFileSync(caFile, ca.certPem + fake.serverCaPem);
  const basicPass = join(dir, "mzp.pass");
  writeFileSync(basicPass, "basic-S3cret\n", { mode: 0o600 });
  const config = writeConfig(
    dir,
    `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
smtp: { url: "smtp://127.0.0.1:${smtp.port}", from: "credd <credd@partner.example>", ca_file: ${smtp.caPath} }
alerts: { to: [ops@partner.example] }
stellantis: { contact: connectedcar@stellantis.example, ca_file: ${opts.caFile ?? caFile} }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    client_id: app-1a2b3c
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    oauth: { token_url: "${fake.tokenUrl}", client_id: partner-client, scope: openid }
    api: { base_url: "${fake.apiBaseUrl}", probe_path: /fleets }
  - name: fleet-basic
    mzp: MZP654321
    client_id: app-basic
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    basic_auth: { user: MZP654321, password_file: ${basicPass} }
    api: { base_url: "${fake.apiBaseUrl}", probe_path: /fleets }
`,
  );
  return { dir, config, live: join(dir, "state/credentials/fleet-prod/live"), run: join(dir, "run") };
}

async function importLive(s: ReturnType<typeof setup>, name: string, mzp: string, register = true) {
  const hand = makeKeyAndCert(s.dir, dnFor(mzp), { ca, days: 365 });
  if (register) fake.register(fingerprint(hand.certPath));
  const r = await runCredd(["--config", s.config, "import", name, "--cert", hand.certPath, "--key", hand.keyPath]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return hand;
}

describe("credd token", () => {
  test("prints the token for scripts; concurrent calls cause one fetch; exit 1 with a reason when none is valid", async () => {
    const s = setup();
    const hand = await importLive(s, "fleet-prod", "MZP128745");
    // The import's go-live fetched the first token: remove it so the concurrent calls must fetch.
    const { rmSync } = await import("node:fs");
    rmSync(join(s.run, "fleet-prod/token.json"));
    const n = fake.tokensIssued.length;
    const outs = await Promise.all([1, 2, 3, 4, 5].map(() => runCredd(["--config", s.config, "token", "fleet-prod"])));
    for (const o of outs) assert.equal(o.code, 0, o.stderr);
    assert.equal(fake.tokensIssued.length, n + 1, "five callers, one request to the IDP");
    const token = outs[0]!.stdout.trim();
    assert.ok(outs.every((o) => o.stdout.trim() === token));
    assert.equal(fake.tokensIssued.at(-1)!.token, token);
    assert.equal(fake.tokensIssued.at(-1)!.certSha256, fingerprint(hand.certPath));
    assert.equal(statSync(join(s.run, "fleet-prod/token")).mode & 0o777, 0o640);
    const j = JSON.parse((await runCredd(["--config", s.config, "token", "fleet-prod", "--json"])).stdout);
    assert.equal(j.token, token);
    assert.equal(j.type, "Bearer");
    assert.equal(j.scope, "openid");
    // Never in the database.
    const db = new Database(join(s.dir, "state/credd.db"), { readonly: true });
    for (const t of ["tokens", "outbox", "checks", "renewals", "certificates"]) {
      assert.ok(!JSON.stringify(db.prepare(`SELECT * FROM ${t}`).all()).includes(token), t);
    }
    db.close();

    rmSync(join(s.run, "fleet-prod/token.json"));
    fake.unregister(fingerprint(hand.certPath));
    const none = await runCredd(["--config", s.config, "token", "fleet-prod"]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no valid token for fleet-prod: .*invalid_client/);
    const basic = await runCredd(["--config", s.config, "token", "fleet-basic"]);
    assert.equal(basic.code, 1);
    assert.match(basic.stderr, /Basic auth/);
  });
});

describe("staged go-live", () => {
  test("a new certificate the IDP refuses is emailed for registration, the old stays live; once registered it goes live with a fresh token", async () => {
    const s = setup();
    const old = await importLive(s, "fleet-prod", "MZP128745");
    await runCredd(["--config", s.config, "renew", "fleet-prod", "--no-send"]);
    const csr = join(s.dir, "state/credentials/fleet-prod/archive/csr-2.pem");
    const signed = join(s.dir, "new.pem");
    signCsr(ca, csr, signed, { days: 365 });
    const n = smtp.received.length;

    const r = await runCredd(["--config", s.config, "ingest", signed]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /NOT live yet: awaiting IDP registration/);
    assert.equal(fingerprint(join(s.live, "cert.pem")), fingerprint(old.certPath), "the old certificate stays live");
    const mails = (await smtp.waitFor(n + 1)).slice(n); // the registration email (the CSR was queued with --no-send)
    const reg = mails.find((m) => /bind it to OAuth2 client/.test(m.parsed.subject ?? ""))!;
    assert.ok(reg, mails.map((m) => m.parsed.subject).join(" | "));
    assert.deepEqual(reg.envelopeTo.sort(), ["connectedcar@stellantis.example", "ops@partner.example"]);
    assert.match(reg.parsed.text as string, /MZP128745/);
    assert.match(reg.parsed.text as string, /app-1a2b3c/);
    assert.match(reg.parsed.text as string, /partner-client/);
    assert.equal(reg.parsed.attachments[0]!.filename, "MZP128745.pem");
    assert.equal(new X509Certificate(Buffer.from(reg.parsed.attachments[0]!.content)).fingerprint256, fingerprint(signed));
    assert.ok(!reg.raw.toString().includes("PRIVATE KEY"), "no key material");

    const st = JSON.parse((await runCredd(["--config", s.config, "status", "--json", "fleet-prod"])).stdout);
    assert.equal(st.credentials[0].renewal.awaiting_registration, true);
    assert.ok(st.credentials[0].problems.some((p: string) => /awaiting IDP registration/.test(p)));
    assert.equal(st.credentials[0].next_step.check, "awaiting-registration");
    // The next step and `renew` agree with that state: it waits for Stellantis; a new key is not the fix.
    const text = await runCredd(["--config", s.config, "status", "fleet-prod"]);
    assert.match(text.stdout, /^ {2}next step {5}.*waiting for Stellantis to bind it to the OAuth2 client/m);
    assert.match(text.stdout, /^ {2}next probe {4}\d{4}-\d\d-\d\d \d\d:\d\d UTC/m);
    assert.doesNotMatch(text.stdout, /--force/);
    const renew = await runCredd(["--config", s.config, "renew", "fleet-prod"]);
    assert.equal(renew.code, 1);
    assert.match(renew.stderr, /awaiting IDP registration since .*waits for Stellantis to bind it to the OAuth2 client/);
    assert.doesNotMatch(renew.stderr, /--force/);

    // Stellantis binds the certificate; the daemon's next probe (a minute later) finds it accepted.
    fake.register(fingerprint(signed));
    const later = new Date(Date.now() + 2 * 60_000).toISOString();
    const d = startCreddDaemon(["--config", s.config, "run"], { CREDD_FAKE_NOW: later });
    await d.waitForLog((l) => l.msg === "certificate live");
    await d.waitForLog((l) => l.msg === "check done");
    assert.equal(await d.stop(), 0);
    assert.equal(fingerprint(join(s.live, "cert.pem")), fingerprint(signed));
    const token = readFileSync(join(s.run, "fleet-prod/token"), "utf8");
    const issued = fake.tokensIssued.find((t) => t.token === token)!;
    assert.equal(issued.certSha256, fingerprint(signed), "the token now served was fetched with the new certificate");
    const after = JSON.parse((await runCredd(["--config", s.config, "status", "--json", "fleet-prod"])).stdout);
    assert.equal(after.credentials[0].renewal, null);
    assert.equal(after.credentials[0].token.cert_version, 2);
  });
});

describe("credd doctor", () => {
  test("passes every step for OAuth2 and for Basic auth; names the failing step otherwise", async () => {
    const s = setup();
    const hand = await importLive(s, "fleet-prod", "MZP128745");
    await importLive(s, "fleet-basic", "MZP654321", false);

    const ok = await runCredd(["--config", s.config, "doctor", "fleet-prod"]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    for (const step of [
      "key matches",
      "chains to the Stellantis CA",
      "TLS handshake with the token endpoint",
      "TLS handshake with the API host",
      "token obtained",
      "API request",
    ]) {
      assert.match(ok.stdout, new RegExp(`PASS  [^\n]*${step}`), step);
    }
    assert.match(ok.stdout, /HTTP 200 application\/hal\+json/);
    const call = fake.apiCalls.at(-1)!;
    assert.equal(call.query.client_id, "app-1a2b3c");
    assert.match(call.auth, /^Bearer /);

    const basic = await runCredd(["--config", s.config, "doctor", "fleet-basic"]);
    assert.equal(basic.code, 0, basic.stdout + basic.stderr);
    assert.match(fake.apiCalls.at(-1)!.auth, /^Basic /);
    assert.ok(!basic.stdout.includes("basic-S3cret"));

    fake.failNextApi(1, "401-invalid_token");
    const retried = await runCredd(["--config", s.config, "doctor", "fleet-prod"]);
    assert.equal(retried.code, 0, retried.stdout);
    assert.match(retried.stdout, /after 401 invalid_token: new token, one retry/);

    fake.failNextApi(2, "401-invalid_token");
    const twice = await runCredd(["--config", s.config, "doctor", "fleet-prod"]);
    assert.equal(twice.code, 1);
    assert.match(twice.stdout, /FAIL {2}API request.*401/);

    fake.failNextApi(1, "495");
    const cert495 = await runCredd(["--config", s.config, "doctor", "fleet-prod"]);
    assert.equal(cert495.code, 1);
    assert.match(cert495.stdout, /FAIL {2}API request.*495.*invalid or expired client certificate/i);

    fake.unregister(fingerprint(hand.certPath));
    const refused = await runCredd(["--config", s.config, "doctor", "fleet-prod"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /FAIL {2}token obtained.*invalid_client/);
    assert.match(refused.stdout, /skip {2}API request/);
    fake.register(fingerprint(hand.certPath));

    const expired = await runCredd(["--config", s.config, "doctor", "fleet-prod"], {
      CREDD_FAKE_NOW: new Date(Date.now() + 400 * 86_400_000).toISOString(),
    });
    assert.equal(expired.code, 1);
    assert.match(expired.stdout, /FAIL {2}certificate valid and chains to the Stellantis CA.*expired/);

    // A CA file without the server's CA: the server certificate is not trusted (verification stays on).
    const onlyClientCa = join(s.dir, "only-client-ca.pem");
    writeFileSync(onlyClientCa, ca.certPem);
    const text = readFileSync(s.config, "utf8").replace(/ca_file: \/[^ ]*stellantis-ca\.pem/, `ca_file: ${onlyClientCa}`);
    writeFileSync(s.config, text);
    const wrongCa = await runCredd(["--config", s.config, "doctor", "fleet-prod"]);
    assert.equal(wrongCa.code, 1);
    assert.match(wrongCa.stdout, /FAIL {2}TLS handshake with the token endpoint.*not trusted/);
  });
});
