// loadPrivateKey and parseCertificate against keys and certificates made by real openssl, and their refusals.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { keyMatchesCertificate, parseCertificate, splitPemCertificates } from "../../src/pki/certs.js";
import { compareDn } from "../../src/pki/dn.js";
import { loadPrivateKey } from "../../src/pki/keys.js";
import { RefusedError } from "../../src/errors.js";
import type { StellantisDn } from "../../src/config/types.js";
import { dnFor } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, openssl, type KeyAndCert, type TestCa } from "../helpers/openssl.js";

const DN: StellantisDn = dnFor("MZP128745");
const PASS = "correct horse 42";

let dir: string;
let ca: TestCa;
let rsa8: KeyAndCert; // PKCS#8, signed by the CA
let rsa1: KeyAndCert; // PKCS#1, self-signed
let ec1: KeyAndCert; // SEC1
let encPkcs8: KeyAndCert;
let encLegacy: KeyAndCert;

before(() => {
  dir = makeTempDir("credd-pki-keys-");
  ca = makeCa(dir);
  rsa8 = makeKeyAndCert(dir, DN, { ca, serial: "80A1B2C3D4E5F60708" });
  rsa1 = makeKeyAndCert(dir, DN, { keyFormat: "pkcs1" });
  ec1 = makeKeyAndCert(dir, DN, { ca, keyType: "ec", keyFormat: "pkcs1" });
  encPkcs8 = makeKeyAndCert(dir, DN, { ca, passphrase: PASS });
  encLegacy = makeKeyAndCert(dir, DN, { ca, keyFormat: "pkcs1", passphrase: PASS });
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** SHA-256 of openssl's own SPKI DER for a key file: the reference our hashes must equal. */
function opensslSpkiSha256(keyPath: string, passphrase?: string): string {
  const out = `${keyPath}.${Math.random().toString(36).slice(2)}.spki`;
  const passin = passphrase ? ["-passin", "env:P"] : [];
  openssl(["pkey", "-in", keyPath, ...passin, "-pubout", "-outform", "DER", "-out", out], passphrase ? { env: { P: passphrase } } : {});
  return createHash("sha256").update(readFileSync(out)).digest("hex");
}

/** Asserts a RefusedError with the check and a message matching `re`, leaking neither key body nor passphrase. */
function refused(fn: () => unknown, check: string, re: RegExp, secrets: string[] = []): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RefusedError, `expected RefusedError, got ${String(e)}`);
    assert.equal(e.check, check);
    assert.match(e.message, re);
    for (const s of secrets) {
      assert.ok(!e.message.includes(s), "the message leaks a secret");
      assert.ok(!(e.stack ?? "").includes(s), "the stack leaks a secret");
    }
    return true;
  });
}

/** Lines of a PEM body: any of them in an error message would be key material. */
function bodyLines(pemPath: string): string[] {
  return readFileSync(pemPath, "utf8")
    .split("\n")
    .filter((l) => /^[A-Za-z0-9+/=]{16,}$/.test(l));
}

