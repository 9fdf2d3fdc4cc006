// The built `credd` binary end to end: config, import, enroll with a real SMTP server, status and exit codes.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { StatusView } from "../../src/core/status.js";
import { openDb } from "../../src/store/db.js";
import { configFor, dnFor, runCredd, writeConfig, writeManyCredentialsConfig } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, openssl, type TestCa } from "../helpers/openssl.js";
import { addressText, startSmtpServer, type TestSmtpServer } from "../helpers/smtp.js";

let smtp: TestSmtpServer;
let ca: TestCa;
let root: string;
before(async () => {
  smtp = await startSmtpServer();
  root = makeTempDir("credd-e2e-");
  ca = makeCa(join(root));
});
after(async () => {
  await smtp.stop();
});

const statusJson = async (config: string, ...args: string[]) => {
  const r = await runCredd(["--config", config, "status", "--json", ...args]);
  return { code: r.code, json: JSON.parse(r.stdout) as StatusView, stderr: r.stderr };
};

describe("command line", () => {
  test("status over 400 credentials through a pipe: the whole report arrives (text and --json), however early credd exits", async () => {
    const dir = makeTempDir("credd-e2e-many-");
    const config = writeManyCredentialsConfig(dir, 400);
    // status only reads: the database is made the way credd run makes it (its migrations).
    openDb(join(dir, "state")).close();
    const text = await runCredd(["--config", config, "status"]);
    assert.equal(text.code, 1, "WARNING: no certificates yet");
    assert.ok(text.stdout.length > 64 * 1024, "more than a pipe holds at once");
    assert.equal(text.stdout.match(/^fleet-\d{6} \(MZP\d{6}\)/gm)?.length, 400);
    assert.match(
      text.stdout,
      /fleet-000400 \(MZP000400\) {2}WARNING\n[\s\S]*never checked by the daemon[^\n]*\n?$/,
      "ends with the last credential's block",
    );
    const json = await statusJson(config);
    assert.equal(json.json.credentials.length, 400);
  });

  test("--help lists every command of the contract and exits 0", async () => {
    const r = await runCredd(["--help"]);
    assert.equal(r.code, 0);
    for (const c of ["run", "status", "import", "enroll", "renew", "ingest", "token", "doctor", "rollback", "--config"]) {
      assert.ok(r.stdout.includes(` ${c}`), c);
    }
  });
  test("no command, an unknown command and a bad option exit 2 with a message (3 for status)", async () => {
    assert.equal((await runCredd([])).code, 2);
    const u = await runCredd(["frobnicate"]);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /unknown command "frobnicate"/);
    const i = await runCredd(["--frob", "run"]);
    assert.equal(i.code, 2);
    assert.match(i.stderr, /unknown option --frob/);
    const s = await runCredd(["--frob", "status"]);
    assert.equal(s.code, 3, "status: a command-line mistake is UNKNOWN for monitoring");
    assert.match(s.stderr, /unknown option --frob/);
  });
  test("a bad config: status exits 3 (unknown), other commands exit 1, both naming file and key", async () => {
    const dir = makeTempDir("credd-e2e-badcfg-");
    const file = writeConfig(
      dir,
      "smtp: { url: smtp://x, from: a@b }\nalerts: { to: [a@b] }\ncredentials:\n  - name: a\n    mzp: MZP000001\n    subject: { C: fr, ST: x, L: y, O: z, emailAddress: a@b.c }\n",
    );
    const s = await runCredd(["--config", file, "status"]);
    assert.equal(s.code, 3);
    assert.match(s.stderr, /credd\.yaml/);
    assert.match(s.stderr, /subject\.C/);
    const e = await runCredd(["--config", file, "enroll", "a"]);
    assert.equal(e.code, 1);
    assert.match(e.stderr, /subject\.C/);
    assert.ok(!existsSync(join(dir, "state")), "nothing was created");
  });
});

