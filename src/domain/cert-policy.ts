// Pure: the certificate policy every certificate of an ingested path must meet, as named checks with reasons.
// Why each rule exists is in docs/certificate-policy.md. The facts come from pki/policy.ts; here
// nothing is decoded, so each check is a function of plain values and has its own table-driven test.

/** Where a certificate sits on the path: the leaf, a CA between, or the pinned anchor at the top. */
export type PathRole = "leaf" | "intermediate" | "anchor";

export type KeyFacts = { type: "rsa"; bits: number } | { type: "ec"; curve: string } | { type: "ed25519" } | { type: "other"; name: string };

export interface CertFacts {
  role: PathRole;
  /** How the certificate is named in reasons: `certificate "CN=..." (serial 0A)`. */
  label: string;
  /** Issuer equals subject and its own key verifies it. */
  selfSigned: boolean;
  /** The outer signatureAlgorithm OID, and for RSASSA-PSS the hash it names (SHA-1 when absent, RFC 4055). */
  signatureOid: string;
  pssHashOid?: string;
  key: KeyFacts;
  /** The serialNumber INTEGER's content octets (two's complement), as DER has them. */
  serialBytes: Uint8Array;
  /** The OIDs of the extensions marked critical. */
  criticalExtensions: string[];
  /** The certificate carries nameConstraints (critical or not). */
  nameConstraints: boolean;
}

export interface PolicyRefusal {
  check: string;
  reason: string;
}

export interface PolicyCheck {
  name: string;
  /** The reason the certificate fails this check, or undefined when it passes. */
  test(cert: CertFacts): string | undefined;
}

const SHA256 = "2.16.840.1.101.3.4.2.1";
const SHA384 = "2.16.840.1.101.3.4.2.2";
const SHA512 = "2.16.840.1.101.3.4.2.3";
export const RSASSA_PSS = "1.2.840.113549.1.1.10";

/** The allowed signature algorithms (RSASSA-PSS is allowed with the hashes of PSS_HASHES). */
export const SIGNATURE_ALGORITHMS: Record<string, string> = {
  "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
  "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
  "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
  [RSASSA_PSS]: "RSASSA-PSS",
  "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
  "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
  "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
  "1.3.101.112": "Ed25519",
};
const PSS_HASHES: Record<string, string> = { [SHA256]: "SHA-256", [SHA384]: "SHA-384", [SHA512]: "SHA-512" };

/** Names for refused algorithms people will meet, so the reason says more than an OID. */
const KNOWN_REFUSED: Record<string, string> = {
  "1.2.840.113549.1.1.2": "md2WithRSAEncryption",
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
  "1.2.840.10045.4.1": "ecdsa-with-SHA1",
  "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
  "1.2.840.10040.4.3": "dsa-with-SHA1",
  "2.16.840.1.101.3.4.3.2": "dsa-with-SHA256",
  "1.3.14.3.2.26": "SHA-1",
};

