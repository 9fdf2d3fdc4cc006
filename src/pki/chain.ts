// Does a signed certificate come from the pinned Stellantis CA, and may it be used as a TLS client certificate?
// The path is built and checked here, not by X509ChainBuilder: that one checks names and
// signatures only, ignores dates and basicConstraints, and turns a missing intermediate into a
// silent one-certificate chain (STACK.md). Trust is pinned by SHA-256 fingerprint, never by name.
import { X509Certificate as NodeX509 } from "node:crypto";
import { x509 } from "./crypto.js";
import type { CertInfo } from "./certs.js";
import type { DnAttribute } from "./dn.js";
import { RefusedError } from "../errors.js";

export interface ChainResult {
  /** Leaf first, ending with a certificate of stellantis.ca_file (the trust anchor). */
  chain: CertInfo[];
  /**
   * The CA certificates a TLS client sends after its own (chain.pem): those between the leaf and
   * the anchor, plus the anchor itself when it is not a self-signed root (a pinned intermediate).
   */
  intermediates: CertInfo[];
}

/** Longest path accepted, leaf and anchor included: real PKIs use three or four. */
export const MAX_CHAIN_LENGTH = 8;

const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const ANY_EXTENDED_KEY_USAGE = "2.5.29.37.0";

/**
 * Builds the path from `leaf` upward through `others` (what came with it) and `pinnedCa` (the
 * certificates of stellantis.ca_file), and checks every link at `now`: the signature, the issuer's
 * dates, cA=TRUE and pathLenConstraint, and keyCertSign when keyUsage is present. The path must end
 * at a certificate whose SHA-256 is one of `pinnedCa`'s. The leaf's own dates and usages are
 * checkValidity's and checkLeafUsage's. Refusals are RefusedError "chain".
 */
export async function verifyChain(leaf: CertInfo, others: CertInfo[], pinnedCa: CertInfo[], now: Date): Promise<ChainResult> {
  if (pinnedCa.length === 0) refuse("stellantis.ca_file holds no certificate: nothing to check the chain against");
  const pinned = new Set(pinnedCa.map((c) => c.sha256));
  if (pinned.has(leaf.sha256)) refuse(`${name(leaf)} is the Stellantis CA certificate itself (from stellantis.ca_file), not a client certificate`);
  if (leaf.isCa) refuse(`${name(leaf)} is a CA certificate (basicConstraints cA=TRUE), not a client certificate`);
  if (leaf.selfSigned) {
    refuse(`${name(leaf)} is self-signed: it was not issued by the Stellantis CA (was the CSR signed locally instead of sent to Stellantis?)`);
  }

  // Pinned certificates first, so that a same-named foreign certificate is only tried after the real one.
  const candidates = unique([...pinnedCa, ...others]).filter((c) => c.sha256 !== leaf.sha256);
  const path = climb(leaf, candidates, pinned);

  // The anchor is the highest pinned certificate on the path: above it, nothing needs trusting.
  let anchor = -1;
  path.forEach((c, i) => {
    if (i > 0 && pinned.has(c.sha256)) anchor = i;
  });
  if (anchor < 0) refuse(notPinned(leaf, path, pinnedCa));
  const chain = path.slice(0, anchor + 1);

  for (let i = 1; i < chain.length; i++) checkIssuer(chain, i, pinned, now);

  const top = chain[chain.length - 1]!;
  const intermediates = chain.slice(1, top.selfSigned ? -1 : undefined);
  return { chain, intermediates };
}

