// `credd ingest`, the inbox, install, hooks, PKCS#12 and rollback with the real binary, a real openssl CA,
// a real SMTP server, keytool and an HTTPS server that requires client certificates.
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, existsSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { execFileSync, spawn } from "node:child_process";
import { configFor, runCredd, startCreddDaemon } from "../helpers/credd.js";
import { makeCa, makeIntermediateCa, makeKeyAndCert, makeTempDir, openssl, signCsr, signWithCa, type TestCa } from "../helpers/openssl.js";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp.js";
import { makeServerTls } from "../helpers/tls.js";

let smtp: TestSmtpServer;
let ca: TestCa;
let caDir: string;
before(async () => {
  smtp = await startSmtpServer();
  caDir = makeTempDir("credd-e2e-ingest-ca-");
  ca = makeCa(caDir);
});
after(async () => {
  await smtp.stop();
});

interface Setup {
  dir: string;
  config: string;
  archive: string;
  live: string;
  hookOut: string;
}

function setup(opts: { hooks?: string; caFile?: string; p12?: boolean } = {}): Setup {
  const dir = makeTempDir("credd-e2e-ingest-");
  const hookOut = join(dir, "hook.env");
  const p12 = join(dir, "p12.pass");
  writeFileSync(p12, "changeit-p12\n", { mode: 0o600 });
  const hooks = opts.hooks ?? `[["/bin/sh", "-c", "env | grep ^CREDD_ > ${hookOut}"]]`;
  const config = configFor(dir, smtp.port, smtp.caPath, {
    prodExtra: `deploy_hooks: ${hooks}\n${opts.p12 ? `pkcs12_password_file: ${p12}\n` : ""}`,
    top: `inbox_dir: ${join(dir, "inbox")}\n`,
  });
  // stellantis.ca_file: the pinned CA (the config helper has no key for it; append it).
  const text = readFileSync(config, "utf8").replace(
    "stellantis:\n  contact: connectedcar@stellantis.example",
    `stellantis:\n  contact: connectedcar@stellantis.example\n  ca_file: ${opts.caFile ?? ca.certPath}`,
  );
  writeFileSync(config, text);
  return {
    dir,
    config,
    archive: join(dir, "state/credentials/fleet-prod/archive"),
    live: join(dir, "state/credentials/fleet-prod/live"),
    hookOut,
  };
}

async function ok(config: string, ...args: string[]) {
  const r = await runCredd(["--config", config, ...args]);
  assert.equal(r.code, 0, `credd ${args.join(" ")}: ${r.stdout}${r.stderr}`);
  return r;
}

/** Starts a renewal and returns the path of its CSR. */
async function pendingCsr(s: Setup, kind: "enroll" | "renew"): Promise<string> {
  await ok(s.config, kind, "fleet-prod", "--no-send");
  const csrs = readdirSync(s.archive)
    .filter((f) => /^csr-\d+\.pem$/.test(f))
    .sort((a, b) => Number(a.slice(4, -4)) - Number(b.slice(4, -4)));
  return join(s.archive, csrs[csrs.length - 1]!);
}

function livePairMatches(live: string): boolean {
  const k = openssl(["pkey", "-in", join(live, "key.pem"), "-pubout"]).stdout;
  const c = openssl(["x509", "-in", join(live, "cert.pem"), "-noout", "-pubkey"]).stdout;
  return k === c;
}

const fp = (pemPath: string) => openssl(["x509", "-in", pemPath, "-noout", "-fingerprint", "-sha256"]).stdout.trim();

