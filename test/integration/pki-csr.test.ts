// createCsr and generated keys, checked by real openssl for every key type credd supports:
// signature, subject (RFC 2253 and ASN.1 string types), key size, algorithm, no attributes; and
// the request body's bytes as openssl's asn1parse cuts them: version 0, the pinned subject, the key.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, verify } from "node:crypto";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCsr } from "../../src/pki/csr.js";
import { exportPrivateKeyPem, generateKeyPair, loadPrivateKey, spkiSha256, type KeyPair } from "../../src/pki/keys.js";
import { writeFileAtomic } from "../../src/files/atomic.js";
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

/** The subject's DER as credd has always sent it (same pin as test/unit/pki-dn.test.ts). */
const DN_DER =
  "3081aa310b3009060355040613024652311630140603550408130d496c65206465204672616e63653117301506035504070c0e5361696e742dc3897469656e6e6531173015060355040a0c0e536f6369c3a974c3a9202620436f311a3018060355040b131150726f6772616d7320506172746e65727331123010060355040313094d5a503132383734353121301f06092a864886f70d0109011612697440706172746e65722e6578616d706c65";

/** `openssl req -subject -nameopt RFC2253`: reversed order, non-ASCII bytes escaped. */
const DN_RFC2253 =
  "emailAddress=it@partner.example,CN=MZP128745,OU=Programs Partners,O=Soci\\C3\\A9t\\C3\\A9 & Co,L=Saint-\\C3\\89tienne,ST=Ile de France,C=FR";

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

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s/g, ""), "base64");
}

interface Part {
  offset: number;
  header: number;
  length: number;
}

/** The top-level parts of a DER file (depth 1), as `openssl asn1parse` cuts them. */
function topParts(path: string): Part[] {
  const out = openssl(["asn1parse", "-in", path]).stdout;
  return [...out.matchAll(/^\s*(\d+):d=1\s+hl=(\d+)\s+l=\s*(\d+)/gm)].map((m) => ({
    offset: Number(m[1]),
    header: Number(m[2]),
    length: Number(m[3]),
  }));
}

let dir: string;
before(() => {
  dir = makeTempDir("credd-pki-csr-");
});
after(() => rmSync(dir, { recursive: true, force: true }));

const specs: Array<{ spec: KeySpec; bits: number; sigAlg: string; sigAlgDer: string }> = [
  { spec: { type: "rsa", bits: 2048 }, bits: 2048, sigAlg: "sha256WithRSAEncryption", sigAlgDer: "300d06092a864886f70d01010b0500" },
  { spec: { type: "rsa", bits: 3072 }, bits: 3072, sigAlg: "sha256WithRSAEncryption", sigAlgDer: "300d06092a864886f70d01010b0500" },
  { spec: { type: "rsa", bits: 4096 }, bits: 4096, sigAlg: "sha256WithRSAEncryption", sigAlgDer: "300d06092a864886f70d01010b0500" },
  { spec: { type: "ec", curve: "P-256" }, bits: 256, sigAlg: "ecdsa-with-SHA256", sigAlgDer: "300a06082a8648ce3d040302" },
  // P-384 signs with SHA-256 too (src/pki/csr.ts says why), as before.
  { spec: { type: "ec", curve: "P-384" }, bits: 384, sigAlg: "ecdsa-with-SHA256", sigAlgDer: "300a06082a8648ce3d040302" },
];

