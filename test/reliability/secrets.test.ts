// Secret hygiene end to end: a deployment that uses every kind of secret credd handles (SMTP password
// over AUTH, PKCS#12 password, an encrypted key's passphrase, a Basic-auth password, OAuth2 tokens,
// every private key), driven through its commands and the daemon, at debug log level, with the
// failures that tempt a program to quote what it was given (wrong passwords, a refused key, a key
// dropped in the inbox). Then every log line, database row, email and message a person reads is
// searched for every one of those secrets. (crash, corpus and faults scan their own runs too.)
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { dnFor } from "../helpers/credd.js";
import { makeKeyAndCert, signCsr } from "../helpers/openssl.js";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp.js";
import { SecretBag, scanAll } from "./lib/hygiene.js";
import { crashSigns, Journal, runCli, spawnCredd } from "./lib/proc.js";
import { archiveDir, certFingerprint, dropInInbox, makeWorld, type World } from "./lib/world.js";

const SMTP_USER = "credd-mailer";
const SMTP_PASSWORD = "Smtp-Pa55word-7f3a9c";
const P12_PASSWORD = "P12-Pa55word-e81b2d";
const PASSPHRASE = "Key-Passphrase-44c0aa";
const BASIC_PASSWORD = "Basic-Pa55word-9d1e07";
const WRONG = { smtp: "Wrong-Smtp-Pa55-000111", passphrase: "Wrong-Passphrase-222333", basic: "Wrong-Basic-Pa55-444555" };

const journal = new Journal();
let world: World | undefined;
let smtp: TestSmtpServer | undefined;
after(async () => {
  await world?.close();
  await smtp?.stop();
});

