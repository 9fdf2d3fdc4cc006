// credd's certificate checks against `openssl verify -x509_strict -auth_level 2 -purpose sslclient`, certificate by certificate.
// Every case is made with real openssl: the bad certificates of issue 13 (SHA-1, MD5, a 1024-bit
// intermediate, an unknown critical extension, name constraints, serials 0 and negative, a leaf
// that outlives its CA) and the static certificate files of test/corpus. Both must agree; where
// they do not on purpose, DIFFERENCES says why.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { readCertificateFile } from "../../src/pki/bundle.js";
import type { CertInfo } from "../../src/pki/certs.js";
import { checkIssuedCertificate } from "../../src/pki/policy.js";
import { RefusedError } from "../../src/errors.js";
import type { CredentialConfig } from "../../src/config/types.js";
import { checkImport } from "../../src/core/import.js";
import { dnFor } from "../helpers/credd.js";
import { makeCa, makeIntermediateCa, makeTempDir, openssl, signWithCa, subjFromDn, type TestCa } from "../helpers/openssl.js";

const RENEW_BEFORE_DAYS = 30;
const DN = dnFor("MZP990001");
const CORPUS = join(import.meta.dirname, "..", "corpus");

/**
 * Where credd refuses what openssl accepts, on purpose. (openssl refusing what credd accepts would
 * be a credd bug: none is listed.)
 */
const DIFFERENCES: Record<string, string> = {
  "name-constrained CA, leaf inside the constraint":
    "credd does not evaluate nameConstraints and refuses every path through a constrained CA (docs/certificate-policy.md)",
  "serial of 21 octets": "RFC 5280 4.1.2.2 caps serials at 20 octets; OpenSSL 3.0 does not check the length",
  "serial 0": "RFC 5280 4.1.2.2 requires a positive serial; OpenSSL 3.0's verify does not check it",
  "negative serial": "RFC 5280 4.1.2.2 requires a positive serial; OpenSSL 3.0's verify does not check it",
  "leaf outliving an intermediate that expires in 20 days":
    "credd looks ahead: the credential breaks when the CA expires, before renew_before_days could act; openssl only checks now",
  "EC P-224 leaf": "credd requires P-256 or larger; OpenSSL's auth_level 2 accepts 112-bit security, which P-224 has",
};

const ANY_REFUSAL = "any refusal";

interface Case {
  name: string;
  /** The leaf's file, and the untrusted certificates (intermediates) that come with it. */
  leaf: string;
  untrusted: string[];
  /** The check credd must refuse it with; undefined when credd must accept it. */
  credd?: string;
}

let dir: string;
let root: TestCa;
/** Each leaf's private key file, for `credd import`. */
const keyOf = new Map<string, string>();
const cases: Case[] = [];
/** Set once every certificate is made (openssl dates them from the wall clock as it signs). */
let now: Date;

/** A fresh key (RSA of `bits`, or an EC curve) and CSR for the test DN. */
function keyAndCsr(work: string, key: { rsa: number } | { ec: string }): { keyPath: string; csrPath: string } {
  const keyPath = join(work, "key.pem");
  const csrPath = join(work, "csr.pem");
  if ("rsa" in key) openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", `rsa_keygen_bits:${key.rsa}`, "-out", keyPath]);
  else openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", `ec_paramgen_curve:${key.ec}`, "-out", keyPath]);
  writeFileSync(join(work, "req.cnf"), "[req]\ndistinguished_name = dn\nprompt = no\nstring_mask = utf8only\n[dn]\n");
  openssl(["req", "-new", "-config", join(work, "req.cnf"), "-utf8", "-key", keyPath, "-subj", subjFromDn(DN), "-sha256", "-out", csrPath]);
  return { keyPath, csrPath };
}

interface IssueOptions {
  key?: { rsa: number } | { ec: string };
  digest?: string;
  serial?: string;
  days?: number;
  extraExtensions?: string[];
  sigopts?: string[];
}

