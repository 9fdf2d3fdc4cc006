// Table-driven tests of each certificate policy check: facts → pass, or refused with the check's reason.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  CERTIFICATE_POLICY,
  checkPath,
  criticalExtensions,
  keySize,
  nameConstraints,
  serialNumber,
  signatureAlgorithm,
  type CertFacts,
  type PolicyCheck,
} from "../../src/domain/cert-policy.js";

const SHA256_RSA = "1.2.840.113549.1.1.11";
const base: CertFacts = {
  role: "leaf",
  label: 'certificate "CN=leaf" (serial 0A)',
  selfSigned: false,
  signatureOid: SHA256_RSA,
  key: { type: "rsa", bits: 2048 },
  serialBytes: new Uint8Array([0x0a]),
  criticalExtensions: [],
  nameConstraints: false,
};

type Case = { name: string; facts: Partial<CertFacts>; refused?: RegExp };

function table(check: PolicyCheck, cases: Case[]): void {
  describe(`policy check ${check.name}`, () => {
    for (const c of cases) {
      it(c.name, () => {
        const reason = check.test({ ...base, ...c.facts });
        if (!c.refused) assert.equal(reason, undefined, reason);
        else {
          assert.ok(reason, "refused");
          assert.match(reason, c.refused);
          assert.match(reason, /CN=/, "the reason names the certificate");
        }
      });
    }
  });
}

table(signatureAlgorithm, [
  { name: "sha256WithRSAEncryption", facts: {} },
  { name: "sha384WithRSAEncryption", facts: { signatureOid: "1.2.840.113549.1.1.12" } },
  { name: "sha512WithRSAEncryption", facts: { signatureOid: "1.2.840.113549.1.1.13" } },
  { name: "ecdsa-with-SHA256", facts: { signatureOid: "1.2.840.10045.4.3.2" } },
  { name: "ecdsa-with-SHA384", facts: { signatureOid: "1.2.840.10045.4.3.3" } },
  { name: "ecdsa-with-SHA512", facts: { signatureOid: "1.2.840.10045.4.3.4" } },
  { name: "Ed25519", facts: { signatureOid: "1.3.101.112" } },
  { name: "RSASSA-PSS with SHA-256", facts: { signatureOid: "1.2.840.113549.1.1.10", pssHashOid: "2.16.840.1.101.3.4.2.1" } },
  { name: "RSASSA-PSS with SHA-512", facts: { signatureOid: "1.2.840.113549.1.1.10", pssHashOid: "2.16.840.1.101.3.4.2.3" } },
  {
    name: "RSASSA-PSS with SHA-1 refused",
    facts: { signatureOid: "1.2.840.113549.1.1.10", pssHashOid: "1.3.14.3.2.26" },
    refused: /RSASSA-PSS over SHA-1/,
  },
  {
    name: "sha1WithRSAEncryption refused",
    facts: { signatureOid: "1.2.840.113549.1.1.5" },
    refused: /signed with sha1WithRSAEncryption, which credd does not accept/,
  },
  { name: "md5WithRSAEncryption refused", facts: { signatureOid: "1.2.840.113549.1.1.4" }, refused: /md5WithRSAEncryption/ },
  { name: "ecdsa-with-SHA1 refused", facts: { signatureOid: "1.2.840.10045.4.1" }, refused: /ecdsa-with-SHA1/ },
  { name: "an unknown OID refused, shown as the OID", facts: { signatureOid: "1.2.3.4" }, refused: /signed with 1\.2\.3\.4/ },
  { name: "SHA-1 on an intermediate refused", facts: { role: "intermediate", signatureOid: "1.2.840.113549.1.1.5" }, refused: /sha1WithRSA/ },
  {
    name: "SHA-1 on a pinned CA that is not self-signed refused",
    facts: { role: "anchor", signatureOid: "1.2.840.113549.1.1.5" },
    refused: /sha1WithRSA/,
  },
  {
    name: "SHA-1 self-signature of the anchor: not checked (trusted by fingerprint)",
    facts: { role: "anchor", selfSigned: true, signatureOid: "1.2.840.113549.1.1.5" },
  },
]);