describe("import", () => {
  test("adopts a hand-made certificate and key; refuses a wrong key or DN and changes nothing", async () => {
    const dir = makeTempDir("credd-e2e-import-");
    const config = configFor(dir, smtp.port, smtp.caPath);
    const good = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, days: 365, keyFormat: "pkcs1" });
    const other = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, days: 365 });

    const r = await runCredd(["--config", config, "import", "fleet-prod", "--cert", good.certPath, "--key", good.keyPath]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /is live/);
    const live = join(dir, "state/credentials/fleet-prod/live");
    assert.equal(readFileSync(join(live, "cert.pem"), "utf8").trim(), good.certPem.trim());
    assert.equal(statSync(join(live, "key.pem")).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, "state/credentials/fleet-prod/archive/key-1.pem")).mode & 0o777, 0o600);
    // The live pair really is a pair: openssl derives the same public key from both.
    const fromKey = openssl(["pkey", "-in", join(live, "key.pem"), "-pubout"]).stdout;
    const fromCert = openssl(["x509", "-in", join(live, "cert.pem"), "-noout", "-pubkey"]).stdout;
    assert.equal(fromKey, fromCert);
    const before = readFileSync(join(live, "cert.pem"));

    const wrongKey = await runCredd(["--config", config, "import", "fleet-prod", "--cert", good.certPath, "--key", other.keyPath]);
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /does not match the private key/);
    assert.ok(!wrongKey.stderr.includes("PRIVATE KEY-----"), "no key material in the message");

    const foreign = makeKeyAndCert(dir, { ...dnFor("MZP128745"), O: "Other Corp" }, { ca, days: 365 });
    const wrongDn = await runCredd(["--config", config, "import", "fleet-prod", "--cert", foreign.certPath, "--key", foreign.keyPath]);
    assert.equal(wrongDn.code, 1);
    assert.match(wrongDn.stderr, /subject/);
    assert.match(wrongDn.stderr, /Other Corp/);

    const expired = makeKeyAndCert(dir, dnFor("MZP128745"), {
      ca,
      notBefore: new Date(Date.now() - 400 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const old = await runCredd(["--config", config, "import", "fleet-prod", "--cert", expired.certPath, "--key", expired.keyPath]);
    assert.equal(old.code, 1);
    assert.match(old.stderr, /expired/);

    assert.deepEqual(readFileSync(join(live, "cert.pem")), before, "live/ unchanged after each refusal");
    assert.deepEqual(readdirSync(join(dir, "state/credentials/fleet-prod/archive")).sort(), ["cert-1.pem", "chain-1.pem", "key-1.pem"]);

    const s = await statusJson(config, "fleet-prod");
    const serial = openssl(["x509", "-in", good.certPath, "-noout", "-serial"])
      .stdout.trim()
      .replace(/^serial=/, "");
    assert.equal(s.json.credentials[0]!.certificate!.serial.replace(/^0+/, ""), serial.replace(/^0+/, ""));
    assert.equal(s.json.credentials[0]!.certificate!.days_left, 364);
  });

  test("an encrypted PKCS#8 key with --passphrase-file", async () => {
    const dir = makeTempDir("credd-e2e-pass-");
    const config = configFor(dir, smtp.port, smtp.caPath);
    const enc = makeKeyAndCert(dir, dnFor("MZP654321"), { ca, days: 365, keyType: "ec", passphrase: "s3cret-Pass" });
    const noPass = await runCredd(["--config", config, "import", "fleet-test", "--cert", enc.certPath, "--key", enc.keyPath]);
    assert.equal(noPass.code, 1);
    assert.match(noPass.stderr, /passphrase/);
    const passFile = join(dir, "pass.txt");
    writeFileSync(passFile, "s3cret-Pass\n", { mode: 0o600 });
    const ok = await runCredd([
      "--config",
      config,
      "import",
      "fleet-test",
      "--cert",
      enc.certPath,
      "--key",
      enc.keyPath,
      "--passphrase-file",
      passFile,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(!ok.stdout.includes("s3cret") && !ok.stderr.includes("s3cret"));
    // The live key is stored decrypted (0600) so services can load it without a passphrase.
    openssl(["pkey", "-in", join(dir, "state/credentials/fleet-test/live/key.pem"), "-noout"]);
  });
});

describe("enroll", () => {
  test("makes a key and a CSR with the Stellantis DN and emails it to the contact with ops in copy", async () => {
    const dir = makeTempDir("credd-e2e-enroll-");
    const config = configFor(dir, smtp.port, smtp.caPath);
    const n = smtp.received.length;
    const r = await runCredd(["--config", config, "enroll", "fleet-prod"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /sent\./);
    const [mail] = (await smtp.waitFor(n + 1)).slice(n);
    const archive = join(dir, "state/credentials/fleet-prod/archive");
    const csrPem = readFileSync(join(archive, "csr-1.pem"), "utf8");
    assert.equal(statSync(join(archive, "key-1.pem")).mode & 0o777, 0o600);

    assert.ok(mail!.secure, "sent over STARTTLS");
    assert.deepEqual(mail!.envelopeTo.sort(), ["connectedcar@stellantis.example", "ops@partner.example"]);
    assert.equal(addressText(mail!.parsed.to), "connectedcar@stellantis.example");
    assert.equal(addressText(mail!.parsed.cc), "ops@partner.example");
    assert.match(mail!.parsed.subject ?? "", /MZP128745/);
    const body = mail!.parsed.text as string;
    assert.match(body, /MZP128745/);
    assert.match(body, /1a2b3c/);
    assert.match(body, /C=FR, ST=Ile de France, L=Paris, O=Free2Move, OU=Programs Partners, CN=MZP128745, emailAddress=it@partner\.example/);
    assert.ok(!body.includes("PRIVATE KEY"));
    assert.equal(mail!.parsed.attachments.length, 1);
    const att = mail!.parsed.attachments[0]!;
    assert.equal(att.filename, "MZP128745.csr");
    assert.deepEqual(Buffer.from(att.content), Buffer.from(csrPem), "attachment byte-equal to the CSR on disk");
    assert.ok(!mail!.raw.toString().includes("PRIVATE KEY"));
    const v = openssl(["req", "-in", join(archive, "csr-1.pem"), "-verify", "-noout"]);
    assert.match(v.stdout + v.stderr, /verify OK/i);

    const again = await runCredd(["--config", config, "enroll", "fleet-prod"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already sent/);
    assert.equal(readdirSync(archive).filter((f) => f.startsWith("key-")).length, 1, "no second key");

    const s = await statusJson(config, "fleet-prod");
    assert.equal(s.code, 1);
    assert.equal(s.json.credentials[0]!.renewal!.state, "sent");
    assert.equal(s.json.credentials[0]!.renewal!.kind, "enroll");
    assert.ok(s.json.credentials[0]!.renewal!.csr_sent_at);
  });
});

describe("alerts", () => {
  test("`credd alerts test` sends one test email to ops; `credd alerts` lists open alerts", async () => {
    const dir = makeTempDir("credd-e2e-alerts-");
    const config = configFor(dir, smtp.port, smtp.caPath);
    const n = smtp.received.length;
    const r = await runCredd(["--config", config, "alerts", "test"]);
    assert.equal(r.code, 0, r.stderr);
    const [m] = (await smtp.waitFor(n + 1)).slice(n);
    assert.equal(m!.parsed.subject, "[credd] TEST: the alert path works");
    assert.deepEqual(m!.envelopeTo, ["ops@partner.example"]);
    const list = await runCredd(["--config", config, "alerts"]);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /no open alerts/);
    const s = JSON.parse((await runCredd(["--config", config, "status", "--json"])).stdout);
    assert.deepEqual(s.alerts, []);
  });
});
