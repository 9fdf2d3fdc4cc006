// readCertificateFile against every container real openssl writes, and its refusals of keys, CSRs, PKCS#12 and junk.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readCertificateFile, readCertificateFiles } from "../../src/pki/bundle.js";
import { RefusedError } from "../../src/errors.js";
import type { StellantisDn } from "../../src/config/types.js";
import { dnFor } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, openssl, opensslFingerprint, type KeyAndCert, type TestCa } from "../helpers/openssl.js";

const DN: StellantisDn = dnFor("MZP128745");
const P12_PASS = "p12 pass 7";

let dir: string;
let ca: TestCa;
let leaf: KeyAndCert;
let ecLeaf: KeyAndCert;
let leafFp: string;
let caFp: string;

/** A file in the test folder. */
function path(name: string): string {
  return join(dir, name);
}

function read(name: string) {
  return readCertificateFile(readFileSync(path(name)), name);
}

function fingerprints(name: string): string[] {
  return read(name).certificates.map((c) => c.sha256);
}

before(() => {
  dir = makeTempDir("credd-pki-bundle-");
  ca = makeCa(dir);
  leaf = makeKeyAndCert(dir, DN, { ca });
  ecLeaf = makeKeyAndCert(dir, DN, { ca, keyType: "ec", keyFormat: "pkcs1" });
  leafFp = opensslFingerprint(leaf.certPath);
  caFp = opensslFingerprint(ca.certPath);
  writeFileSync(path("leaf.pem"), leaf.certPem);
  writeFileSync(path("leaf-ca-crlf.pem"), (leaf.certPem + ca.certPem).replace(/\n/g, "\r\n"));
  writeFileSync(path("ca-then-leaf.pem"), ca.certPem + leaf.certPem);
  writeFileSync(path("bom.pem"), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(leaf.certPem + ca.certPem)]));
  openssl(
    ["pkcs12", "-export", "-in", leaf.certPath, "-inkey", leaf.keyPath, "-certfile", ca.certPath, "-passout", "env:P12", "-out", path("bundle.p12")],
    { env: { P12: P12_PASS } },
  );
  openssl(["pkcs12", "-in", path("bundle.p12"), "-nokeys", "-passin", "env:P12", "-out", path("bags.pem")], { env: { P12: P12_PASS } });
  openssl(["x509", "-in", leaf.certPath, "-outform", "DER", "-out", path("leaf.cer")]);
  openssl(["x509", "-in", ca.certPath, "-outform", "DER", "-out", path("ca.crt")]);
  openssl(["crl2pkcs7", "-nocrl", "-certfile", leaf.certPath, "-certfile", ca.certPath, "-out", path("bundle.p7.pem")]);
  openssl(["crl2pkcs7", "-nocrl", "-certfile", leaf.certPath, "-certfile", ca.certPath, "-outform", "DER", "-out", path("bundle.p7b")]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("readCertificateFile: what the CA may send", () => {
  it("reads a PEM leaf", () => {
    const r = read("leaf.pem");
    assert.equal(r.kind, "pem");
    assert.deepEqual(
      r.certificates.map((c) => c.sha256),
      [leafFp],
    );
  });

  it("reads a PEM leaf and CA with CRLF line endings", () => {
    assert.match(readFileSync(path("leaf-ca-crlf.pem"), "latin1"), /\r\n/);
    assert.deepEqual(fingerprints("leaf-ca-crlf.pem"), [leafFp, caFp]);
  });

  it("reads the CA before the leaf, keeping file order", () => {
    assert.deepEqual(fingerprints("ca-then-leaf.pem"), [caFp, leafFp]);
  });

  it("reads PEM with a UTF-8 byte order mark", () => {
    assert.deepEqual(fingerprints("bom.pem"), [leafFp, caFp]);
  });

  it("reads `openssl pkcs12 -nokeys` output with Bag Attributes, subject= and issuer= lines", () => {
    const text = readFileSync(path("bags.pem"), "utf8");
    assert.match(text, /Bag Attributes/);
    assert.match(text, /^subject=/m);
    const r = read("bags.pem");
    assert.equal(r.kind, "pem");
    assert.deepEqual([...r.certificates.map((c) => c.sha256)].sort(), [leafFp, caFp].sort());
  });

  it("reads a DER certificate (.cer)", () => {
    const r = read("leaf.cer");
    assert.equal(r.kind, "der-certificate");
    assert.deepEqual(
      r.certificates.map((c) => c.sha256),
      [leafFp],
    );
    assert.equal(opensslFingerprint(path("leaf.cer"), "DER"), leafFp);
  });

  it("reads PKCS#7 PEM from `openssl crl2pkcs7`", () => {
    assert.match(readFileSync(path("bundle.p7.pem"), "utf8"), /-----BEGIN PKCS7-----/);
    const r = read("bundle.p7.pem");
    assert.equal(r.kind, "pkcs7-pem");
    assert.deepEqual([...r.certificates.map((c) => c.sha256)].sort(), [leafFp, caFp].sort());
  });

  it("reads PKCS#7 DER (.p7b)", () => {
    const r = read("bundle.p7b");
    assert.equal(r.kind, "pkcs7-der");
    assert.deepEqual([...r.certificates.map((c) => c.sha256)].sort(), [leafFp, caFp].sort());
  });

  it("reads a PKCS#7 bundle of 250 certificates (asn1js's default limit of 10,000 nodes refused 200)", () => {
    // ~50 ASN.1 nodes per certificate: the old reader called anything past ~200 "truncated or damaged".
    // One `openssl ca` run signs the same CSR 250 times, each with its own serial (250 `openssl req` runs take half a minute).
    const caDir = path("many-ca");
    mkdirSync(caDir);
    writeFileSync(join(caDir, "index.txt"), "");
    writeFileSync(join(caDir, "serial"), "1000\n");
    writeFileSync(
      join(caDir, "ca.cnf"),
      "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nserial = serial\nnew_certs_dir = .\n" +
        "default_md = sha256\npolicy = p\nunique_subject = no\ndefault_days = 30\n[p]\ncommonName = supplied\n",
    );
    openssl(["req", "-new", "-key", ca.keyPath, "-subj", "/CN=bundle member", "-out", join(caDir, "member.csr")]);
    openssl(
      [
        "ca",
        "-batch",
        "-config",
        "ca.cnf",
        "-cert",
        ca.certPath,
        "-keyfile",
        ca.keyPath,
        "-notext",
        "-infiles",
        ...Array<string>(250).fill("member.csr"),
      ],
      { cwd: caDir },
    );
    const pems = Array.from({ length: 250 }, (_, i) => readFileSync(join(caDir, `${(0x1000 + i).toString(16).toUpperCase()}.pem`), "utf8"));
    writeFileSync(path("many.pem"), pems.join(""));
    openssl(["crl2pkcs7", "-nocrl", "-certfile", path("many.pem"), "-outform", "DER", "-out", path("many.p7b")]);
    openssl(["crl2pkcs7", "-nocrl", "-certfile", path("many.pem"), "-out", path("many.p7.pem")]);
    const listed = openssl(["pkcs7", "-inform", "DER", "-in", path("many.p7b"), "-print_certs", "-noout"]).stdout;
    assert.equal(listed.match(/^subject=/gm)?.length, 250, "openssl reads all 250");
    for (const name of ["many.p7b", "many.p7.pem"]) {
      const r = read(name);
      assert.equal(r.certificates.length, 250, name);
      assert.deepEqual(new Set(r.certificates.map((c) => c.serial)).size, 250);
    }
  });

  it("reads BER PKCS#7 with indefinite lengths (what Java and `openssl cms -stream` write), each certificate's bytes exact", () => {
    writeFileSync(path("msg.txt"), "hello\n");
    openssl([
      "cms",
      "-sign",
      "-in",
      path("msg.txt"),
      "-signer",
      leaf.certPath,
      "-inkey",
      leaf.keyPath,
      "-certfile",
      ca.certPath,
      "-outform",
      "DER",
      "-stream",
      "-nodetach",
      "-out",
      path("streamed.p7"),
    ]);
    assert.match(openssl(["asn1parse", "-inform", "DER", "-in", path("streamed.p7")]).stdout.split("\n")[0]!, /l=inf/);
    const r = read("streamed.p7");
    assert.equal(r.kind, "pkcs7-der");
    assert.deepEqual([...r.certificates.map((c) => c.sha256)].sort(), [leafFp, caFp].sort());
  });

  it("reads an EC leaf", () => {
    writeFileSync(path("ec.pem"), ecLeaf.certPem);
    assert.deepEqual(fingerprints("ec.pem"), [opensslFingerprint(ecLeaf.certPath)]);
  });

  it("keeps each certificate once within a file", () => {
    writeFileSync(path("twice.pem"), leaf.certPem + ca.certPem + leaf.certPem);
    assert.deepEqual(fingerprints("twice.pem"), [leafFp, caFp]);
  });

  it("gathers several files in any order and mix of formats, each certificate once", () => {
    const names = ["ca.crt", "bundle.p7b", "leaf.pem", "bags.pem"];
    const r = readCertificateFiles(names.map((name) => ({ name, bytes: readFileSync(path(name)) })));
    assert.deepEqual(
      r.files.map((f) => f.kind),
      ["der-certificate", "pkcs7-der", "pem", "pem"],
    );
    assert.deepEqual(
      r.certificates.map((c) => c.sha256),
      [caFp, leafFp],
    );
  });
});

/** Every 16-character window of the file (as base64 and hex) is absent from the message. */
function assertNoContent(message: string, bytes: Buffer): void {
  const text = bytes.toString("latin1");
  const bodies = [bytes.toString("base64"), bytes.toString("hex"), ...(text.match(/^[A-Za-z0-9+/=]{16,}$/gm) ?? [])];
  for (const body of bodies) {
    for (let i = 0; i + 16 <= body.length; i += 8) {
      const chunk = body.slice(i, i + 16);
      assert.ok(!message.includes(chunk), `the message quotes the file: ${chunk}`);
    }
  }
}

function refused(name: string, re: RegExp): RefusedError {
  const bytes = readFileSync(path(name));
  let caught: unknown;
  try {
    readCertificateFile(bytes, name);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof RefusedError, `expected a RefusedError for ${name}, got ${String(caught)}`);
  assert.equal(caught.check, "parse");
  assert.ok(caught.message.includes(name), `the message names the file: ${caught.message}`);
  assert.match(caught.message, re);
  assertNoContent(caught.message, bytes);
  return caught;
}

describe("readCertificateFile: refusals", () => {
  it("refuses an empty file and a blank one", () => {
    writeFileSync(path("empty.pem"), "");
    writeFileSync(path("blank.pem"), "\ufeff\r\n  \n");
    refused("empty.pem", /is empty/);
    refused("blank.pem", /is empty/);
  });

  it("refuses garbage bytes", () => {
    const junk = randomBytes(3000);
    junk[0] = 0x01; // not a DER SEQUENCE, so the refusal is "neither PEM nor DER" every run
    writeFileSync(path("junk.bin"), junk);
    refused("junk.bin", /neither PEM .* nor DER/);
  });

  it("refuses random bytes that start like DER", () => {
    const junk = randomBytes(3000);
    junk[0] = 0x30;
    junk[1] = 0x82;
    junk[2] = 0x7f; // declares ~32 KiB, has 3
    writeFileSync(path("junk.der"), junk);
    refused("junk.der", /truncated or damaged/);
  });

  it("refuses an HTML page saying what it is", () => {
    writeFileSync(path("download.cer"), "<!DOCTYPE html>\n<html><body>Please log in</body></html>\n");
    refused("download.cer", /HTML page/);
  });

  it("refuses a truncated PEM (BEGIN without END)", () => {
    writeFileSync(path("cut.pem"), leaf.certPem.slice(0, Math.floor(leaf.certPem.length / 2)));
    refused("cut.pem", /truncated/);
  });

  it("refuses a truncated DER certificate", () => {
    const der = readFileSync(path("leaf.cer"));
    writeFileSync(path("cut.cer"), der.subarray(0, der.length - 20));
    refused("cut.cer", /truncated or damaged/);
  });

  it("refuses a PEM private key in every form, without quoting it", () => {
    const enc = makeKeyAndCert(dir, DN, { ca, passphrase: "pw 1" });
    const rsa1 = makeKeyAndCert(dir, DN, { ca, keyFormat: "pkcs1" });
    const files: Array<[string, string]> = [
      ["key.pem", leaf.keyPath], // PRIVATE KEY
      ["rsa-key.pem", rsa1.keyPath], // RSA PRIVATE KEY
      ["ec-key.pem", ecLeaf.keyPath], // EC PRIVATE KEY
      ["enc-key.pem", enc.keyPath], // ENCRYPTED PRIVATE KEY
    ];
    const labels = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"];
    files.forEach(([name, from], i) => {
      const text = readFileSync(from, "utf8");
      assert.match(text, new RegExp(`-----BEGIN ${labels[i]}-----`));
      writeFileSync(path(name), text);
      refused(name, /holds a private key, not a certificate: keep it safe; credd never needs a key dropped in the inbox/);
    });
  });

  it("refuses a certificate and its key in one PEM file (`openssl pkcs12 -nodes` output)", () => {
    openssl(["pkcs12", "-in", path("bundle.p12"), "-nodes", "-passin", "env:P12", "-out", path("with-key.pem")], { env: { P12: P12_PASS } });
    refused("with-key.pem", /holds a private key/);
  });

  it("refuses DER private keys: PKCS#8, encrypted PKCS#8, PKCS#1 and SEC1", () => {
    openssl(["pkey", "-in", leaf.keyPath, "-outform", "DER", "-out", path("key.der")]);
    openssl(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", leaf.keyPath, "-passout", "pass:pw", "-outform", "DER", "-out", path("enc-key.der")]);
    openssl(["pkey", "-in", leaf.keyPath, "-traditional", "-outform", "DER", "-out", path("rsa-key.der")]);
    openssl(["pkey", "-in", ecLeaf.keyPath, "-traditional", "-outform", "DER", "-out", path("ec-key.der")]);
    for (const name of ["key.der", "enc-key.der", "rsa-key.der", "ec-key.der"])
      refused(name, /holds a private key \(DER\), not a certificate: keep it safe/);
  });

  it("refuses a CSR, PEM and DER", () => {
    writeFileSync(path("request.csr"), readFileSync(leaf.csrPath));
    openssl(["req", "-in", leaf.csrPath, "-outform", "DER", "-out", path("request.der")]);
    refused("request.csr", /certificate signing request \(CSR\)/);
    refused("request.der", /certificate signing request \(CSR\)/);
  });

  it("refuses a PKCS#12 bundle with the command that extracts the certificate", () => {
    const err = refused("bundle.p12", /PKCS#12 bundle/);
    assert.match(err.message, /`openssl pkcs12 -in bundle\.p12 -nokeys -out cert\.pem`/);
  });

  it("refuses an OpenSSL TRUSTED CERTIFICATE with the command that converts it", () => {
    openssl(["x509", "-in", leaf.certPath, "-trustout", "-addtrust", "clientAuth", "-out", path("trusted.pem")]);
    assert.match(readFileSync(path("trusted.pem"), "utf8"), /BEGIN TRUSTED CERTIFICATE/);
    refused("trusted.pem", /TRUSTED CERTIFICATE.*openssl x509 -in/);
  });

  it("refuses a public key", () => {
    openssl(["pkey", "-in", leaf.keyPath, "-pubout", "-out", path("pub.pem")]);
    openssl(["pkey", "-in", leaf.keyPath, "-pubout", "-outform", "DER", "-out", path("pub.der")]);
    refused("pub.pem", /public key/);
    refused("pub.der", /public key/);
  });

  it("refuses a file over 1 MiB before reading it", () => {
    writeFileSync(path("huge.pem"), Buffer.concat([Buffer.from(leaf.certPem), Buffer.alloc(2 * 1024 * 1024, 0x41)]));
    refused("huge.pem", /too large for a certificate/);
  });

  it("refuses PEM whose certificate body is not a certificate", () => {
    openssl(["pkey", "-in", leaf.keyPath, "-outform", "DER", "-out", path("fake-body.der")]);
    const keyBody = readFileSync(path("fake-body.der"))
      .toString("base64")
      .match(/.{1,64}/g)!
      .join("\n");
    writeFileSync(path("fake.pem"), `-----BEGIN CERTIFICATE-----\n${keyBody}\n-----END CERTIFICATE-----\n`);
    refused("fake.pem", /certificate/);
  });
});
