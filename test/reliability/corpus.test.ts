// The bad-input corpus (test/corpus/manifest.json): every certificate file goes through `credd ingest`,
// every config through the command named (default `credd run`). Each refusal must exit non-zero, name
// what is wrong (the ingest check, or the config key), show no crash, and leave live/ byte-identical
// and the pending renewal's key untouched. "accept" entries are valid forms and must be taken in.
import assert from "node:assert/strict";
import { accessSync, chmodSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { dnFor } from "../helpers/credd.js";
import {
  makeCa,
  makeIntermediateCa,
  makeKeyAndCert,
  openssl,
  signCsr,
  signCsrWithExtensions,
  signWithCa,
  subjFromPairs,
  type SignOptions,
  type TestCa,
} from "../helpers/openssl.js";
import { SecretBag, scanAll } from "./lib/hygiene.js";
import { crashSigns, Journal, runCli } from "./lib/proc.js";
import { archiveDir, certFingerprint, liveDir, makeWorld, type World } from "./lib/world.js";

const CORPUS = fileURLToPath(new URL("../corpus/", import.meta.url));

interface Generate {
  key: "pending" | "other";
  signer: "ca" | "intermediate" | "foreign-ca" | "self" | "weak-intermediate" | "short-intermediate";
  /** openssl x509 -req's digest (default sha256) and -set_serial, for the certificate policy's cases. */
  digest?: "sha1" | "md5";
  serial?: string;
  subject?: Record<string, string>;
  notBefore?: number;
  notAfter?: number;
  days?: number;
  extensions?: string[];
  /** with-issuer: the leaf then the certificate that signed it (an intermediate). */
  form?: "pem" | "crlf" | "bom" | "bag" | "bom-crlf-bag" | "with-key" | "with-issuer";
}

interface Entry {
  file: string;
  kind: "certificate" | "config";
  what: string;
  expect?: "refuse" | "accept";
  check?: string;
  key?: string;
  message?: string;
  make?: "private-key-pkcs8" | "private-key-sec1" | "private-key-der" | "pkcs12" | "huge";
  generate?: Generate;
  command?: string[];
  mustNotContain?: string[];
  absent?: boolean;
  folder?: boolean;
  unreadableSecret?: string;
}

const manifest = JSON.parse(readFileSync(join(CORPUS, "manifest.json"), "utf8")) as { credential: { name: string; mzp: string }; entries: Entry[] };
const NAME = manifest.credential.name;
const MZP = manifest.credential.mzp;

const journal = new Journal();
let world: World | undefined;
after(async () => {
  await world?.close();
});

/** live/ as bytes, file by file, plus where the symlink points. */
function snapshot(w: World): Record<string, string> {
  const dir = liveDir(w, NAME);
  const out: Record<string, string> = { "->": readlinkSync(dir) };
  for (const f of readdirSync(dir).sort()) out[f] = readFileSync(join(dir, f)).toString("base64");
  return out;
}

interface Pending {
  version: number;
  key: string;
  csr: string;
  keyBytes: Buffer;
}

function pending(w: World): Pending | undefined {
  const db = new Database(join(w.stateDir, "credd.db"), { readonly: true });
  try {
    const r = db.prepare("SELECT version FROM renewals WHERE credential = ? AND state IN ('created','sent','signed','registered')").get(NAME) as
      | { version: number }
      | undefined;
    if (!r) return undefined;
    const key = join(archiveDir(w, NAME), `key-${r.version}.pem`);
    return { version: r.version, key, csr: join(archiveDir(w, NAME), `csr-${r.version}.pem`), keyBytes: readFileSync(key) };
  } finally {
    db.close();
  }
}

/** An intermediate CA with an RSA key of `bits` that expires in `days` (makeIntermediateCa has neither knob). */
function makePolicyIntermediate(root: TestCa, dir: string, cn: string, bits: number, days: number): TestCa {
  const keyPath = join(dir, `${cn.replace(/\W+/g, "-")}.key`);
  const csrPath = `${keyPath}.csr`;
  const certPath = `${keyPath}.pem`;
  openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", `rsa_keygen_bits:${bits}`, "-out", keyPath]);
  openssl(["req", "-new", "-key", keyPath, "-subj", `/C=FR/O=Test Stellantis/CN=${cn}`, "-out", csrPath]);
  signWithCa(root, csrPath, certPath, {
    extensions: [
      "basicConstraints = critical,CA:TRUE",
      "keyUsage = critical,keyCertSign,cRLSign",
      "subjectKeyIdentifier = hash",
      "authorityKeyIdentifier = keyid:always",
    ],
    serial: "0x7E57",
    days,
  });
  return { certPath, keyPath, certPem: readFileSync(certPath, "utf8"), dir };
}

const DN_ORDER = ["C", "ST", "L", "O", "OU", "CN", "emailAddress"] as const;

test("the bad-input corpus: every file and config refused with a reason, nothing live changed; valid forms accepted", {
  timeout: 600_000,
}, async (t) => {
  const started = Date.now();
  world = await makeWorld({ creds: [{ name: NAME, mzp: MZP, key: "ec" }], prefix: "credd-rel-corpus-" });
  const w = world;
  const work = join(w.dir, "generated");
  mkdirSync(work, { recursive: true });
  const cfg = ["--config", w.config];
  const ok = async (...args: string[]) => {
    const r = await runCli(journal, [...cfg, ...args]);
    assert.equal(r.code, 0, `credd ${args.join(" ")}: ${r.stdout}${r.stderr}`);
    return r;
  };
  const hand = makeKeyAndCert(w.dir, dnFor(MZP), { ca: w.ca, days: 365, keyType: "ec" });
  await ok("import", NAME, "--cert", hand.certPath, "--key", hand.keyPath);
  await ok("renew", NAME, "--no-send");
  const inter: TestCa = makeIntermediateCa(w.ca, w.dir);
  const foreign: TestCa = makeCa(w.dir, { cn: "Test Stellantis CA" }); // the pinned CA's very name, another key
  // The certificate policy's intermediates: a 1024-bit RSA key, and one that expires before renewal could act.
  const weak: TestCa = makePolicyIntermediate(w.ca, w.dir, "Weak 1024 CA", 1024, 1825);
  const short: TestCa = makePolicyIntermediate(w.ca, w.dir, "Short-lived CA", 2048, 20);
  let n = 0;

  const makeFile = (e: Entry): string => {
    const out = join(work, e.file.replace(/^generated\//, ""));
    if (e.make === "private-key-pkcs8") openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", out]);
    else if (e.make === "private-key-sec1") {
      openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${out}.tmp`]);
      openssl(["ec", "-in", `${out}.tmp`, "-out", out]);
      rmSync(`${out}.tmp`);
    } else if (e.make === "private-key-der")
      openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-outform", "DER", "-out", out]);
    else if (e.make === "pkcs12") {
      const other = makeKeyAndCert(w.dir, dnFor(MZP), { ca: w.ca, days: 365, keyType: "ec" });
      openssl([
        "pkcs12",
        "-export",
        "-inkey",
        other.keyPath,
        "-in",
        other.certPath,
        "-certfile",
        w.ca.certPath,
        "-passout",
        "pass:corpus-p12",
        "-out",
        out,
      ]);
    } else if (e.make === "huge") {
      let s = "";
      while (s.length < 2 * 1024 * 1024) s += w.ca.certPem;
      writeFileSync(out, s);
    } else throw new Error(`${e.file}: nothing to make`);
    return out;
  };

  const generate = (e: Entry, g: Generate, p: Pending): string => {
    const id = ++n;
    let leaf: string;
    if (g.key === "other") {
      leaf = makeKeyAndCert(w.dir, dnFor(MZP), { ca: w.ca, days: 365, keyType: "ec" }).certPath;
    } else {
      let csr = p.csr;
      if (g.subject) {
        const dn = { ...dnFor(MZP), ...g.subject } as Record<string, string>;
        csr = join(work, `req-${id}.csr`);
        openssl(["req", "-new", "-key", p.key, "-utf8", "-subj", subjFromPairs(DN_ORDER.map((k) => [k, dn[k]!] as [string, string])), "-out", csr]);
      }
      leaf = join(work, `leaf-${id}.pem`);
      const opts: SignOptions = {};
      if (g.days !== undefined) opts.days = g.days;
      if (g.notBefore !== undefined) opts.notBefore = new Date(Date.now() + g.notBefore * 86_400_000);
      if (g.notAfter !== undefined) opts.notAfter = new Date(Date.now() + g.notAfter * 86_400_000);
      const issuer =
        g.signer === "intermediate"
          ? inter
          : g.signer === "foreign-ca"
            ? foreign
            : g.signer === "weak-intermediate"
              ? weak
              : g.signer === "short-intermediate"
                ? short
                : w.ca;
      if (g.signer === "self") signWithCa({ selfSignKey: p.key }, csr, leaf);
      else if (g.digest || g.serial) {
        signWithCa(issuer, csr, leaf, {
          extensions: ["basicConstraints = CA:FALSE", "keyUsage = critical,digitalSignature", "extendedKeyUsage = clientAuth"],
          days: g.days ?? 365,
          digest: g.digest ?? "sha256",
          serial: g.serial ?? "0x5EED",
        });
      } else if (g.extensions) signCsrWithExtensions(w.ca, csr, leaf, g.extensions);
      else signCsr(issuer, csr, leaf, opts);
    }
    const out = join(work, e.file.replace(/^generated\//, ""));
    const leafPem = readFileSync(leaf, "utf8");
    const crlf = (s: string) => s.replace(/\r?\n/g, "\r\n");
    const bag = () => {
      const p12 = join(work, `bag-${id}.p12`);
      openssl(["pkcs12", "-export", "-nokeys", "-in", leaf, "-passout", "pass:x", "-out", p12]);
      const text = openssl(["pkcs12", "-in", p12, "-nokeys", "-passin", "pass:x"]).stdout;
      assert.match(text, /Bag Attributes/, "openssl prints Bag Attributes");
      return text;
    };
    switch (g.form ?? "pem") {
      case "pem":
        writeFileSync(out, leafPem);
        break;
      case "crlf":
        writeFileSync(out, crlf(leafPem + w.ca.certPem));
        break;
      case "bom":
        writeFileSync(out, `\ufeff${leafPem}`);
        break;
      case "bag":
        writeFileSync(out, bag());
        break;
      case "bom-crlf-bag":
        writeFileSync(out, `\ufeff${crlf(w.ca.certPem + bag())}`);
        break;
      case "with-key":
        writeFileSync(out, leafPem + readFileSync(p.key, "utf8"));
        break;
      case "with-issuer":
        writeFileSync(out, leafPem + (g.signer === "weak-intermediate" ? weak : g.signer === "short-intermediate" ? short : inter).certPem);
        break;
    }
    return out;
  };

  const failures: string[] = [];
  const record = (e: Entry, problem: string, output: string) =>
    failures.push(`${e.file} (${e.what}): ${problem}\n    ${output.trim().split("\n").slice(0, 6).join("\n    ")}`);
  const expectRefusal = (e: Entry, code: number | null, output: string, before: Record<string, string>, p: Pending) => {
    if (code === 0 || code === null) record(e, `exit ${code}: not refused`, output);
    if (e.message && !new RegExp(e.message, "s").test(output)) record(e, `the message does not match /${e.message}/`, output);
    if (e.kind === "certificate" && !output.includes(`REFUSED [${e.check}]`)) record(e, `not refused by the ${e.check} check`, output);
    if (e.kind === "config" && e.key && !output.includes(e.key)) record(e, `the message does not name the key ${e.key}`, output);
    for (const s of e.mustNotContain ?? []) if (output.includes(s)) record(e, `the message repeats the secret ${s}`, output);
    const signs = crashSigns(output);
    if (signs.length) record(e, `crash signs: ${signs.join(", ")}`, output);
    if (JSON.stringify(snapshot(w)) !== JSON.stringify(before)) record(e, "live/ changed", output);
    const now = pending(w);
    if (!now || now.version !== p.version || !now.keyBytes.equals(p.keyBytes)) record(e, "the pending renewal or its key changed", output);
  };

  const templated = (text: string, extra: Record<string, string>) =>
    Object.entries({
      STATE_DIR: w.stateDir,
      RUNTIME_DIR: w.runtimeDir,
      INBOX_DIR: w.inboxDir,
      SMTP_PORT: String(w.smtp.port),
      SMTP_CA: w.smtp.caPath,
      STELLANTIS_CA: w.caFile,
      DIR: w.dir,
      ...extra,
    }).reduce((s, [k, v]) => s.replaceAll(`{{${k}}}`, v), text);

  const certs = manifest.entries.filter((e) => e.kind === "certificate");
  const configs = manifest.entries.filter((e) => e.kind === "config");
  let refusedCerts = 0;
  let refusedConfigs = 0;
  let accepted = 0;

  const said = (e: Entry, output: string) =>
    t.diagnostic(
      `${e.file}: ${
        output
          .trim()
          .split("\n")
          .find((l) => /REFUSED|credd:|fix:|error/i.test(l)) ?? output.trim().split("\n")[0]
      }`.slice(0, 300),
    );

  const phase = (what: string) => t.diagnostic(`${what} at ${((Date.now() - started) / 1000).toFixed(1)} s`);
  phase("set up");
  // 1. Certificates that must be refused, all against the same pending renewal (three at a time:
  // a refusal only reads, and records one row).
  const p0 = pending(w)!;
  const refusals = certs
    .filter((x) => x.expect === "refuse")
    .map((e) => {
      const file = e.make ? makeFile(e) : e.generate ? generate(e, e.generate, p0) : join(CORPUS, e.file);
      assert.ok(existsSync(file), `${e.file} exists`);
      return { e, file };
    });
  phase("files made");
  for (let i = 0; i < refusals.length; i += 3) {
    const batch = refusals.slice(i, i + 3);
    const before = snapshot(w);
    const rs = await Promise.all(batch.map(({ file }) => runCli(journal, [...cfg, "ingest", file])));
    batch.forEach(({ e }, j) => {
      const out = `${rs[j]!.stdout}${rs[j]!.stderr}`;
      said(e, out);
      expectRefusal(e, rs[j]!.code, out, before, p0);
      refusedCerts++;
    });
  }

  phase("certificates refused");
  // 2. Configs: the command refuses, naming the key; nothing in the state folder moves.
  writeFileSync(join(w.dir, "a-file"), "a regular file, so nothing can be created below it\n");
  const signedForPending = join(work, "signed-for-pending.pem");
  signCsr(w.ca, pending(w)!.csr, signedForPending, { days: 365 });
  const other = makeKeyAndCert(w.dir, dnFor(MZP), { ca: w.ca, days: 365, keyType: "ec" });
  const prepared: { e: Entry; run: () => Promise<{ code: number | null; out: string }> }[] = [];
  for (const e of configs) {
    let configPath = join(CORPUS, e.file);
    if (e.unreadableSecret) {
      const secret = join(w.dir, e.unreadableSecret);
      rmSync(secret, { recursive: true, force: true });
      writeFileSync(secret, "p12-corpus-secret\n");
      chmodSync(secret, 0o000);
      let readable = false;
      try {
        accessSync(secret, constants.R_OK);
        readable = true;
      } catch {
        /* unreadable, as intended */
      }
      if (readable) {
        // root reads a mode-000 file anyway (CAP_DAC_OVERRIDE): a folder is unreadable as a secret for everyone.
        rmSync(secret, { force: true });
        mkdirSync(secret);
        t.diagnostic(`${e.file}: running as uid ${process.getuid?.()}, which reads a mode-000 file anyway; the secret path is a folder instead`);
      }
    }
    if (!e.absent && !e.folder) {
      configPath = join(w.dir, `config-${e.file.replace(/\W+/g, "-")}.yaml`);
      writeFileSync(configPath, templated(readFileSync(join(CORPUS, e.file), "utf8"), {}));
    } else if (e.folder) configPath = join(w.dir, "a-folder");
    if (e.folder) mkdirSync(configPath, { recursive: true });
    const args = (e.command ?? ["run"]).map((a) => templated(a, { SIGNED: signedForPending, HAND_CERT: other.certPath, HAND_KEY: other.keyPath }));
    prepared.push({
      e,
      run: async () => {
        const r = await runCli(journal, ["--config", configPath, ...args], {}, { timeoutMs: 20_000 });
        return { code: r.code, out: `${r.stdout}${r.stderr}` };
      },
    });
  }
  // `credd run` with a bad config stops before it opens anything: three at a time. The others
  // (alerts test, import, ingest) write to the database: one at a time.
  const parallel = prepared.filter((x) => !x.e.command);
  const serial = prepared.filter((x) => x.e.command);
  for (let i = 0; i < parallel.length; i += 3) {
    const batch = parallel.slice(i, i + 3);
    const p = pending(w)!;
    const before = snapshot(w);
    const rs = await Promise.all(batch.map((x) => x.run()));
    batch.forEach((x, j) => {
      said(x.e, rs[j]!.out);
      expectRefusal(x.e, rs[j]!.code, rs[j]!.out, before, p);
      refusedConfigs++;
    });
  }
  for (const x of serial) {
    const p = pending(w)!;
    const before = snapshot(w);
    const r = await x.run();
    said(x.e, r.out);
    expectRefusal(x.e, r.code, r.out, before, p);
    refusedConfigs++;
  }

  phase("configs refused");
  // 3. Valid forms: each is taken in for a fresh pending renewal and goes live.
  for (const e of certs.filter((x) => x.expect === "accept")) {
    if (!pending(w)) await ok("renew", NAME, "--no-send");
    const p = pending(w)!;
    const file = generate(e, e.generate!, p);
    const r = await runCli(journal, [...cfg, "ingest", file]);
    const output = `${r.stdout}${r.stderr}`;
    if (r.code !== 0 || !/installed for corp/.test(r.stdout)) {
      record(e, `not accepted (exit ${r.code})`, output);
      continue;
    }
    const liveCert = readFileSync(join(liveDir(w, NAME), "cert.pem"));
    const liveKey = readFileSync(join(liveDir(w, NAME), "key.pem"));
    const leafFp = certFingerprint(readFileSync(join(work, `leaf-${n}.pem`)));
    if (certFingerprint(liveCert) !== leafFp) record(e, "accepted but live/cert.pem is another certificate", output);
    if (!liveKey.equals(p.keyBytes)) record(e, "live/key.pem is not the pending renewal's key", output);
    accepted++;
  }

  // No key material in anything credd printed or stored while refusing all this.
  const bag = new SecretBag();
  bag.addKeysUnder("key", w.dir);
  const hits = scanAll(bag, { logs: journal.text(), databases: [join(w.stateDir, "credd.db")], mails: w.smtp.received });
  assert.deepEqual(hits, [], "no private key in output, database or mail");

  const summary = {
    refusedCertificates: refusedCerts,
    refusedConfigs,
    accepted,
    entries: manifest.entries.length,
    seconds: Math.round((Date.now() - started) / 1000),
  };
  t.diagnostic(JSON.stringify(summary));
  assert.ok(manifest.entries.length >= 40, "at least 40 corpus entries");
  assert.deepEqual(failures, [], `${failures.length} corpus entries misbehaved:\n${failures.join("\n")}`);
});