describe("loadPrivateKey", () => {
  it("reads PKCS#8 RSA", () => {
    assert.match(readFileSync(rsa8.keyPath, "utf8"), /^-----BEGIN PRIVATE KEY-----/);
    const k = loadPrivateKey(readFileSync(rsa8.keyPath));
    assert.equal(k.type, "rsa");
    assert.equal(k.bits, 2048);
    assert.equal(k.spkiSha256, opensslSpkiSha256(rsa8.keyPath));
    assert.match(k.pkcs8Pem, /^-----BEGIN PRIVATE KEY-----\n/);
  });

  it("reads PKCS#1 RSA and re-encodes it as PKCS#8 for the same key", () => {
    const pem = readFileSync(rsa1.keyPath, "utf8");
    assert.match(pem, /^-----BEGIN RSA PRIVATE KEY-----/);
    const k = loadPrivateKey(pem);
    assert.equal(k.type, "rsa");
    assert.equal(k.spkiSha256, opensslSpkiSha256(rsa1.keyPath));
    assert.equal(loadPrivateKey(k.pkcs8Pem).spkiSha256, k.spkiSha256);
    assert.match(k.pkcs8Pem, /^-----BEGIN PRIVATE KEY-----\n/);
  });

  it("reads SEC1 EC", () => {
    assert.match(readFileSync(ec1.keyPath, "utf8"), /^-----BEGIN EC PRIVATE KEY-----/);
    const k = loadPrivateKey(readFileSync(ec1.keyPath));
    assert.equal(k.type, "ec");
    assert.equal(k.curve, "P-256");
    assert.equal(k.bits, undefined);
    assert.equal(k.spkiSha256, opensslSpkiSha256(ec1.keyPath));
  });

  it("reads a DER PKCS#8 key", () => {
    const der = join(dir, "key.der");
    openssl(["pkey", "-in", rsa8.keyPath, "-outform", "DER", "-out", der]);
    assert.equal(loadPrivateKey(readFileSync(der)).spkiSha256, opensslSpkiSha256(rsa8.keyPath));
  });

  for (const [name, get, marker] of [
    ["encrypted PKCS#8", () => encPkcs8, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/],
    ["legacy encrypted PEM", () => encLegacy, /Proc-Type: 4,ENCRYPTED/],
  ] as const) {
    describe(name, () => {
      it("opens with the right passphrase", () => {
        const { keyPath } = get();
        assert.match(readFileSync(keyPath, "utf8"), marker);
        const k = loadPrivateKey(readFileSync(keyPath, "utf8"), PASS);
        assert.equal(k.spkiSha256, opensslSpkiSha256(keyPath, PASS));
        assert.doesNotMatch(k.pkcs8Pem, /ENCRYPTED/);
      });
      it("says the passphrase is wrong, without quoting key or passphrase", () => {
        const { keyPath } = get();
        refused(() => loadPrivateKey(readFileSync(keyPath), "not it"), "key", /wrong passphrase/, [...bodyLines(keyPath), "not it"]);
      });
      it("asks for a passphrase when none is given", () => {
        const { keyPath } = get();
        refused(
          () => loadPrivateKey(readFileSync(keyPath)),
          "key",
          /the key is encrypted: give its passphrase with --passphrase-file FILE/,
          bodyLines(keyPath),
        );
      });
    });
  }

  it("refuses a certificate given as a key", () => {
    refused(() => loadPrivateKey(rsa8.certPem), "key", /not a private key \(found a CERTIFICATE\)/);
  });

  it("refuses empty, garbage and truncated input without quoting it", () => {
    refused(() => loadPrivateKey(""), "key", /empty/);
    refused(() => loadPrivateKey(Buffer.alloc(0)), "key", /empty/);
    refused(() => loadPrivateKey("just some text"), "key", /not a private key/);
    const lines = readFileSync(rsa8.keyPath, "utf8").split("\n");
    const truncated = lines.slice(0, 10).join("\n");
    refused(() => loadPrivateKey(truncated), "key", /truncated/, bodyLines(rsa8.keyPath));
    const holed = [...lines.slice(0, 5), ...lines.slice(9)].join("\n");
    refused(() => loadPrivateKey(holed), "key", /could not be read|damaged/, bodyLines(rsa8.keyPath));
  });
});

/** "Jan  1 00:00:00 2025 GMT" from `openssl x509 -dates`. */
function opensslDate(text: string, field: "notBefore" | "notAfter"): Date {
  const m = new RegExp(`${field}=(\\w{3}) +(\\d+) (\\d\\d):(\\d\\d):(\\d\\d) (\\d{4}) GMT`).exec(text);
  assert.ok(m, `no ${field} in ${text}`);
  const month = "JanFebMarAprMayJunJulAugSepOctNovDec".indexOf(m[1]!) / 3;
  return new Date(Date.UTC(Number(m[6]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])));
}

