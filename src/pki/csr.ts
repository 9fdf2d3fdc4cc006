// The CSR Stellantis signs: the exact DN, SHA-256, no attributes or extensions; and reading one back.
// PKCS#10 (RFC 2986) DER written and read here with Node's crypto doing the signing and verifying:
// the key + CSR path (`credd renew`) then loads no ASN.1 library at all.
import { createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { DerError, decodeOid, derBitString, derNull, derOid, derSequence, derSmallInteger, readChildren, readTlv, type Tlv } from "./der.js";
import { buildName, readName, type DnAttribute } from "./dn.js";
import { CURVE_OPENSSL_NAMES, spkiSha256, type KeyPair } from "./keys.js";
import { describeLabels, encodePem, findPemBlocks, looksLikePem } from "./pem.js";
import { RefusedError } from "../errors.js";
import type { KeySpec, StellantisDn } from "../config/types.js";

/** Signature algorithms by OID: the hash Node signs with, and the key type it needs. */
const SIGNATURE_ALGORITHMS: Record<string, { hash: string; key: "rsa" | "ec" }> = {
  "1.2.840.113549.1.1.11": { hash: "sha256", key: "rsa" }, // sha256WithRSAEncryption
  "1.2.840.113549.1.1.12": { hash: "sha384", key: "rsa" },
  "1.2.840.113549.1.1.13": { hash: "sha512", key: "rsa" },
  "1.2.840.10045.4.3.2": { hash: "sha256", key: "ec" }, // ecdsa-with-SHA256
  "1.2.840.10045.4.3.3": { hash: "sha384", key: "ec" },
  "1.2.840.10045.4.3.4": { hash: "sha512", key: "ec" },
};
const SHA256_WITH_RSA = "1.2.840.113549.1.1.11";
const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";

/**
 * SHA-256 for every key kind. For P-384, RFC 5480 only recommends pairing with SHA-384; a CSR's
 * signature just proves possession of the key to the CA, ecdsa-with-SHA256 is accepted everywhere,
 * and one hash for all credentials is one thing fewer to get wrong with a human CA.
 * AlgorithmIdentifier parameters: NULL for RSA (RFC 4055), absent for ECDSA (RFC 5758).
 */
function signatureAlgorithm(spec: KeySpec): Buffer {
  return spec.type === "rsa" ? derSequence(derOid(SHA256_WITH_RSA), derNull()) : derSequence(derOid(ECDSA_WITH_SHA256));
}

export interface CreatedCsr {
  pem: string;
  spkiSha256: string;
}

/**
 * A signed PKCS#10 request for `dn`. Stellantis asks for no extensions, so the attributes are an
 * empty `[0]`: the same bytes as openssl writes without `-addext` and as credd wrote before.
 */
export async function createCsr(keys: KeyPair, spec: KeySpec, dn: StellantisDn): Promise<CreatedCsr> {
  checkKeyMatchesSpec(keys.privateKey, spec);
  // The public key from the private one, so a mismatched pair cannot yield a CSR that fails to verify.
  const spki = createPublicKey(keys.privateKey).export({ type: "spki", format: "der" });
  const info = derSequence(derSmallInteger(0), buildName(dn), spki, Buffer.from([0xa0, 0x00]));
  // RSA: PKCS#1 v1.5 padding (Node's default for RSA keys); ECDSA: the DER Ecdsa-Sig-Value X.509 wants.
  const signature = sign("sha256", info, keys.privateKey);
  const der = derSequence(info, signatureAlgorithm(spec), derBitString(signature));
  return { pem: encodePem("CERTIFICATE REQUEST", der), spkiSha256: spkiSha256(spki) };
}

/** The key must be what the config asks for: a CSR for another size or curve would surprise the CA and the checks after it. */
function checkKeyMatchesSpec(key: KeyObject, spec: KeySpec): void {
  const details = key.asymmetricKeyDetails ?? {};
  const have = key.asymmetricKeyType === "rsa"
    ? `RSA ${details.modulusLength ?? "?"}`
    : key.asymmetricKeyType === "ec"
      ? `EC ${details.namedCurve ?? "?"}`
      : (key.asymmetricKeyType ?? "unknown");
  const ok = spec.type === "rsa"
    ? key.asymmetricKeyType === "rsa" && details.modulusLength === spec.bits
    : key.asymmetricKeyType === "ec" && details.namedCurve === CURVE_OPENSSL_NAMES[spec.curve];
  if (key.type !== "private" || !ok) {
    const want = spec.type === "rsa" ? `RSA ${spec.bits}` : `EC ${spec.curve}`;
    throw new RefusedError("key", `the key is ${key.type === "private" ? have : `a ${key.type} key`}, not the ${want} private key the credential asks for: generate it with generateKeyPair`);
  }
}

export interface CsrInfo {
  subject: DnAttribute[];
  spkiSha256: string;
}

/** Subject and key hash of a CSR (PEM with "CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST"). */
export function readCsr(pem: string): CsrInfo {
  const csr = decodeCsr(pem);
  return { subject: readName(csr.subject), spkiSha256: spkiSha256(csr.spki) };
}

/** True when the CSR's signature verifies with its own public key (proof of possession). */
export async function verifyCsr(pem: string): Promise<boolean> {
  const csr = decodeCsr(pem);
  const alg = SIGNATURE_ALGORITHMS[csr.signatureOid];
  if (!alg) return false;
  try {
    const key = createPublicKey({ key: csr.spki, format: "der", type: "spki" });
    if (key.asymmetricKeyType !== alg.key) return false;
    return verify(alg.hash, csr.info, key, csr.signature);
  } catch {
    return false;
  }
}

interface DecodedCsr {
  /** The DER of certificationRequestInfo, as signed. */
  info: Buffer;
  subject: Buffer;
  spki: Buffer;
  signatureOid: string;
  signature: Buffer;
}

function decodeCsr(pem: string): DecodedCsr {
  if (pem.trim() === "") throw new RefusedError("parse", "the CSR is empty");
  if (!looksLikePem(pem)) throw new RefusedError("parse", 'not a CSR: no "-----BEGIN CERTIFICATE REQUEST-----" line');
  const blocks = findPemBlocks(pem);
  const block = blocks.find((b) => b.label === "CERTIFICATE REQUEST" || b.label === "NEW CERTIFICATE REQUEST");
  if (!block) throw new RefusedError("parse", `not a CSR (found ${describeLabels(blocks)})`);
  if (!block.complete) throw new RefusedError("parse", "the CSR is truncated: its BEGIN line has no END line");
  if (!block.validBase64) throw new RefusedError("parse", "the CSR is damaged: its PEM body is not valid base64");
  try {
    return decodeCsrDer(Buffer.from(block.base64, "base64"));
  } catch (err) {
    const why = err instanceof DerError ? `: ${err.message}` : "";
    throw new RefusedError("parse", `the CSR is damaged: its DER does not decode as PKCS#10${why}`, { cause: err });
  }
}

/** CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING } */
function decodeCsrDer(der: Buffer): DecodedCsr {
  const outer = readTlv(der, 0);
  if (outer.end !== der.length) throw new DerError("trailing bytes after the CSR");
  const [info, algorithm, signature, ...extra] = expect(der, outer, 0x30, "CertificationRequest");
  if (!info || !algorithm || !signature || extra.length > 0) throw new DerError("CertificationRequest needs exactly three parts");
  // certificationRequestInfo ::= SEQUENCE { version INTEGER, subject Name, subjectPKInfo, attributes [0] }
  const [version, subject, spki, attributes] = expect(der, info, 0x30, "certificationRequestInfo");
  if (!version || version.tag !== 0x02 || !subject || subject.tag !== 0x30 || !spki || spki.tag !== 0x30 || !attributes || attributes.tag !== 0xa0) {
    throw new DerError("certificationRequestInfo needs a version, a subject, a public key and attributes");
  }
  const [oid] = expect(der, algorithm, 0x30, "signatureAlgorithm");
  if (!oid || oid.tag !== 0x06) throw new DerError("signatureAlgorithm needs an OID");
  if (signature.tag !== 0x03 || signature.end === signature.start || der[signature.start] !== 0) throw new DerError("the signature must be a BIT STRING of whole bytes");
  return {
    info: der.subarray(info.offset, info.end),
    subject: der.subarray(subject.offset, subject.end),
    spki: der.subarray(spki.offset, spki.end),
    signatureOid: decodeOid(der.subarray(oid.start, oid.end)),
    signature: der.subarray(signature.start + 1, signature.end),
  };
}

function expect(der: Buffer, tlv: Tlv, tag: number, what: string): Tlv[] {
  if (tlv.tag !== tag) throw new DerError(`${what} must be a SEQUENCE`);
  return readChildren(der, tlv);
}