for (const { spec, bits, sigAlg, sigAlgDer } of specs) {
  const label = spec.type === "rsa" ? `RSA ${spec.bits}` : `EC ${spec.curve}`;
  describe(`createCsr with ${label}`, () => {
    let csrPath: string;
    let keyPath: string;
    let csr: { pem: string; spkiSha256: string };
    let keys: KeyPair;

    before(async () => {
      keys = await generateKeyPair(spec);
      csr = await createCsr(keys, spec, DN);
      const tag = label.replace(/\W/g, "");
      csrPath = join(dir, `${tag}.csr`);
      keyPath = join(dir, `${tag}.key`);
      writeFileSync(csrPath, csr.pem);
      // As startRenewal writes it.
      writeFileAtomic(keyPath, exportPrivateKeyPem(keys), 0o600, { exclusive: true });
    });

    it("is PEM with LF endings and a trailing newline", () => {
      assert.match(csr.pem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
      assert.ok(csr.pem.endsWith("-----END CERTIFICATE REQUEST-----\n"));
      assert.ok(!csr.pem.includes("\r"));
      assert.ok(csr.pem.split("\n").every((l) => l.length <= 64));
    });

    it("verifies with openssl req -verify", () => {
      const res = openssl(["req", "-in", csrPath, "-verify", "-noout"]);
      assert.match(res.stderr + res.stdout, /verify OK/);
    });

    it("has the subject openssl prints in RFC 2253", () => {
      assert.equal(openssl(["req", "-in", csrPath, "-noout", "-subject", "-nameopt", "RFC2253"]).stdout.trim(), `subject=${DN_RFC2253}`);
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

    it("carries version 0, the pinned subject bytes, the key and empty attributes, signed over that body with SHA-256", () => {
      const der = pemToDer(csr.pem);
      const [info, alg, sig, ...more] = topParts(csrPath);
      assert.ok(info && alg && sig && more.length === 0, "CertificationRequest has three parts");
      assert.equal(sig.offset + sig.header + sig.length, der.length, "nothing after the request");
      const body = (p: Part) => der.subarray(p.offset + p.header, p.offset + p.header + p.length);
      const spki = keys.publicKey.export({ type: "spki", format: "der" }).toString("hex");
      assert.equal(body(info).toString("hex"), `020100${DN_DER}${spki}a000`);
      assert.equal(der.subarray(alg.offset, alg.offset + alg.header + alg.length).toString("hex"), sigAlgDer);
      const signature = body(sig);
      assert.equal(signature[0], 0, "no unused bits");
      assert.equal(verify("sha256", der.subarray(info.offset, info.offset + info.header + info.length), keys.publicKey, signature.subarray(1)), true);
    });

    it("writes a 0600 PKCS#8 key that openssl checks and credd loads back as the CSR's key", () => {
      assert.equal(statSync(keyPath).mode & 0o777, 0o600);
      assert.match(readFileSync(keyPath, "utf8"), /^-----BEGIN PRIVATE KEY-----\n/);
      openssl(["pkey", "-in", keyPath, "-noout", "-check"]);
      const fromKey = openssl(["pkey", "-in", keyPath, "-pubout"]).stdout;
      const fromCsr = openssl(["req", "-in", csrPath, "-noout", "-pubkey"]).stdout;
      assert.equal(fromCsr, fromKey);
      const loaded = loadPrivateKey(readFileSync(keyPath));
      assert.equal(loaded.type, spec.type);
      if (spec.type === "rsa") assert.equal(loaded.bits, spec.bits);
      else assert.equal(loaded.curve, spec.curve);
      assert.equal(loaded.spkiSha256, csr.spkiSha256);
    });

    it("gives the same SPKI hash for key, CSR and openssl's SPKI bytes", () => {
      const derPath = `${keyPath}.spki.der`;
      openssl(["pkey", "-in", keyPath, "-pubout", "-outform", "DER", "-out", derPath]);
      const opensslHash = createHash("sha256").update(readFileSync(derPath)).digest("hex");
      assert.equal(csr.spkiSha256, opensslHash);
      const fromCsr = pemToDer(openssl(["req", "-in", csrPath, "-noout", "-pubkey"]).stdout);
      assert.equal(createHash("sha256").update(fromCsr).digest("hex"), opensslHash);
      assert.equal(loadPrivateKey(readFileSync(keyPath)).spkiSha256, opensslHash);
      assert.equal(spkiSha256(keys.publicKey), opensslHash);
      assert.equal(spkiSha256(keys.privateKey), opensslHash);
    });
  });
}

describe("createCsr refusals", () => {
  const rsa2048 = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const p256 = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
  const ed = generateKeyPairSync("ed25519");
  const cases: Array<[string, KeyPair, KeySpec, RegExp]> = [
    ["an RSA 2048 key for RSA 4096", rsa2048, { type: "rsa", bits: 4096 }, /the key is RSA 2048, not the RSA 4096 private key/],
    ["an EC key for RSA", p256, { type: "rsa", bits: 2048 }, /the key is EC prime256v1, not the RSA 2048 private key/],
    ["a P-384 key for P-256", p384, { type: "ec", curve: "P-256" }, /the key is EC secp384r1, not the EC P-256 private key/],
    ["an RSA key for EC", rsa2048, { type: "ec", curve: "P-384" }, /the key is RSA 2048, not the EC P-384 private key/],
    ["an Ed25519 key", ed, { type: "ec", curve: "P-256" }, /the key is ed25519, not the EC P-256 private key/],
    [
      "the public half as the private key",
      { privateKey: p256.publicKey, publicKey: p256.publicKey },
      { type: "ec", curve: "P-256" },
      /the key is a public key/,
    ],
  ];
  for (const [name, keys, spec, re] of cases) {
    it(`refuses ${name} rather than send the CA a surprise`, async () => {
      await assert.rejects(
        createCsr(keys, spec, DN),
        (e: unknown) => e instanceof Error && (e as { check?: string }).check === "key" && re.test(e.message),
      );
    });
  }

  it("takes the public key from the private one, so a mismatched pair still gives the private key's CSR", async () => {
    const other = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const csr = await createCsr({ privateKey: p256.privateKey, publicKey: other.publicKey }, { type: "ec", curve: "P-256" }, DN);
    assert.equal(csr.spkiSha256, spkiSha256(p256.publicKey));
    const path = join(dir, "mismatched-pair.csr");
    writeFileSync(path, csr.pem);
    const res = openssl(["req", "-in", path, "-verify", "-noout"]);
    assert.match(res.stderr + res.stdout, /verify OK/);
  });
});