table(keySize, [
  { name: "RSA 2048", facts: {} },
  { name: "RSA 4096", facts: { key: { type: "rsa", bits: 4096 } } },
  { name: "RSA 2047 refused", facts: { key: { type: "rsa", bits: 2047 } }, refused: /2047-bit RSA key; credd requires at least 2048/ },
  { name: "RSA 1024 on an intermediate refused", facts: { role: "intermediate", key: { type: "rsa", bits: 1024 } }, refused: /1024-bit/ },
  { name: "RSA 1024 on the anchor refused too", facts: { role: "anchor", selfSigned: true, key: { type: "rsa", bits: 1024 } }, refused: /1024-bit/ },
  { name: "P-256", facts: { key: { type: "ec", curve: "prime256v1" } } },
  { name: "P-384", facts: { key: { type: "ec", curve: "secp384r1" } } },
  { name: "P-521", facts: { key: { type: "ec", curve: "secp521r1" } } },
  { name: "P-224 refused", facts: { key: { type: "ec", curve: "secp224r1" } }, refused: /curve secp224r1/ },
  { name: "secp256k1 refused", facts: { key: { type: "ec", curve: "secp256k1" } }, refused: /secp256k1/ },
  { name: "Ed25519", facts: { key: { type: "ed25519" } } },
  { name: "DSA refused", facts: { key: { type: "other", name: "dsa" } }, refused: /a dsa key/ },
]);

table(serialNumber, [
  { name: "0A", facts: {} },
  { name: "0080 (positive, with its sign byte)", facts: { serialBytes: new Uint8Array([0x00, 0x80]) } },
  { name: "20 octets", facts: { serialBytes: new Uint8Array(20).fill(0x11) } },
  { name: "21 octets refused", facts: { serialBytes: new Uint8Array(21).fill(0x11) }, refused: /21-octet serial number; RFC 5280 allows at most 20/ },
  { name: "0 refused", facts: { serialBytes: new Uint8Array([0]) }, refused: /serial number 0/ },
  { name: "negative (FB = -5) refused", facts: { serialBytes: new Uint8Array([0xfb]) }, refused: /negative serial number/ },
]);

table(criticalExtensions, [
  { name: "none critical", facts: {} },
  {
    name: "basicConstraints, keyUsage, extendedKeyUsage, subjectAltName, certificatePolicies",
    facts: { criticalExtensions: ["2.5.29.19", "2.5.29.15", "2.5.29.37", "2.5.29.17", "2.5.29.32"] },
  },
  {
    name: "an unknown critical extension refused",
    facts: { criticalExtensions: ["2.5.29.19", "1.2.3.4.5"] },
    refused: /critical extension 1\.2\.3\.4\.5 that credd does not process/,
  },
  { name: "policyConstraints critical refused (not processed)", facts: { criticalExtensions: ["2.5.29.36"] }, refused: /2\.5\.29\.36/ },
]);

table(nameConstraints, [
  { name: "no nameConstraints", facts: { role: "intermediate" } },
  {
    name: "a name-constrained intermediate refused",
    facts: { role: "intermediate", nameConstraints: true },
    refused: /carries nameConstraints, which credd does not evaluate/,
  },
  { name: "a name-constrained anchor refused", facts: { role: "anchor", selfSigned: true, nameConstraints: true }, refused: /nameConstraints/ },
]);

describe("checkPath", () => {
  it("lists the checks in order, each once", () => {
    assert.deepEqual(
      CERTIFICATE_POLICY.map((c) => c.name),
      ["signature-algorithm", "key-size", "serial", "critical-extension", "name-constraints"],
    );
  });
  it("passes a path that meets the policy", () => {
    assert.equal(checkPath([base, { ...base, role: "anchor", selfSigned: true, label: 'CA "CN=ca"' }]), undefined);
  });
  it("reports the first failing certificate (leaf first) with the check's name", () => {
    const weakCa = { ...base, role: "intermediate" as const, label: 'intermediate "CN=weak"', key: { type: "rsa" as const, bits: 1024 } };
    const r = checkPath([base, weakCa, { ...base, role: "anchor", selfSigned: true, signatureOid: "1.2.840.113549.1.1.4" }]);
    assert.equal(r?.check, "key-size");
    assert.match(r!.reason, /CN=weak/);
  });
  it("reports the first failing check of a certificate", () => {
    const r = checkPath([{ ...base, signatureOid: "1.2.840.113549.1.1.5", serialBytes: new Uint8Array([0]) }]);
    assert.equal(r?.check, "signature-algorithm");
  });
});
