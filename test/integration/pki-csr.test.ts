// createCsr and generated keys, checked by real openssl: signature, DN order and string types, key size, algorithm.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCsr, readCsr, verifyCsr } from "../../src/pki/csr.js";
import { compareDn } from "../../src/pki/dn.js";
import { webcrypto } from "../../src/pki/crypto.js";
import { exportPrivateKeyPem, generateKeyPair, keyPairSpkiSha256, loadPrivateKey } from "../../src/pki/keys.js";
import type { KeySpec, StellantisDn } from "../../src/config/types.js";
import { makeTempDir, openssl } from "../helpers/openssl.js";

const DN: StellantisDn = {
  C: "FR",
  ST: "Ile de France",
  L: "Saint-Étienne",
  O: "Société & Co",
  OU: "Programs Partners",
  CN: "MZP128745",
  emailAddress: "it@partner.example",
};

const SHORT: Record<string, string> = {
  countryName: "C",
  stateOrProvinceName: "ST",
  localityName: "L",
  organizationName: "O",
  organizationalUnitName: "OU",
  commonName: "CN",
  emailAddress: "emailAddress",
};

/** Subject attributes as `openssl asn1parse` prints them: [short name, ASN.1 type, value]. */
function subjectFromAsn1parse(text: string): Array<[string, string, string]> {
  const lines = text.split("\n");
  const out: Array<[string, string, string]> = [];
  for (let i = 0; i < lines.length - 1; i++) {
    const oid = /prim: OBJECT\s+:(\w+)/.exec(lines[i]!);
    const short = oid && SHORT[oid[1]!];
    if (!short) continue;
    const value = /prim: (\w+)\s+:(.*)$/.exec(lines[i + 1]!);
    assert.ok(value, `no value after ${oid[1]}`);
    out.push([short, value[1]!, value[2]!.trimEnd()]);
  }
  return out;
}

let dir: string;
before(() => {
  dir = makeTempDir("credd-pki-csr-");
});
after(() => rmSync(dir, { recursive: true, force: true }));

const specs: Array<{ spec: KeySpec; bits: number; sigAlg: string }> = [
  { spec: { type: "rsa", bits: 2048 }, bits: 2048, sigAlg: "sha256WithRSAEncryption" },
  { spec: { type: "ec", curve: "P-256" }, bits: 256, sigAlg: "ecdsa-with-SHA256" },
  { spec: { type: "ec", curve: "P-384" }, bits: 384, sigAlg: "ecdsa-with-SHA256" },
];