describe("ingest accepts every form the CA may send", () => {
  const forms: { name: string; make: (leaf: string, dir: string) => string[] }[] = [
    { name: "PEM leaf", make: (leaf) => [leaf] },
    {
      name: "PEM leaf + CA with CRLF",
      make: (leaf, dir) => {
        const f = join(dir, "crlf.pem");
        writeFileSync(f, (readFileSync(leaf, "utf8") + ca.certPem).replace(/\n/g, "\r\n"));
        return [f];
      },
    },
    {
      name: "PEM, CA first then leaf (reverse order)",
      make: (leaf, dir) => {
        const f = join(dir, "rev.pem");
        writeFileSync(f, ca.certPem + readFileSync(leaf, "utf8"));
        return [f];
      },
    },
    {
      name: "DER .cer",
      make: (leaf, dir) => {
        const f = join(dir, "leaf.cer");
        openssl(["x509", "-in", leaf, "-outform", "DER", "-out", f]);
        return [f];
      },
    },
    {
      name: "PKCS#7 PEM .p7b",
      make: (leaf, dir) => {
        const f = join(dir, "bundle.p7b");
        openssl(["crl2pkcs7", "-nocrl", "-certfile", leaf, "-certfile", ca.certPath, "-out", f]);
        return [f];
      },
    },
    {
      name: "PKCS#7 DER .p7c",
      make: (leaf, dir) => {
        const f = join(dir, "bundle.p7c");
        openssl(["crl2pkcs7", "-nocrl", "-certfile", ca.certPath, "-certfile", leaf, "-outform", "DER", "-out", f]);
        return [f];
      },
    },
    {
      name: "PEM with Bag Attributes (openssl pkcs12 output), CA as a second file",
      make: (leaf, dir) => {
        const p12 = join(dir, "x.p12");
        // A certificate-only PKCS#12, read back the way a person would: the PEM carries "Bag Attributes".
        openssl(["pkcs12", "-export", "-nokeys", "-in", leaf, "-passout", "pass:x", "-out", p12]);
        const f = join(dir, "bag.pem");
        openssl(["pkcs12", "-in", p12, "-nokeys", "-passin", "pass:x", "-out", f]);
        assert.match(readFileSync(f, "utf8"), /Bag Attributes/);
        return [f, ca.certPath];
      },
    },
  ];

  test("each form installs: live/ switched to the signed certificate, pair matching, hooks run", async () => {
    const s = setup({ p12: true });
    let kind: "enroll" | "renew" = "enroll";
    for (const form of forms) {
      const csr = await pendingCsr(s, kind);
      kind = "renew";
      const leaf = join(s.dir, `signed-${form.name.replace(/\W+/g, "-")}.pem`);
      signCsr(ca, csr, leaf, { days: 365 });
      const files = form.make(leaf, s.dir);
      const r = await runCredd(["--config", s.config, "ingest", ...files]);
      assert.equal(r.code, 0, `${form.name}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /installed for fleet-prod/, form.name);
      assert.equal(fp(join(s.live, "cert.pem")), fp(leaf), form.name);
      assert.ok(livePairMatches(s.live), form.name);
    }
    // live/ layout and modes
    for (const f of ["key.pem", "cert.pem", "chain.pem", "fullchain.pem", "bundle.p12"]) assert.ok(existsSync(join(s.live, f)), f);
    assert.equal(statSync(join(s.live, "key.pem")).mode & 0o777, 0o600);
    assert.equal(statSync(join(s.live, "bundle.p12")).mode & 0o777, 0o600);
    assert.equal(fp(join(s.live, "chain.pem")), fp(ca.certPath), "chain.pem is the CA");
    assert.match(readFileSync(join(s.live, "fullchain.pem"), "utf8"), /END CERTIFICATE-----\n-----BEGIN CERTIFICATE/);
    // The hook saw the credential, the live folder and the new serial.
    const env = readFileSync(s.hookOut, "utf8");
    const serial = openssl(["x509", "-in", join(s.live, "cert.pem"), "-noout", "-serial"])
      .stdout.trim()
      .replace(/^serial=0*/, "");
    assert.match(env, /CREDD_CREDENTIAL=fleet-prod/);
    assert.match(env, new RegExp(`CREDD_SERIAL=0*${serial}`, "i"));
    assert.match(env, new RegExp(`CREDD_LIVE_DIR=${s.live.replace(/[/.]/g, "\\$&")}`));
    // Every version stays in archive/.
    assert.equal(readdirSync(s.archive).filter((f) => /^cert-\d+\.pem$/.test(f)).length, forms.length);
    // bundle.p12 opens in openssl and keytool as-is.
    const p12 = join(s.live, "bundle.p12");
    const certs = openssl(["pkcs12", "-in", p12, "-passin", "pass:changeit-p12", "-nokeys"]).stdout;
    assert.equal((certs.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
    const kt = execFileSync("keytool", ["-list", "-v", "-storetype", "PKCS12", "-keystore", p12, "-storepass", "changeit-p12"], { encoding: "utf8" });
    assert.match(kt, /PrivateKeyEntry/);
    assert.match(kt, /Certificate chain length: 2/);
    // status shows the hook outcome and the new certificate
    const st = JSON.parse((await runCredd(["--config", s.config, "status", "--json", "fleet-prod"])).stdout);
    assert.equal(st.credentials[0].last_hook.ok, true);
    assert.equal(st.credentials[0].renewal, null, "no renewal pending after go-live");
    assert.equal(st.credentials[0].certificate.source, "renewal");
  });

  test("curl completes an mTLS handshake with live/cert.pem + live/key.pem against a server requiring client certificates", async () => {
    const s = setup();
    const csr = await pendingCsr(s, "enroll");
    const leaf = join(s.dir, "leaf.pem");
    signCsr(ca, csr, leaf, { days: 365 });
    await ok(s.config, "ingest", leaf);
    const serverTls = makeServerTls();
    const server = createServer(
      { key: serverTls.keyPem, cert: serverTls.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const peer = (req.socket as import("node:tls").TLSSocket).getPeerCertificate();
        res.end(`hello ${peer.subject.CN}`);
      },
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      const curl = (args: string[]) =>
        new Promise<{ code: number | null; out: string }>((resolve) => {
          const c = spawn("curl", ["-sS", "--max-time", "10", "--cacert", serverTls.caPath, ...args, `https://127.0.0.1:${port}/`]);
          let out = "";
          c.stdout.on("data", (d) => (out += d));
          c.stderr.on("data", (d) => (out += d));
          c.on("close", (code) => resolve({ code, out }));
        });
      const good = await curl(["--cert", join(s.live, "cert.pem"), "--key", join(s.live, "key.pem")]);
      assert.equal(good.code, 0, good.out);
      assert.equal(good.out, "hello MZP128745");
      const none = await curl([]);
      assert.notEqual(none.code, 0, "the server really requires a client certificate");
    } finally {
      server.close();
    }
  });
});