/** A client leaf issued by `issuer` with openssl x509 -req, the extensions a real CA puts in, and the tweaks asked. */
function issueLeaf(issuer: Pick<TestCa, "certPath" | "keyPath">, name: string, opts: IssueOptions = {}): string {
  const work = mkdtempSync(join(dir, "leaf-"));
  const { csrPath, keyPath } = keyAndCsr(work, opts.key ?? { rsa: 2048 });
  const ext = [
    "basicConstraints = critical,CA:FALSE",
    "keyUsage = critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage = clientAuth",
    "subjectKeyIdentifier = hash",
    "authorityKeyIdentifier = keyid",
    ...(opts.extraExtensions ?? []),
  ];
  const out = join(dir, `${name.replace(/[^a-z0-9]+/gi, "-")}.pem`);
  signWithCa(issuer, csrPath, out, {
    extensions: ext,
    serial: opts.serial ?? "0x1A2B3C4D",
    days: opts.days ?? 365,
    digest: opts.digest ?? "sha256",
    ...(opts.sigopts ? { extraArgs: opts.sigopts } : {}),
  });
  keyOf.set(out, keyPath);
  return out;
}

/** An intermediate CA with the extensions given (and the usual ones), RSA of `bits`. */
function intermediate(name: string, opts: { bits?: number; days?: number; extra?: string[] } = {}): TestCa {
  const work = mkdtempSync(join(dir, "int-"));
  const keyPath = join(work, "int.key");
  const csrPath = join(work, "int.csr");
  const certPath = join(work, "int.pem");
  openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", `rsa_keygen_bits:${opts.bits ?? 2048}`, "-out", keyPath]);
  writeFileSync(join(work, "req.cnf"), "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n");
  openssl(["req", "-new", "-config", join(work, "req.cnf"), "-key", keyPath, "-subj", `/C=FR/O=Test Stellantis/CN=${name}`, "-out", csrPath]);
  signWithCa(root, csrPath, certPath, {
    extensions: [
      "basicConstraints = critical,CA:TRUE",
      "keyUsage = critical,keyCertSign,cRLSign",
      "subjectKeyIdentifier = hash",
      "authorityKeyIdentifier = keyid:always",
      ...(opts.extra ?? []),
    ],
    serial: "0x7E57",
    days: opts.days ?? 1825,
  });
  return { certPath, keyPath, certPem: readFileSync(certPath, "utf8"), dir: work };
}