export const MIN_RSA_BITS = 2048;
/** Node's names for the curves allowed: P-256, P-384, P-521. */
export const ALLOWED_CURVES: Record<string, string> = { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521" };

/** Extensions credd processes (or that carry no constraint credd could break by ignoring them). */
export const KNOWN_CRITICAL_EXTENSIONS: Record<string, string> = {
  "2.5.29.19": "basicConstraints",
  "2.5.29.15": "keyUsage",
  "2.5.29.37": "extendedKeyUsage",
  "2.5.29.17": "subjectAltName",
  "2.5.29.32": "certificatePolicies",
  // nameConstraints is known, and refused by its own check below with its own reason.
  "2.5.29.30": "nameConstraints",
};

export const MAX_SERIAL_OCTETS = 20;

const name = (oid: string): string => SIGNATURE_ALGORITHMS[oid] ?? KNOWN_REFUSED[oid] ?? oid;

export const signatureAlgorithm: PolicyCheck = {
  name: "signature-algorithm",
  test(c) {
    // A self-signed anchor's own signature proves nothing (it is trusted by fingerprint), as in RFC 5280 6.1 and OpenSSL.
    if (c.role === "anchor" && c.selfSigned) return undefined;
    const allowed = "RSA PKCS#1 v1.5 or PSS with SHA-256/384/512, ECDSA with SHA-256/384/512, or Ed25519";
    if (!(c.signatureOid in SIGNATURE_ALGORITHMS)) {
      return `${c.label} is signed with ${name(c.signatureOid)}, which credd does not accept (allowed: ${allowed}); ask the CA to reissue it`;
    }
    if (c.signatureOid === RSASSA_PSS && !(c.pssHashOid && c.pssHashOid in PSS_HASHES)) {
      return `${c.label} is signed with RSASSA-PSS over ${c.pssHashOid ? name(c.pssHashOid) : "SHA-1 (no hash named)"}, which credd does not accept (allowed: ${allowed})`;
    }
    return undefined;
  },
};

export const keySize: PolicyCheck = {
  name: "key-size",
  test(c) {
    const k = c.key;
    if (k.type === "rsa")
      return k.bits >= MIN_RSA_BITS
        ? undefined
        : `${c.label} has a ${k.bits}-bit RSA key; credd requires at least ${MIN_RSA_BITS} bits on every certificate of the path`;
    if (k.type === "ec")
      return k.curve in ALLOWED_CURVES ? undefined : `${c.label} has an EC key on curve ${k.curve}; credd accepts P-256, P-384 and P-521`;
    if (k.type === "ed25519") return undefined;
    return `${c.label} has a ${k.name} key; credd accepts RSA (at least ${MIN_RSA_BITS} bits), EC (P-256, P-384, P-521) and Ed25519`;
  },
};

export const serialNumber: PolicyCheck = {
  name: "serial",
  test(c) {
    const b = c.serialBytes;
    if (b.length > 0 && (b[0]! & 0x80) !== 0) return `${c.label} has a negative serial number; RFC 5280 requires a positive one`;
    if (b.every((x) => x === 0)) return `${c.label} has serial number 0; RFC 5280 requires a positive one`;
    if (b.length > MAX_SERIAL_OCTETS) return `${c.label} has a ${b.length}-octet serial number; RFC 5280 allows at most ${MAX_SERIAL_OCTETS}`;
    return undefined;
  },
};

export const criticalExtensions: PolicyCheck = {
  name: "critical-extension",
  test(c) {
    const unknown = c.criticalExtensions.filter((oid) => !(oid in KNOWN_CRITICAL_EXTENSIONS));
    if (unknown.length === 0) return undefined;
    return (
      `${c.label} has critical extension${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} that credd does not process; ` +
      "a relying party that does not know it must refuse the certificate (RFC 5280 4.2)"
    );
  },
};

export const nameConstraints: PolicyCheck = {
  name: "name-constraints",
  test(c) {
    if (!c.nameConstraints) return undefined;
    return (
      `${c.label} carries nameConstraints, which credd does not evaluate, so it refuses every path through a ` +
      "name-constrained CA rather than accept a name the CA may not issue (docs/certificate-policy.md)"
    );
  },
};

/** In order: the first failing check is the one reported. */
export const CERTIFICATE_POLICY: readonly PolicyCheck[] = [signatureAlgorithm, keySize, serialNumber, criticalExtensions, nameConstraints];

/** The first certificate of the path (leaf first) that fails a check, with the check's name and reason. */
export function checkPath(path: readonly CertFacts[], checks: readonly PolicyCheck[] = CERTIFICATE_POLICY): PolicyRefusal | undefined {
  for (const cert of path) {
    for (const check of checks) {
      const reason = check.test(cert);
      if (reason !== undefined) return { check: check.name, reason };
    }
  }
  return undefined;
}