describe("parseCertificate", () => {
  it("agrees with openssl on serial, dates and fingerprint", () => {
    const info = parseCertificate(readFileSync(rsa8.certPath, "utf8"));
    const serial = /serial=([0-9A-F]+)/.exec(openssl(["x509", "-in", rsa8.certPath, "-noout", "-serial"]).stdout)?.[1];
    // The serial's high bit is set, so DER carries a 00 sign byte that openssl does not print.
    assert.equal(serial, "80A1B2C3D4E5F60708");
    assert.equal(info.serial, serial);
    const dates = openssl(["x509", "-in", rsa8.certPath, "-noout", "-dates"]).stdout;
    assert.equal(info.notBefore.getTime(), opensslDate(dates, "notBefore").getTime());
    assert.equal(info.notAfter.getTime(), opensslDate(dates, "notAfter").getTime());
    const fp = /=([0-9A-F:]+)/.exec(openssl(["x509", "-in", rsa8.certPath, "-noout", "-fingerprint", "-sha256"]).stdout)?.[1];
    assert.equal(info.sha256, fp);
  });

  it("reads the subject openssl wrote, and the issuer is the CA", () => {
    const info = parseCertificate(rsa8.certPem);
    assert.deepEqual(compareDn(DN, info.subject), []);
    assert.equal(
      info.subjectText,
      "C=FR, ST=Ile de France, L=Paris, O=Free2Move, OU=Programs Partners, CN=MZP128745, emailAddress=it@partner.example",
    );
    assert.deepEqual(info.issuer, parseCertificate(ca.certPem).subject);
    assert.equal(info.issuerText, "C=FR, O=Test Stellantis, CN=Test Stellantis CA");
    assert.equal(info.isCa, false);
    assert.equal(info.selfSigned, false);
  });

  it("reads explicit validity dates set by the CA", () => {
    const notBefore = new Date("2025-01-01T00:00:00Z");
    const notAfter = new Date("2025-03-01T12:30:00Z");
    const made = makeKeyAndCert(dir, DN, { ca, keyType: "ec", notBefore, notAfter });
    const info = parseCertificate(made.certPem);
    assert.equal(info.notBefore.toISOString(), notBefore.toISOString());
    assert.equal(info.notAfter.toISOString(), notAfter.toISOString());
  });

  it("tells CA and self-signed certificates apart", () => {
    const caInfo = parseCertificate(ca.certPem);
    assert.equal(caInfo.isCa, true);
    assert.equal(caInfo.selfSigned, true);
    const self = parseCertificate(rsa1.certPem);
    assert.equal(self.isCa, false);
    assert.equal(self.selfSigned, true);
  });

  it("reads DER like PEM", () => {
    const der = join(dir, "cert.der");
    openssl(["x509", "-in", rsa8.certPath, "-outform", "DER", "-out", der]);
    const fromDer = parseCertificate(readFileSync(der));
    const fromPem = parseCertificate(rsa8.certPem);
    assert.equal(fromDer.sha256, fromPem.sha256);
    assert.equal(fromDer.pem, fromPem.pem);
  });

  it("matches the certificate to its own key only", () => {
    const info = parseCertificate(rsa8.certPem);
    assert.equal(keyMatchesCertificate(loadPrivateKey(readFileSync(rsa8.keyPath)).spkiSha256, info), true);
    assert.equal(keyMatchesCertificate(loadPrivateKey(readFileSync(rsa1.keyPath)).spkiSha256, info), false);
    assert.equal(keyMatchesCertificate(loadPrivateKey(readFileSync(encPkcs8.keyPath), PASS).spkiSha256, parseCertificate(encPkcs8.certPem)), true);
    const ec = parseCertificate(ec1.certPem);
    assert.equal(keyMatchesCertificate(loadPrivateKey(readFileSync(ec1.keyPath)).spkiSha256, ec), true);
    assert.equal(keyMatchesCertificate(ec.spkiSha256.toUpperCase(), ec), true);
  });

  it("refuses empty input, garbage, truncated PEM or DER, keys, CSRs and bundles", () => {
    refused(() => parseCertificate(""), "parse", /empty/);
    refused(() => parseCertificate(Buffer.alloc(0)), "parse", /empty/);
    refused(() => parseCertificate("hello, I am not a certificate"), "parse", /not a certificate/);
    refused(() => parseCertificate(Buffer.from([0x30, 0x82, 0x05, 0x00, 0x01, 0x02])), "parse", /truncated or damaged/);
    const lines = rsa8.certPem.split("\n");
    refused(() => parseCertificate(lines.slice(0, 8).join("\n")), "parse", /truncated PEM/);
    refused(() => parseCertificate([...lines.slice(0, 4), ...lines.slice(10)].join("\n")), "parse", /truncated or damaged/);
    const der = readFileSync(join(dir, "cert.der"));
    refused(() => parseCertificate(der.subarray(0, der.length - 20)), "parse", /truncated or damaged/);
    // Both decoders stop at the certificate's end: a second DER certificate (or junk) after it is refused, not dropped.
    refused(() => parseCertificate(Buffer.concat([der, der])), "parse", new RegExp(`followed by ${der.length} more bytes`));
    refused(() => parseCertificate(Buffer.concat([der, Buffer.from("\n")])), "parse", /followed by 1 more bytes/);
    refused(() => parseCertificate(readFileSync(rsa8.keyPath)), "parse", /not a certificate \(found a PRIVATE KEY\)/, bodyLines(rsa8.keyPath));
    refused(() => parseCertificate(readFileSync(rsa8.csrPath, "utf8")), "parse", /not a certificate \(found a CERTIFICATE REQUEST\)/);
    refused(() => parseCertificate(rsa8.certPem + ca.certPem), "parse", /found 2 certificates/);
  });
});