before(() => {
  dir = makeTempDir("credd-policy-diff-");
  root = makeCa(dir, { cn: "Differential Root CA" });
  const issuing = makeIntermediateCa(root, dir, { cn: "Differential Issuing CA" });
  const add = (name: string, leaf: string, untrusted: string[], credd?: string) => cases.push({ name, leaf, untrusted, ...(credd ? { credd } : {}) });

  add("RSA 2048 leaf, SHA-256", issueLeaf(root, "good-rsa"), []);
  add("EC P-256 leaf", issueLeaf(root, "good-ec", { key: { ec: "P-256" } }), []);
  add("EC P-384 leaf, SHA-384", issueLeaf(root, "good-ec384", { key: { ec: "P-384" }, digest: "sha384" }), []);
  add(
    "leaf signed with RSASSA-PSS SHA-256",
    issueLeaf(root, "pss", { sigopts: ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"] }),
    [],
  );
  add("leaf under an issuing CA", issueLeaf(issuing, "via-issuing"), [issuing.certPath]);
  add("leaf signed with sha1WithRSAEncryption", issueLeaf(root, "sha1", { digest: "sha1" }), [], "signature-algorithm");
  add("leaf signed with md5WithRSAEncryption", issueLeaf(root, "md5", { digest: "md5" }), [], "signature-algorithm");
  add("RSA 1024 leaf", issueLeaf(root, "rsa1024", { key: { rsa: 1024 } }), [], "key-size");
  const weak = intermediate("Weak 1024 CA", { bits: 1024 });
  add("intermediate with a 1024-bit RSA key", issueLeaf(weak, "under-weak"), [weak.certPath], "key-size");
  add("EC P-224 leaf", issueLeaf(root, "p224", { key: { ec: "P-224" } }), [], "key-size");
  add(
    "leaf with an unknown critical extension",
    issueLeaf(root, "critical", { extraExtensions: ["1.3.6.1.4.1.55555.1 = critical,DER:05:00"] }),
    [],
    "critical-extension",
  );
  const constrained = intermediate("Constrained CA", {
    extra: ["nameConstraints = critical,permitted;dirName:nc_allowed", "[nc_allowed]", "O = Somewhere Else"],
  });
  add("name-constrained CA, leaf outside the constraint", issueLeaf(constrained, "nc-outside"), [constrained.certPath], "name-constraints");
  const fits = intermediate("Fitting Constrained CA", {
    extra: ["nameConstraints = critical,permitted;dirName:nc_fits", "[nc_fits]", `C = ${DN.C}`],
  });
  add("name-constrained CA, leaf inside the constraint", issueLeaf(fits, "nc-inside"), [fits.certPath], "name-constraints");
  add("serial 0", issueLeaf(root, "serial0", { serial: "0" }), [], "serial");
  add("negative serial", issueLeaf(root, "serial-neg", { serial: "-5" }), [], "serial");
  add("serial of 20 octets", issueLeaf(root, "serial20", { serial: `0x${"7F".repeat(20)}` }), []);
  add("serial of 21 octets", issueLeaf(root, "serial21", { serial: `0x${"7F".repeat(21)}` }), [], "serial");
  const shortCa = intermediate("Short-lived CA", { days: 20 });
  add("leaf outliving an intermediate that expires in 20 days", issueLeaf(shortCa, "outlives"), [shortCa.certPath], "renewal-due");
  const midCa = intermediate("Mid-life CA", { days: 120 });
  add("leaf outliving an intermediate that expires in 120 days", issueLeaf(midCa, "outlives-ok"), [midCa.certPath]);

  // The static certificate files of the corpus (the generated ones need a running credd; test/reliability/corpus.test.ts).
  const manifest = JSON.parse(readFileSync(join(CORPUS, "manifest.json"), "utf8")) as {
    entries: Array<{ file?: string; kind: string; expect: string }>;
  };
  for (const e of manifest.entries) {
    if (e.kind !== "certificate" || !e.file || e.file.startsWith("generated/")) continue;
    // The manifest's check is ingest's (key-match comes first there); here any refusal is credd's verdict.
    add(`corpus ${e.file}`, join(CORPUS, e.file), [], e.expect === "accept" ? undefined : ANY_REFUSAL);
  }
  now = new Date(Date.now() + 60_000);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** credd's verdict: the file read as ingest reads it, then checkIssuedCertificate (what ingest runs). */
async function credd(c: Case): Promise<{ ok: true; leaf: CertInfo } | { ok: false; check: string; reason: string }> {
  try {
    const certs = readCertificateFile(readFileSync(c.leaf), c.leaf).certificates;
    const leaf = certs.find((x) => !x.isCa);
    if (!leaf) return { ok: false, check: "key-match", reason: "no end-entity certificate" };
    const others = [...certs.filter((x) => x !== leaf), ...c.untrusted.flatMap((f) => readCertificateFile(readFileSync(f), f).certificates)];
    const pinned = readCertificateFile(readFileSync(root.certPath), root.certPath).certificates;
    await checkIssuedCertificate(leaf, others, pinned, now, RENEW_BEFORE_DAYS);
    return { ok: true, leaf };
  } catch (err) {
    if (err instanceof RefusedError) return { ok: false, check: err.check, reason: err.message };
    throw err;
  }
}

function opensslVerify(c: Case): { ok: boolean; output: string } {
  const untrusted = c.untrusted.length ? ["-untrusted", c.untrusted.join(",").includes(",") ? bundle(c.untrusted) : c.untrusted[0]!] : [];
  const res = spawnSync(
    "openssl",
    ["verify", "-x509_strict", "-auth_level", "2", "-purpose", "sslclient", "-CAfile", root.certPath, ...untrusted, c.leaf],
    { encoding: "utf8" },
  );
  return { ok: res.status === 0, output: `${res.stdout}${res.stderr}` };
}

function bundle(files: string[]): string {
  const out = join(dir, `untrusted-${Math.random().toString(36).slice(2)}.pem`);
  writeFileSync(out, files.map((f) => readFileSync(f, "utf8")).join(""));
  return out;
}

describe("credd and openssl verify agree on every certificate", () => {
  it("has the cases and lists no difference that is not a case", () => {
    assert.ok(cases.length > 20, `${cases.length} cases`);
    for (const name of Object.keys(DIFFERENCES))
      assert.ok(
        cases.some((c) => c.name === name),
        `DIFFERENCES names no case: ${name}`,
      );
  });

  it("each case: the same verdict, or a listed deliberate difference", async () => {
    const problems: string[] = [];
    for (const c of cases) {
      const ours = await credd(c);
      const theirs = opensslVerify(c);
      const expected = c.credd ?? "accept";
      const got = ours.ok ? "accept" : ours.check;
      if (got !== expected && !(expected === ANY_REFUSAL && !ours.ok))
        problems.push(`${c.name}: credd ${got} (${ours.ok ? "" : ours.reason}), expected ${expected}`);
      const difference = DIFFERENCES[c.name];
      if (difference) {
        if (ours.ok || !theirs.ok)
          problems.push(`${c.name}: listed as a difference (${difference}) but credd ${got}, openssl ${theirs.ok ? "accepts" : "refuses"}`);
      } else if (ours.ok !== theirs.ok) {
        problems.push(`${c.name}: credd ${got}, openssl ${theirs.ok ? "accepts" : `refuses: ${theirs.output.trim()}`}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it("shows each accepted certificate's serial as openssl does, a negative one too", async () => {
    for (const name of ["negative serial", "serial 0", "serial of 20 octets", "RSA 2048 leaf, SHA-256"]) {
      const c = cases.find((x) => x.name === name)!;
      const leaf = readCertificateFile(readFileSync(c.leaf), c.leaf).certificates[0]!;
      const shown = /serial=(\S+)/.exec(openssl(["x509", "-in", c.leaf, "-noout", "-serial"]).stdout)![1];
      assert.equal(leaf.serial, shown, name);
    }
    const neg = cases.find((x) => x.name === "negative serial")!;
    assert.equal(readCertificateFile(readFileSync(neg.leaf), neg.leaf).certificates[0]!.serial, "-05");
  });
});

describe("credd import applies the same policy", () => {
  const cred = { name: "corp", dn: DN } as unknown as CredentialConfig;
  const input = (leaf: string, chain: string[] = []) => ({
    certText: [leaf, ...chain].map((f) => readFileSync(f, "utf8")).join(""),
    certFile: leaf,
    keyText: readFileSync(keyOf.get(leaf)!, "utf8"),
    keyFile: keyOf.get(leaf)!,
  });

  it("refuses a SHA-1 leaf and a chain with a 1024-bit intermediate, naming the check", () => {
    const sha1 = cases.find((c) => c.name === "leaf signed with sha1WithRSAEncryption")!;
    assert.throws(
      () => checkImport(cred, input(sha1.leaf), now),
      (e: unknown) => e instanceof RefusedError && e.check === "signature-algorithm",
    );
    const weak = cases.find((c) => c.name === "intermediate with a 1024-bit RSA key")!;
    assert.throws(
      () => checkImport(cred, input(weak.leaf, weak.untrusted), now),
      (e: unknown) => e instanceof RefusedError && e.check === "key-size" && /1024-bit/.test(e.message),
    );
  });

  it("accepts a good leaf and records the CA of its chain that expires first", () => {
    const mid = cases.find((c) => c.name === "leaf outliving an intermediate that expires in 120 days")!;
    const r = checkImport(cred, input(mid.leaf, mid.untrusted), now);
    assert.equal(r.ca?.role, "intermediate");
    assert.equal(r.ca?.subject, "C=FR, O=Test Stellantis, CN=Mid-life CA");
  });
});