test("no private key, password or token in any log line, database row, email or message", { timeout: 180_000 }, async (t) => {
  smtp = await startSmtpServer({ auth: { user: SMTP_USER, pass: SMTP_PASSWORD } });
  const dirFiles: Record<string, string> = {};
  world = await makeWorld({
    prefix: "credd-rel-secrets-",
    smtpPort: smtp.port,
    smtpCaPath: smtp.caPath,
    smtpExtra: `user: ${SMTP_USER}\npassword_file: smtp.pass`,
    schedule: "*/1 * * * * *",
    creds: [
      { name: "oa", mzp: "MZP600001", key: "ec", oauth: true, extra: "pkcs12_password_file: p12.pass" },
      {
        name: "basic",
        mzp: "MZP600002",
        key: "rsa",
        extra: 'basic_auth: { user: MZP600002, password_file: basic.pass }\napi: { base_url: "{{API}}", probe_path: /fleets }',
      },
    ],
    basic: { user: "MZP600002", password: BASIC_PASSWORD },
  });
  const w = world;
  const fake = w.fake;
  fake.acceptAllFromCa = true;
  const secret = (name: string, value: string) => {
    dirFiles[name] = join(w.dir, name);
    writeFileSync(dirFiles[name]!, `${value}\n`, { mode: 0o600 });
    return dirFiles[name]!;
  };
  secret("smtp.pass", SMTP_PASSWORD);
  secret("p12.pass", P12_PASSWORD);
  secret("basic.pass", BASIC_PASSWORD);
  secret("passphrase", PASSPHRASE);
  secret("wrong-passphrase", WRONG.passphrase);
  const cfg = ["--config", w.config];
  const debug = { CREDD_LOG_LEVEL: "debug", CREDD_DEBUG: "1" };
  const run = async (args: string[], env: Record<string, string> = {}) => {
    const r = await runCli(journal, [...cfg, ...args], { ...debug, ...env });
    assert.deepEqual(crashSigns(r.stdout + r.stderr), [], `${args.join(" ")}: ${r.stderr}`);
    return r;
  };

  // Import with an encrypted key: first the wrong passphrase (refused), then the right one.
  const hand = makeKeyAndCert(w.dir, dnFor("MZP600001"), { ca: w.ca, days: 365, keyType: "ec", passphrase: PASSPHRASE });
  const bad = await run(["import", "oa", "--cert", hand.certPath, "--key", hand.keyPath, "--passphrase-file", dirFiles["wrong-passphrase"]!]);
  assert.equal(bad.code, 1, bad.stderr);
  const none = await run(["import", "oa", "--cert", hand.certPath, "--key", hand.keyPath]);
  assert.equal(none.code, 1, none.stderr);
  const good = await run(["import", "oa", "--cert", hand.certPath, "--key", hand.keyPath, "--passphrase-file", dirFiles.passphrase!]);
  assert.equal(good.code, 0, good.stderr);
  assert.ok(existsSync(join(w.stateDir, "credentials", "oa", "live", "bundle.p12")), "bundle.p12 written with the PKCS#12 password");
  const handBasic = makeKeyAndCert(w.dir, dnFor("MZP600002"), { ca: w.ca, days: 365 });
  assert.equal((await run(["import", "basic", "--cert", handBasic.certPath, "--key", handBasic.keyPath])).code, 0);

  // A renewal by email (SMTP AUTH), signed, dropped in the inbox with a key dropped by mistake beside it.
  assert.equal((await run(["renew", "oa"])).code, 0);
  await smtp.waitFor(1, 10_000);
  const signed = join(w.dir, "signed.pem");
  signCsr(w.ca, join(archiveDir(w, "oa"), "csr-2.pem"), signed, { days: 365 });
  dropInInbox(w, signed, "MZP600001.pem");
  dropInInbox(w, join(archiveDir(w, "oa"), "key-2.pem"), "oops-key.pem");
  const d = spawnCredd(journal, [...cfg, "run"], {
    ...debug,
    CREDD_OUTBOX_TICK_MS: "100",
    CREDD_INBOX_POLL_MS: "100",
    CREDD_INBOX_MIN_AGE_MS: "0",
    CREDD_TOKEN_TICK_MS: "100",
  });
  await d.waitForLog((l) => l.msg === "certificate live" && l.credential === "oa", 20_000);
  await d.waitForLog((l) => l.msg === "inbox file moved" && l.file === "oops-key.pem", 10_000);
  await d.waitForLog((l) => l.msg === "token obtained" && l.credential === "oa", 10_000);
  d.kill("SIGTERM");
  assert.equal((await d.exited).code, 0, d.entry.stderr);
  assert.equal(certFingerprint(readFileSync(join(w.stateDir, "credentials", "oa", "live", "cert.pem"))), certFingerprint(readFileSync(signed)));

  // Tokens and API calls: credd token (stdout is the token by design, not scanned), doctor with Bearer and Basic.
  const tok = await run(["token", "oa"]);
  assert.equal(tok.code, 0, tok.stderr);
  assert.equal((await run(["doctor", "oa"])).code, 0);
  const basicOk = await run(["doctor", "basic"]);
  assert.equal(basicOk.code, 0, basicOk.stdout);
  assert.ok(
    fake.apiCalls.some((c) => /^Basic /.test(c.auth)),
    "the Basic password was used",
  );
  // Failures that could quote a secret: a wrong Basic password, a wrong SMTP password, the IDP refusing.
  secret("basic.pass", WRONG.basic);
  const basicBad = await run(["doctor", "basic"]);
  assert.equal(basicBad.code, 1, basicBad.stdout);
  secret("basic.pass", BASIC_PASSWORD);
  secret("smtp.pass", WRONG.smtp);
  const mailBad = await run(["alerts", "test"]);
  assert.equal(mailBad.code, 1, mailBad.stderr);
  assert.match(mailBad.stderr, /auth|535|credentials|login/i, "the SMTP refusal is reported");
  secret("smtp.pass", SMTP_PASSWORD);
  assert.equal((await run(["alerts", "test"])).code, 0);
  fake.acceptAllFromCa = false;
  const refused = await run(["token", "oa"], { CREDD_FAKE_NOW: new Date(Date.now() + 2 * 3600_000).toISOString() });
  assert.equal(refused.code, 1);
  fake.acceptAllFromCa = true;
  const status = await run(["status", "--json"]);
  const statusText = await run(["status"]);

  // Everything a person or a program may read: logs and messages, the database, the emails, the .reason files.
  const bag = new SecretBag();
  bag.addKeysUnder("credd key", w.stateDir);
  bag.addKeysUnder("test key", w.dir);
  for (const [label, v] of Object.entries({ SMTP_PASSWORD, P12_PASSWORD, PASSPHRASE, BASIC_PASSWORD, ...WRONG })) bag.add(label, v);
  for (const x of fake.tokensIssued) bag.add("access token", x.token);
  const rejectedDir = join(w.inboxDir, "rejected");
  const reasons = existsSync(rejectedDir)
    ? readdirSync(rejectedDir)
        .filter((f) => f.endsWith(".reason"))
        .map((f) => ({ where: `rejected/${f}`, text: readFileSync(join(rejectedDir, f), "utf8") }))
    : [];
  assert.ok(reasons.length >= 1, "the key dropped in the inbox was rejected with a reason");
  const hits = scanAll(bag, {
    logs: journal.text(),
    databases: [join(w.stateDir, "credd.db")],
    mails: smtp.received,
    extra: [{ where: "status --json", text: status.stdout }, { where: "status", text: statusText.stdout }, ...reasons],
  });
  // The search has teeth: `credd token` prints the token by design (its stdout is not scanned), and is found there.
  assert.ok(bag.scan("credd token stdout", tok.stdout).length > 0, "the scanner finds the token in `credd token` output");
  assert.ok(
    bag.scan("key file", readFileSync(join(archiveDir(w, "oa"), "key-2.pem"), "utf8")).length > 0,
    "the scanner finds key lines in a key file",
  );
  for (const [what, r] of Object.entries({
    "wrong passphrase": bad,
    "no passphrase": none,
    "wrong Basic password": basicBad,
    "wrong SMTP password": mailBad,
    "IDP refusal": refused,
  })) {
    t.diagnostic(
      `${what}: ${`${r.stdout}${r.stderr}`
        .trim()
        .split("\n")
        .filter((l) => /credd:|FAIL|not sent|no valid/.test(l))
        .join(" / ")
        .slice(0, 300)}`,
    );
  }
  t.diagnostic(
    `searched ${bag.size} secrets in ${journal.entries.length} command outputs, ${smtp.received.length} emails, every database row and ${reasons.length} .reason files`,
  );
  assert.deepEqual(hits, []);
  assert.ok(fake.tokensIssued.length >= 2 && smtp.received.length >= 2);
});