/** A live certificate, then a pending renewal whose CSR is returned: the setting for every refusal test. */
async function liveThenPending(s: Setup): Promise<{ csr: string; key: string; liveBefore: Record<string, Buffer> }> {
  const first = await pendingCsr(s, "enroll");
  const leaf = join(s.dir, "first.pem");
  signCsr(ca, first, leaf, { days: 365 });
  await ok(s.config, "ingest", leaf);
  const csr = await pendingCsr(s, "renew");
  const key = csr.replace("csr-", "key-");
  const liveBefore: Record<string, Buffer> = {};
  for (const f of readdirSync(s.live)) liveBefore[f] = readFileSync(join(s.live, f));
  return { csr, key, liveBefore };
}

function assertLiveUnchanged(s: Setup, before: Record<string, Buffer>) {
  const now: Record<string, Buffer> = {};
  for (const f of readdirSync(s.live)) now[f] = readFileSync(join(s.live, f));
  assert.deepEqual(now, before, "live/ is byte-identical");
}

/** Signs `csr` with openssl x509 -req and the usual client extensions, and the digest or serial given. */
function signRaw(s: Setup, csr: string, name: string, opts: { digest?: string; serial?: string }, issuer: TestCa = ca): string {
  const out = join(s.dir, name);
  signWithCa(issuer, csr, out, {
    extensions: ["basicConstraints = CA:FALSE", "keyUsage = critical,digitalSignature", "extendedKeyUsage = clientAuth"],
    serial: opts.serial ?? "0x5EED",
    ...(opts.digest ? { digest: opts.digest } : {}),
  });
  return out;
}