describe("splitPemCertificates", () => {
  let bagText: string;
  before(() => {
    // What a person gets from a PKCS#12 bundle: "Bag Attributes" and "subject=" lines between blocks.
    const p12 = join(dir, "bundle.p12");
    const env = { P: PASS };
    openssl(
      [
        "pkcs12",
        "-export",
        "-in",
        rsa8.certPath,
        "-inkey",
        rsa8.keyPath,
        "-certfile",
        ca.certPath,
        "-name",
        "fleet-prod",
        "-passout",
        "env:P",
        "-out",
        p12,
      ],
      { env },
    );
    bagText = openssl(["pkcs12", "-in", p12, "-nokeys", "-passin", "env:P"], { env }).stdout;
  });

  const expected = (): string[] => [parseCertificate(rsa8.certPem).sha256, parseCertificate(ca.certPem).sha256];
  const fingerprints = (pems: string[]): string[] => pems.map((p) => parseCertificate(p).sha256).sort();

  it("skips Bag Attributes and subject= lines", () => {
    assert.match(bagText, /Bag Attributes/);
    assert.match(bagText, /friendlyName: fleet-prod/);
    const pems = splitPemCertificates(bagText);
    assert.equal(pems.length, 2);
    assert.deepEqual(fingerprints(pems), expected().sort());
    for (const p of pems) assert.match(p, /^-----BEGIN CERTIFICATE-----\n[\s\S]*-----END CERTIFICATE-----\n$/);
  });

  it("handles CRLF and a UTF-8 BOM", () => {
    const windows = `\uFEFF${bagText.replace(/\n/g, "\r\n")}`;
    const pems = splitPemCertificates(windows);
    assert.deepEqual(fingerprints(pems), expected().sort());
    assert.ok(pems.every((p) => !p.includes("\r")));
    assert.equal(parseCertificate(Buffer.from(`\uFEFF${rsa8.certPem.replace(/\n/g, "\r\n")}`)).sha256, expected()[0]);
  });

  it("keeps order, skips keys, and refuses a truncated block", () => {
    const text = `${readFileSync(rsa8.keyPath, "utf8")}${ca.certPem}${rsa8.certPem}`;
    const pems = splitPemCertificates(text);
    assert.deepEqual(
      pems.map((p) => parseCertificate(p).sha256),
      expected().reverse(),
    );
    assert.deepEqual(splitPemCertificates(""), []);
    refused(() => splitPemCertificates(`${ca.certPem}${rsa8.certPem.split("\n").slice(0, 6).join("\n")}`), "parse", /truncated PEM: certificate 2/);
  });
});