/** Keys and usages the leaf needs to log in with mTLS. Refusals are RefusedError "usage". */
export function checkLeafUsage(leaf: CertInfo): void {
  const cert = decoded(leaf);
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  if (basic?.ca === true || leaf.isCa) {
    throw new RefusedError("usage", `${name(leaf)} is a CA certificate (basicConstraints cA=TRUE), not a client certificate`);
  }
  const keyUsage = cert.getExtension(x509.KeyUsagesExtension);
  if (keyUsage && (keyUsage.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
    throw new RefusedError(
      "usage",
      `${name(leaf)} has keyUsage ${describeKeyUsage(keyUsage.usages)} without digitalSignature: it cannot sign a TLS client handshake`,
    );
  }
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  if (eku) {
    const usages = eku.usages.map(String);
    if (!usages.includes(CLIENT_AUTH) && !usages.includes(ANY_EXTENDED_KEY_USAGE)) {
      throw new RefusedError(
        "usage",
        `${name(leaf)} has extendedKeyUsage ${usages.map(describeEku).join(", ") || "(empty)"} without clientAuth: it is not a TLS client certificate`,
      );
    }
  }
}

/** The certificate is inside its validity window at `now` (both ends included, RFC 5280). RefusedError "validity". */
export function checkValidity(cert: CertInfo, now: Date): void {
  if (now.getTime() < cert.notBefore.getTime()) {
    throw new RefusedError("validity", `${name(cert)} is not valid before ${iso(cert.notBefore)} (check this host's clock; it reads ${iso(now)})`);
  }
  if (now.getTime() > cert.notAfter.getTime()) {
    throw new RefusedError("validity", `${name(cert)} expired on ${iso(cert.notAfter)}`);
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Follows issuers upward, name first, then the signature decides among same-named candidates. Stops
 * at a self-signed root. Once a pinned certificate is on the path, being unable to go higher (issuer
 * missing, bad signature, loop, length) just ends the climb there: the pinned one is the anchor.
 * Leaf first; each next certificate has signed the one before.
 */
function climb(leaf: CertInfo, candidates: CertInfo[], pinned: Set<string>): CertInfo[] {
  const certs = [leaf];
  const stop = (problem: string): CertInfo[] => {
    if (certs.slice(1).some((c) => pinned.has(c.sha256))) return certs;
    return refuse(problem);
  };
  let current = leaf;
  for (;;) {
    if (current !== leaf && current.selfSigned) return certs;
    const named = candidates.filter((c) => sameName(c.subject, current.issuer));
    if (named.length === 0) {
      return stop(
        `${name(current)} is signed by "${current.issuerText}", which is neither in the files given nor in stellantis.ca_file (missing intermediate?)`,
      );
    }
    const issuer = named.find((c) => signedBy(current, c));
    if (!issuer) {
      const keys = named.map((c) => `SHA-256 ${c.sha256}${pinned.has(c.sha256) ? " from stellantis.ca_file" : ""}`).join("; ");
      return stop(
        `signature of ${name(current)} does not verify with the key of "${current.issuerText}" (${keys}): ` +
          "the certificate is damaged, or another key of the same name signed it, so it does not chain to the configured Stellantis CA",
      );
    }
    if (certs.some((c) => c.sha256 === issuer.sha256))
      return stop(`the certificates form a loop at "${issuer.subjectText}": no path to the Stellantis CA`);
    if (certs.length === MAX_CHAIN_LENGTH) return stop(`the chain above ${name(leaf)} is longer than ${MAX_CHAIN_LENGTH} certificates: refused`);
    certs.push(issuer);
    current = issuer;
  }
}

/** The refusal when the climb reached a self-signed root that is not pinned. */
function notPinned(leaf: CertInfo, path: CertInfo[], pinnedCa: CertInfo[]): string {
  const top = path[path.length - 1]!;
  const base = `${name(leaf)} does not chain to the configured Stellantis CA (issuer "${leaf.issuerText}")`;
  const namesake = pinnedCa.some((c) => sameName(c.subject, top.subject));
  return (
    `${base}: its chain ends at "${top.subjectText}" (SHA-256 ${top.sha256}), which is not in stellantis.ca_file` +
    (namesake ? "; stellantis.ca_file has a CA of that name with another fingerprint, so this is a different CA using the same name" : "")
  );
}

/** The checks on chain[i] as the issuer of chain[i-1]. */
function checkIssuer(chain: CertInfo[], i: number, pinned: Set<string>, now: Date): void {
  const issuer = chain[i]!;
  const subject = chain[i - 1]!;
  const what = pinned.has(issuer.sha256)
    ? `the Stellantis CA certificate "${issuer.subjectText}" from stellantis.ca_file`
    : `intermediate "${issuer.subjectText}"`;
  if (now.getTime() > issuer.notAfter.getTime()) refuse(`${what} expired on ${iso(issuer.notAfter)}`);
  if (now.getTime() < issuer.notBefore.getTime()) refuse(`${what} is not valid before ${iso(issuer.notBefore)} (check this host's clock)`);

  const cert = decoded(issuer);
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  if (basic?.ca !== true) {
    refuse(
      `issuer "${issuer.subjectText}" of ${name(subject)} is not a CA (basicConstraints ${basic ? "cA=FALSE" : "absent"}): it may not sign certificates`,
    );
  }
  // pathLenConstraint counts the non-self-issued CA certificates below this one, the leaf excluded.
  if (basic.pathLength !== undefined) {
    const below = chain.slice(1, i).filter((c) => !sameName(c.subject, c.issuer)).length;
    if (below > basic.pathLength) {
      refuse(`issuer "${issuer.subjectText}" allows ${basic.pathLength} CA certificate(s) below it (pathLenConstraint) but the chain has ${below}`);
    }
  }
  const keyUsage = cert.getExtension(x509.KeyUsagesExtension);
  if (keyUsage && (keyUsage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    refuse(`issuer "${issuer.subjectText}" has keyUsage ${describeKeyUsage(keyUsage.usages)} without keyCertSign: it may not sign certificates`);
  }
}

/**
 * OpenSSL's X509_verify through Node: the signature over the TBS bytes with the issuer's key, and
 * nothing else (no dates, no names), which is what is wanted here. x509's
 * `verify({ publicKey, signatureOnly: true })` does the same through WebCrypto; without
 * `signatureOnly` it would also test the subject's dates against the wall clock.
 */
function signedBy(subject: CertInfo, issuer: CertInfo): boolean {
  try {
    return node(subject).verify(node(issuer).publicKey);
  } catch {
    return false;
  }
}

/**
 * RFC 5280 name matching, simplified: same attributes in the same order, values compared after
 * trimming, collapsing spaces and folding case (what OpenSSL's canonical form does). The signature
 * check that follows is what really decides.
 */
export function sameName(a: DnAttribute[], b: DnAttribute[]): boolean {
  if (a.length !== b.length) return false;
  const norm = (v: string): string => v.trim().replace(/\s+/g, " ").toLowerCase();
  return a.every((attr, i) => attr.oid === b[i]!.oid && norm(attr.value) === norm(b[i]!.value));
}

const nodeCache = new WeakMap<CertInfo, NodeX509>();
const x509Cache = new WeakMap<CertInfo, x509.X509Certificate>();

function node(cert: CertInfo): NodeX509 {
  let n = nodeCache.get(cert);
  if (!n) {
    n = new NodeX509(cert.der);
    nodeCache.set(cert, n);
  }
  return n;
}

function decoded(cert: CertInfo): x509.X509Certificate {
  let c = x509Cache.get(cert);
  if (!c) {
    c = new x509.X509Certificate(new Uint8Array(cert.der));
    x509Cache.set(cert, c);
  }
  return c;
}

function unique(certs: CertInfo[]): CertInfo[] {
  const seen = new Set<string>();
  return certs.filter((c) => {
    if (seen.has(c.sha256)) return false;
    seen.add(c.sha256);
    return true;
  });
}

const KEY_USAGE_NAMES: Array<[number, string]> = [
  [x509.KeyUsageFlags.digitalSignature, "digitalSignature"],
  [x509.KeyUsageFlags.nonRepudiation, "nonRepudiation"],
  [x509.KeyUsageFlags.keyEncipherment, "keyEncipherment"],
  [x509.KeyUsageFlags.dataEncipherment, "dataEncipherment"],
  [x509.KeyUsageFlags.keyAgreement, "keyAgreement"],
  [x509.KeyUsageFlags.keyCertSign, "keyCertSign"],
  [x509.KeyUsageFlags.cRLSign, "cRLSign"],
  [x509.KeyUsageFlags.encipherOnly, "encipherOnly"],
  [x509.KeyUsageFlags.decipherOnly, "decipherOnly"],
];

function describeKeyUsage(flags: number): string {
  const names = KEY_USAGE_NAMES.filter(([bit]) => (flags & bit) !== 0).map(([, n]) => n);
  return names.length > 0 ? names.join(",") : "(none)";
}

const EKU_NAMES: Record<string, string> = {
  "1.3.6.1.5.5.7.3.1": "serverAuth",
  [CLIENT_AUTH]: "clientAuth",
  "1.3.6.1.5.5.7.3.3": "codeSigning",
  "1.3.6.1.5.5.7.3.4": "emailProtection",
  "1.3.6.1.5.5.7.3.8": "timeStamping",
  "1.3.6.1.5.5.7.3.9": "OCSPSigning",
};

function describeEku(oid: string): string {
  return EKU_NAMES[oid] ?? oid;
}

/** How a certificate is named in messages: its subject, and its serial to tell renewals apart. */
function name(cert: CertInfo): string {
  return `certificate "${cert.subjectText}" (serial ${cert.serial})`;
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function refuse(message: string): never {
  throw new RefusedError("chain", message);
}