describe("ingest refuses, naming the check, and changes nothing", () => {
  const dn = "/C=FR/ST=Ile de France/L=Paris/O=Free2Move/OU=Programs Partners/CN=MZP128745/emailAddress=it@partner.example";
  const cases: { name: string; check: RegExp; make: (s: Setup, p: { csr: string; key: string }) => string[] }[] = [
    {
      name: "wrong key (a certificate for another key with the right DN)",
      check: /\[key-match\]/,
      make: (s) => [
        makeKeyAndCert(
          s.dir,
          { C: "FR", ST: "Ile de France", L: "Paris", O: "Free2Move", OU: "Programs Partners", CN: "MZP128745", emailAddress: "it@partner.example" },
          { ca, days: 365 },
        ).certPath,
      ],
    },
    ...(["C=DE", "ST=Bavaria", "L=Lyon", "O=Other", "OU=Programs Partner", "CN=MZP000001", "emailAddress=x@partner.example"] as const).map(
      (swap) => ({
        name: `wrong DN: ${swap}`,
        check: /\[subject\]/,
        make: (s: Setup, p: { key: string }) => {
          const [k] = swap.split("=");
          const subj = dn.replace(new RegExp(`/${k}=[^/]*`), `/${swap}`);
          const csr = join(s.dir, `wrongdn-${k}.csr`);
          openssl(["req", "-new", "-key", p.key, "-subj", subj, "-out", csr]);
          const out = join(s.dir, `wrongdn-${k}.pem`);
          signCsr(ca, csr, out, { days: 365 });
          return [out];
        },
      }),
    ),
    {
      name: "foreign CA with the same name as the pinned one",
      check: /\[chain\]/,
      make: (s, p) => {
        const foreign = makeCa(makeTempDir("credd-foreign-"));
        const out = join(s.dir, "foreign.pem");
        signCsr(foreign, p.csr, out, { days: 365 });
        return [out];
      },
    },
    {
      name: "expired",
      check: /\[validity\]/,
      make: (s, p) => {
        const out = join(s.dir, "expired.pem");
        signCsr(ca, p.csr, out, { notBefore: new Date(Date.now() - 400 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
        return [out];
      },
    },
    {
      name: "not yet valid",
      check: /\[validity\]/,
      make: (s, p) => {
        const out = join(s.dir, "future.pem");
        signCsr(ca, p.csr, out, { notBefore: new Date(Date.now() + 10 * 86_400_000), notAfter: new Date(Date.now() + 400 * 86_400_000) });
        return [out];
      },
    },
    {
      name: "signed with sha1WithRSAEncryption (the certificate policy)",
      check: /\[signature-algorithm\].*sha1WithRSAEncryption/,
      make: (s, p) => [signRaw(s, p.csr, "sha1.pem", { digest: "sha1" })],
    },
    {
      name: "a negative serial, shown as openssl shows it",
      check: /\[serial\].*serial -05\).*negative serial/,
      make: (s, p) => [signRaw(s, p.csr, "negative.pem", { serial: "-5" })],
    },
    {
      name: "a leaf that outlives its intermediate, which expires within renew_before_days",
      check: /\[renewal-due\].*outlives intermediate/,
      make: (s, p) => {
        const shortCa = makeIntermediateCa(ca, s.dir, { cn: "Short-lived Issuing CA", days: 20 });
        return [signRaw(s, p.csr, "outlives.pem", {}, shortCa), shortCa.certPath];
      },
    },
    {
      name: "already due for renewal (10 days of validity, renew_before_days 30)",
      check: /\[renewal-due\]/,
      make: (s, p) => {
        const out = join(s.dir, "short.pem");
        signCsr(ca, p.csr, out, { days: 10 });
        return [out];
      },
    },
    {
      name: "truncated PEM",
      check: /\[parse\]/,
      make: (s, p) => {
        const out = join(s.dir, "cut.pem");
        signCsr(ca, p.csr, out, { days: 365 });
        const t = readFileSync(out, "utf8");
        writeFileSync(out, t.slice(0, t.length / 2));
        return [out];
      },
    },
    {
      name: "garbage",
      check: /\[parse\]/,
      make: (s) => {
        const out = join(s.dir, "garbage.crt");
        writeFileSync(out, Buffer.from([0x30, 0x82, 0x01, 0x00, 0xde, 0xad, 0xbe, 0xef]));
        return [out];
      },
    },
  ];

  test("each bad certificate is refused with its check; live/ and the pending renewal stay", async () => {
    const s = setup();
    const p = await liveThenPending(s);
    const keyBytes = readFileSync(p.key);
    for (const c of cases) {
      const files = c.make(s, p);
      const r = await runCredd(["--config", s.config, "ingest", ...files]);
      assert.equal(r.code, 1, `${c.name}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, c.check, `${c.name}: ${r.stdout}`);
      assertLiveUnchanged(s, p.liveBefore);
      assert.deepEqual(readFileSync(p.key), keyBytes, "the pending renewal's key is untouched");
    }
    const st = JSON.parse((await runCredd(["--config", s.config, "status", "--json", "fleet-prod"])).stdout);
    assert.equal(st.credentials[0].renewal.state, "created", "the renewal is still pending");
    assert.ok(st.credentials[0].last_refusal, "status shows the last refusal");
    assert.ok(st.credentials[0].problems.some((x: string) => /refused/.test(x)));
  });

  test("a missing intermediate is an error; with the intermediate it installs", async () => {
    const root = makeCa(makeTempDir("credd-root-"), { cn: "Test Stellantis Root" });
    const inter = makeIntermediateCa(root, makeTempDir("credd-inter-"));
    const s = setup({ caFile: root.certPath });
    const csr = await pendingCsr(s, "enroll");
    const leaf = join(s.dir, "via-inter.pem");
    signCsr(inter, csr, leaf, { days: 365 });
    const alone = await runCredd(["--config", s.config, "ingest", leaf]);
    assert.equal(alone.code, 1);
    assert.match(alone.stdout, /\[chain\].*intermediate/);
    assert.ok(!existsSync(s.live));
    const withInter = await runCredd(["--config", s.config, "ingest", "fleet-prod", leaf, inter.certPath]);
    assert.equal(withInter.code, 0, withInter.stdout + withInter.stderr);
    assert.equal(fp(join(s.live, "cert.pem")), fp(leaf));
    assert.match(readFileSync(join(s.live, "chain.pem"), "utf8"), /BEGIN CERTIFICATE[\s\S]*BEGIN CERTIFICATE/, "intermediate and root");
  });
});

describe("the daemon's inbox", () => {
  test("a signed certificate dropped in the inbox goes live within seconds; a bad file and a key go to rejected/ with a reason", async () => {
    const s = setup();
    const csr = await pendingCsr(s, "enroll");
    const d = startCreddDaemon(["--config", s.config, "run"], {
      CREDD_INBOX_POLL_MS: "100",
      CREDD_INBOX_MIN_AGE_MS: "0",
      CREDD_OUTBOX_TICK_MS: "100",
    });
    try {
      await d.waitForLog((l) => l.msg === "check done");
      const inbox = join(s.dir, "inbox");
      const signed = join(s.dir, "signed.pem");
      signCsr(ca, csr, signed, { days: 365 });
      copyFileSync(signed, join(inbox, ".incoming.tmp"));
      // A drop is a rename, so the daemon never sees half a file.
      execFileSync("mv", [join(inbox, ".incoming.tmp"), join(inbox, "MZP128745.cer")]);
      await d.waitForLog((l) => l.msg === "certificate live");
      assert.equal(fp(join(s.live, "cert.pem")), fp(signed));
      await d.waitForLog((l) => l.msg === "inbox file moved" && l.file === "MZP128745.cer");
      assert.ok(existsSync(join(inbox, "processed", "MZP128745.cer")));

      writeFileSync(join(inbox, "junk.pem"), "-----BEGIN CERTIFICATE-----\nnot base64\n");
      const key = readFileSync(join(s.live, "key.pem"));
      writeFileSync(join(inbox, "oops.key"), key, { mode: 0o600 });
      chmodSync(join(inbox, "oops.key"), 0o600);
      await d.waitForLog((l) => l.msg === "inbox file moved" && l.file === "oops.key");
      await d.waitForLog((l) => l.msg === "inbox file moved" && l.file === "junk.pem");
      const rejected = join(inbox, "rejected");
      assert.match(readFileSync(join(rejected, "oops.key.reason"), "utf8"), /private key/);
      assert.equal(statSync(join(rejected, "oops.key")).mode & 0o777, 0o600, "the key's mode is not widened");
      assert.ok(!readFileSync(join(rejected, "oops.key.reason"), "utf8").includes("PRIVATE KEY-----"));
      assert.match(readFileSync(join(rejected, "junk.pem.reason"), "utf8"), /parse/);
      assert.ok(!d.lines.some((l) => JSON.stringify(l).includes(key.toString("utf8").split("\n")[1]!)), "no key material in logs");
    } finally {
      assert.equal(await d.stop(), 0);
    }
  });
});

describe("ingest reads its file argument safely", () => {
  test("a FIFO, a device and a 3 GB file are refused unread, at once; a missing file keeps its message", async () => {
    const s = setup();
    const fifo = join(s.dir, "signed.pem");
    execFileSync("mkfifo", [fifo]);
    // Before, a writer-less FIFO blocked `credd ingest` for ever (runCredd kills it after 20 s here).
    const r = await runCredd(["--config", s.config, "ingest", fifo], {}, 20_000);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(
      r.stdout.trim(),
      `${fifo}: REFUSED [file-type] ${fifo} is a named pipe (FIFO), not a regular file; credd reads only regular files (it was not read)`,
    );
    const dev = await runCredd(["--config", s.config, "ingest", "/dev/zero"], {}, 20_000);
    assert.equal(dev.code, 1);
    assert.match(dev.stdout, /\/dev\/zero is a character device, not a regular file/);
    const big = join(s.dir, "huge.pem");
    writeFileSync(big, "");
    truncateSync(big, 3 * 1024 ** 3); // sparse; before: ERR_FS_FILE_TOO_LARGE, not a refusal
    const huge = await runCredd(["--config", s.config, "ingest", big], {}, 20_000);
    assert.equal(huge.code, 1, huge.stderr);
    assert.equal(
      huge.stdout.trim(),
      `${big}: REFUSED [parse] ${big} is 3221225472 bytes, too large for a certificate (limit 1 MiB): is it the right file?`,
    );
    const missing = join(s.dir, "nope.pem");
    const gone = await runCredd(["--config", s.config, "ingest", missing]);
    assert.equal(gone.code, 1);
    assert.equal(
      gone.stderr.trim(),
      `credd: cannot read the signed certificate to take in: ${missing} does not exist (fix: check the path; give the file Stellantis sent (PEM, DER or PKCS#7))`,
    );
  });
});

describe("deploy hooks and rollback", () => {
  test("a failing hook is an error in status, never a rollback; rollback brings the previous certificate back, refusing an expired one", async () => {
    const s = setup({ hooks: `[["/bin/sh", "-c", "echo reload failed >&2; exit 3"]]` });
    const first = await pendingCsr(s, "enroll");
    const c1 = join(s.dir, "c1.pem");
    signCsr(ca, first, c1, { days: 100 });
    const r1 = await runCredd(["--config", s.config, "ingest", c1]);
    assert.equal(r1.code, 0, r1.stdout + r1.stderr);
    assert.match(r1.stdout, /deploy hooks: 0\/1 ok/);
    assert.equal(fp(join(s.live, "cert.pem")), fp(c1), "still live despite the failed hook");
    const st = await runCredd(["--config", s.config, "status", "--json", "fleet-prod"]);
    const j = JSON.parse(st.stdout);
    assert.equal(j.credentials[0].last_hook.ok, false);
    assert.equal(j.credentials[0].last_hook.runs[0].exit_code, 3);
    assert.ok(j.credentials[0].problems.some((p: string) => /deploy hook failed/.test(p)));

    const second = await pendingCsr(s, "renew");
    const c2 = join(s.dir, "c2.pem");
    signCsr(ca, second, c2, { days: 365 });
    await ok(s.config, "ingest", c2);
    assert.equal(fp(join(s.live, "cert.pem")), fp(c2));

    const late = new Date(Date.now() + 120 * 86_400_000).toISOString();
    const refused = await runCredd(["--config", s.config, "rollback", "fleet-prod"], { CREDD_FAKE_NOW: late });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /expired/);
    assert.equal(fp(join(s.live, "cert.pem")), fp(c2));

    await ok(s.config, "rollback", "fleet-prod");
    assert.equal(fp(join(s.live, "cert.pem")), fp(c1));
    assert.ok(livePairMatches(s.live));
    const after = JSON.parse((await runCredd(["--config", s.config, "status", "--json", "fleet-prod"])).stdout);
    assert.equal(after.credentials[0].certificate.sha256.replace(/:/g, ""), fp(c1).split("=")[1]!.replace(/:/g, ""));
  });
});

describe("a certificate taken in again", () => {
  test("the live one is 'already installed' (exit 0); one live before says when it was replaced and how to go back, changing nothing", async () => {
    const s = setup();
    const certs: { path: string; serial: string }[] = [];
    const install = async (kind: "enroll" | "renew", days: number) => {
      const csr = await pendingCsr(s, kind);
      const path = join(s.dir, `c${certs.length + 1}.pem`);
      signCsr(ca, csr, path, { days });
      const r = await ok(s.config, "ingest", path);
      const serial = /certificate (\S+) is live \(version (\d+)\)/.exec(r.stdout);
      assert.ok(serial, r.stdout);
      certs.push({ path, serial: serial[1]! });
    };
    await install("enroll", 100);
    await install("renew", 365);
    const [c1, c2] = [certs[0]!, certs[1]!];
    const iso = "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC"; // text output: one time format (src/cli/format.ts)

    // The live one again: nothing to do, and not an error.
    const same = await runCredd(["--config", s.config, "ingest", c2.path]);
    assert.equal(same.code, 0, same.stdout + same.stderr);
    assert.match(
      same.stdout,
      new RegExp(
        `certificate ${c2.serial} is already installed: it is fleet-prod's live certificate \\(version 2, first live on ${iso}\\); nothing changed`,
      ),
    );

    // The one it replaced: refused with when and how to go back, never "made for another CSR".
    const old = await runCredd(["--config", s.config, "ingest", c1.path]);
    assert.equal(old.code, 1, old.stdout + old.stderr);
    assert.doesNotMatch(old.stdout, /another CSR|no pending renewal/);
    assert.match(
      old.stdout,
      new RegExp(
        `REFUSED \\[previously-live\\] certificate ${c1.serial} \\(version 1\\) is already installed: it was fleet-prod's live certificate before ` +
          `\\(first live on ${iso}\\) and was replaced on ${iso} \\(live now: certificate ${c2.serial}, version 2\\); nothing changed\\. ` +
          "To make it live again, run `credd rollback fleet-prod`",
      ),
    );
    assert.equal(fp(join(s.live, "cert.pem")), fp(c2.path), "nothing changed");
    const st = JSON.parse((await runCredd(["--config", s.config, "status", "--json", "fleet-prod"])).stdout);
    assert.ok(!st.credentials[0].problems.some((p: string) => /refused/.test(p)), `no warning for it: ${JSON.stringify(st.credentials[0].problems)}`);

    // Once it has expired, going back is not offered.
    const late = new Date(Date.now() + 120 * 86_400_000).toISOString();
    const expired = await runCredd(["--config", s.config, "ingest", c1.path], { CREDD_FAKE_NOW: late });
    assert.equal(expired.code, 1);
    assert.match(expired.stdout, new RegExp(`nothing changed\\. It expired on ${iso}, so it cannot be live again$`, "m"));

    // After a rollback the newer one is the one that was live before; after a third certificate,
    // rollback no longer reaches it, and the message says where rollback would go instead.
    await ok(s.config, "rollback", "fleet-prod");
    const back = await runCredd(["--config", s.config, "ingest", c2.path]);
    assert.equal(back.code, 1);
    assert.match(
      back.stdout,
      new RegExp(
        `certificate ${c2.serial} \\(version 2\\) is already installed: .* \\(live now: certificate ${c1.serial}, version 1\\); nothing changed\\. To make it live again, run \`credd rollback fleet-prod\``,
      ),
    );
    await install("renew", 365);
    const far = await runCredd(["--config", s.config, "ingest", c2.path]);
    assert.equal(far.code, 1);
    assert.match(
      far.stdout,
      new RegExp(`\`credd rollback fleet-prod\` goes back one step only, to certificate ${c1.serial} \\(version 1\\), not to this one`),
    );
    assert.equal(fp(join(s.live, "cert.pem")), fp(certs[2]!.path));
  });
});

describe("a crash during install", () => {
  for (const point of ["after-archive", "after-signed", "after-switch", "after-db-live"]) {
    test(`killed at ${point}: live/ is the old pair or the new pair, and the next start finishes the job`, async () => {
      const s = setup();
      const p = await liveThenPending(s);
      const signed = join(s.dir, "new.pem");
      signCsr(ca, p.csr, signed, { days: 365 });
      const oldFp = fp(join(s.live, "cert.pem"));
      const crashed = await runCredd(["--config", s.config, "ingest", signed], { CREDD_CRASH_AT: point });
      assert.equal(crashed.code, null, `killed: ${crashed.stdout}${crashed.stderr}`);
      const mid = fp(join(s.live, "cert.pem"));
      assert.ok(mid === oldFp || mid === fp(signed), "old or new certificate");
      assert.ok(livePairMatches(s.live), "never a mixed pair");

      const d = startCreddDaemon(["--config", s.config, "run"]);
      await d.waitForLog((l) => l.msg === "check done");
      assert.equal(await d.stop(), 0);
      if (point === "after-archive") {
        // Nothing was recorded: the certificate must be taken in again (the file is still there).
        assert.equal(fp(join(s.live, "cert.pem")), oldFp);
        await ok(s.config, "ingest", signed);
      }
      assert.equal(fp(join(s.live, "cert.pem")), fp(signed));
      assert.ok(livePairMatches(s.live));
      const st = JSON.parse((await runCredd(["--config", s.config, "status", "--json", "fleet-prod"])).stdout);
      assert.equal(st.credentials[0].certificate.sha256.replace(/:/g, ""), fp(signed).split("=")[1]!.replace(/:/g, ""));
      assert.equal(st.credentials[0].renewal, null);
    });
  }
});