for (const { spec, bits, sigAlg } of specs) {
  const label = spec.type === "rsa" ? `RSA ${spec.bits}` : `EC ${spec.curve}`;
  describe(`createCsr with ${label}`, () => {
    let csrPath: string;
    let keyPath: string;
    let csr: { pem: string; spkiSha256: string };
    let keys: CryptoKeyPair;

    before(async () => {
      keys = await generateKeyPair(spec);
      csr = await createCsr(keys, spec, DN);
      const tag = label.replace(/\W/g, "");
      csrPath = join(dir, `${tag}.csr`);
      keyPath = join(dir, `${tag}.key`);
      writeFileSync(csrPath, csr.pem);
      writeFileSync(keyPath, await exportPrivateKeyPem(keys), { mode: 0o600 });
    });

    it("is PEM with LF endings and a trailing newline", () => {
      assert.match(csr.pem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
      assert.ok(csr.pem.endsWith("-----END CERTIFICATE REQUEST-----\n"));
      assert.ok(!csr.pem.includes("\r"));
      assert.ok(csr.pem.split("\n").every((l) => l.length <= 64));
    });

    it("verifies with openssl", () => {
      const res = openssl(["req", "-in", csrPath, "-verify", "-noout"]);
      assert.match(res.stderr + res.stdout, /verify OK/);
    });

    it("has the DN in Stellantis order with exact string types", () => {
      const subject = subjectFromAsn1parse(openssl(["asn1parse", "-in", csrPath]).stdout);
      assert.deepEqual(subject, [
        ["C", "PRINTABLESTRING", "FR"],
        ["ST", "PRINTABLESTRING", "Ile de France"],
        ["L", "UTF8STRING", "Saint-Étienne"],
        ["O", "UTF8STRING", "Société & Co"],
        ["OU", "PRINTABLESTRING", "Programs Partners"],
        ["CN", "PRINTABLESTRING", "MZP128745"],
        ["emailAddress", "IA5STRING", "it@partner.example"],
      ]);
    });

    it(`has a ${bits}-bit key, ${sigAlg} and no extensions`, () => {
      const text = openssl(["req", "-in", csrPath, "-noout", "-text"]).stdout;
      assert.match(text, new RegExp(`Public-Key: \\(${bits} bit\\)`));
      assert.match(text, new RegExp(`Signature Algorithm: ${sigAlg}\\b`));
      if (spec.type === "ec") assert.match(text, new RegExp(`NIST CURVE: ${spec.curve}`));
      // openssl 3.0 prints an empty "Requested Extensions:" heading anyway: look at the ASN.1.
      const asn1 = openssl(["asn1parse", "-in", csrPath]).stdout;
      assert.match(asn1, /l=\s*0 cons: cont \[ 0 \]/);
      assert.doesNotMatch(asn1, /extensionRequest/);
    });

    it("exports a private key openssl accepts, whose public key is the CSR's", () => {
      assert.match(readFileSync(keyPath, "utf8"), /^-----BEGIN PRIVATE KEY-----\n/);
      openssl(["pkey", "-in", keyPath, "-noout", "-check"]);
      const fromKey = openssl(["pkey", "-in", keyPath, "-pubout"]).stdout;
      const fromCsr = openssl(["req", "-in", csrPath, "-noout", "-pubkey"]).stdout;
      assert.equal(fromCsr, fromKey);
    });

    it("gives the same SPKI hash for key, CSR and openssl's SPKI bytes", async () => {
      const derPath = `${keyPath}.spki.der`;
      openssl(["pkey", "-in", keyPath, "-pubout", "-outform", "DER", "-out", derPath]);
      const opensslHash = createHash("sha256").update(readFileSync(derPath)).digest("hex");
      assert.equal(csr.spkiSha256, opensslHash);
      assert.equal(readCsr(csr.pem).spkiSha256, opensslHash);
      assert.equal(loadPrivateKey(readFileSync(keyPath)).spkiSha256, opensslHash);
      assert.equal(await keyPairSpkiSha256(keys), opensslHash);
    });

    it("reads back with the subject we asked for and a valid signature", async () => {
      assert.deepEqual(compareDn(DN, readCsr(csr.pem).subject), []);
      assert.equal(await verifyCsr(csr.pem), true);
    });
  });
}

describe("createCsr with RSA 4096", () => {
  it("makes a 4096-bit key that openssl verifies", async () => {
    const spec: KeySpec = { type: "rsa", bits: 4096 };
    const csr = await createCsr(await generateKeyPair(spec), spec, { ...DN, L: "Paris", O: "Free2Move" });
    const path = join(dir, "rsa4096.csr");
    writeFileSync(path, csr.pem);
    const res = openssl(["req", "-in", path, "-verify", "-noout", "-text"]);
    assert.match(res.stderr + res.stdout, /verify OK/);
    assert.match(res.stdout, /Public-Key: \(4096 bit\)/);
    assert.match(res.stdout, /Signature Algorithm: sha256WithRSAEncryption/);
  });
});

describe("createCsr refusals", () => {
  it("refuses an RSA key made for another hash rather than sign with it", async () => {
    // x509 lets the key's own hash override the requested one; without the guard this CSR would be SHA-384.
    const keys = (await webcrypto.subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-384", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 },
      true,
      ["sign", "verify"],
    )) as CryptoKeyPair;
    await assert.rejects(createCsr(keys, { type: "rsa", bits: 2048 }, DN), /generated for SHA-384, not SHA-256/);
  });
});

describe("readCsr", () => {
  it("refuses what is not a CSR", async () => {
    const keys = await generateKeyPair({ type: "ec", curve: "P-256" });
    const keyPem = await exportPrivateKeyPem(keys);
    assert.throws(() => readCsr(keyPem), /not a CSR \(found a PRIVATE KEY\)/);
    assert.throws(() => readCsr(""), /empty/);
    const csr = await createCsr(keys, { type: "ec", curve: "P-256" }, DN);
    assert.throws(() => readCsr(csr.pem.replace(/-----END[^\n]*\n$/, "")), /truncated/);
  });
});
