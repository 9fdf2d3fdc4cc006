// The certificate policy's facts read from each certificate of a path, and the path's earliest CA expiry.
// The rules themselves are pure and live in domain/cert-policy.ts; this file only decodes.
import { X509Certificate as NodeX509 } from "node:crypto";
import { RsaSaPssParams } from "@peculiar/asn1-rsa";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, id_ce_nameConstraints } from "@peculiar/asn1-x509";
import { checkPath, RSASSA_PSS, type CertFacts, type KeyFacts, type PathRole, type PolicyRefusal } from "../domain/cert-policy.js";
import { pathRenewalTime } from "../domain/timing.js";
import { errorMessage, RefusedError } from "../errors.js";
import type { CertInfo } from "./certs.js";
import { checkLeafUsage, checkValidity, verifyChain, type ChainResult } from "./chain.js";

/** The facts the policy checks read, for `cert` at `role` on its path. */
export function policyFacts(cert: CertInfo, role: PathRole): CertFacts {
  const asn = AsnConvert.parse(cert.der, Certificate);
  const tbs = asn.tbsCertificate;
  const signatureOid = asn.signatureAlgorithm.algorithm;
  const extensions = tbs.extensions ?? [];
  return {
    role,
    label: `${role === "leaf" ? "certificate" : role === "anchor" ? "CA certificate (anchor)" : "intermediate"} "${cert.subjectText}" (serial ${cert.serial})`,
    selfSigned: cert.selfSigned,
    signatureOid,
    ...(signatureOid === RSASSA_PSS ? { pssHashOid: pssHash(asn.signatureAlgorithm.parameters) } : {}),
    key: keyFacts(cert.der),
    serialBytes: new Uint8Array(tbs.serialNumber),
    criticalExtensions: extensions.filter((e) => e.critical).map((e) => e.extnID),
    nameConstraints: extensions.some((e) => e.extnID === id_ce_nameConstraints),
  };
}

/** RSASSA-PSS parameters name their hash; absent means SHA-1 (RFC 4055), which the policy refuses. */
function pssHash(parameters: ArrayBuffer | null | undefined): string {
  if (!parameters || parameters.byteLength === 0) return "1.3.14.3.2.26";
  try {
    return AsnConvert.parse(parameters, RsaSaPssParams).hashAlgorithm.algorithm;
  } catch {
    return "unreadable parameters";
  }
}

function keyFacts(der: Buffer): KeyFacts {
  let key;
  try {
    key = new NodeX509(der).publicKey;
  } catch {
    return { type: "other", name: "unreadable" };
  }
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "rsa":
    case "rsa-pss":
      return { type: "rsa", bits: details.modulusLength ?? 0 };
    case "ec":
      return { type: "ec", curve: details.namedCurve ?? "unnamed (explicit parameters)" };
    case "ed25519":
      return { type: "ed25519" };
    default:
      return { type: "other", name: key.asymmetricKeyType ?? "unknown" };
  }
}

/** Leaf first; the last certificate is the anchor when `anchored` (a pinned CA ends the path). */
export function pathFacts(path: readonly CertInfo[], anchored: boolean): CertFacts[] {
  return path.map((c, i) => policyFacts(c, i === 0 ? "leaf" : anchored && i === path.length - 1 ? "anchor" : "intermediate"));
}

/** The first policy refusal on the path, or undefined when every certificate meets the policy. */
export function checkCertificatePolicy(path: readonly CertInfo[], anchored: boolean): PolicyRefusal | undefined {
  return checkPath(pathFacts(path, anchored));
}

/** The CA certificate of the path (above the leaf) that expires first: it bounds the credential's life. */
export interface CaExpiry {
  notAfter: Date;
  role: "intermediate" | "anchor";
  subject: string;
  serial: string;
}

export function earliestCaExpiry(path: readonly CertInfo[], anchored: boolean): CaExpiry | undefined {
  let best: CaExpiry | undefined;
  path.forEach((c, i) => {
    if (i === 0) return;
    if (best && best.notAfter.getTime() <= c.notAfter.getTime()) return;
    const role = anchored && i === path.length - 1 ? "anchor" : "intermediate";
    best = { notAfter: c.notAfter, role, subject: c.subjectText, serial: c.serial };
  });
  return best;
}

/**
 * Every check a signed certificate meets before it is installed, in order: the leaf's dates and
 * usages, its chain to the pinned CA, the certificate policy on each certificate of that chain, and
 * a renewal date still ahead counting the CA that expires first. Refusals are RefusedError with the
 * check's name; the message starts with the leaf's serial.
 */
export async function checkIssuedCertificate(
  leaf: CertInfo,
  others: CertInfo[],
  pinnedCa: CertInfo[],
  now: Date,
  renewBeforeDays: number,
): Promise<{ chain: ChainResult; ca: CaExpiry | undefined }> {
  const refuse = (check: string, message: string): never => {
    throw new RefusedError(check, `certificate ${leaf.serial}: ${message}`);
  };
  try {
    checkValidity(leaf, now);
    checkLeafUsage(leaf);
  } catch (err) {
    refuse(err instanceof RefusedError ? err.check : "validity", errorMessage(err));
  }
  let chain: ChainResult;
  try {
    chain = await verifyChain(leaf, others, pinnedCa, now);
  } catch (err) {
    if (!(err instanceof RefusedError)) throw err;
    return refuse("chain", errorMessage(err));
  }
  const refusal = checkCertificatePolicy(chain.chain, true);
  if (refusal) refuse(refusal.check, refusal.reason);
  const ca = earliestCaExpiry(chain.chain, true);
  const due = pathRenewalTime(leaf, ca?.notAfter, renewBeforeDays);
  if (due.at.getTime() <= now.getTime()) {
    refuse(
      "renewal-due",
      due.by === "leaf" || !ca
        ? `expires ${leaf.notAfter.toISOString()} and would be due for renewal at once (due ${due.at.toISOString()}): ` +
            "installing it would start a renewal loop; ask Stellantis for a longer validity or lower renew_before_days"
        : `outlives ${ca.role} "${ca.subject}" (serial ${ca.serial}), which expires ${ca.notAfter.toISOString()}: the credential ` +
            `stops working then, so renewal would be due at once (due ${due.at.toISOString()}, renew_before_days before it); ` +
            "ask Stellantis for a certificate under a CA that is valid for longer",
    );
  }
  return { chain, ca };
}
