// Reading what the CA sent back: PEM (one or many certificates), DER, PKCS#7 (PEM or DER); naming anything else.
// The Stellantis CA answers with "a link to download your certificate & the CA certificate" in an
// unstated format, so every common container is read, and every refusal says what the file is
// instead (a key, a CSR, a PKCS#12, an HTML page...) without quoting a byte of it.
import * as asn1js from "asn1js";
import { parseCertificate, type CertInfo } from "./certs.js";
import { CERT_LABELS, findPemBlocks, looksLikePem, normaliseText } from "./pem.js";
import { RefusedError } from "../errors.js";

export type FileKind = "pem" | "der-certificate" | "pkcs7-pem" | "pkcs7-der";

export interface ReadCertificates {
  kind: FileKind;
  /** In file order, each certificate once (by SHA-256 of its DER). */
  certificates: CertInfo[];
}

/** A certificate is a few KiB and a long chain a few tens; anything larger is the wrong file. */
export const MAX_CERTIFICATE_FILE_BYTES = 1024 * 1024;

const PKCS7_LABELS = new Set(["PKCS7", "CMS"]);
const CSR_LABELS = new Set(["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]);

const OID_PKCS7_DATA = "1.2.840.113549.1.7.1";
const OID_PKCS7_SIGNED_DATA = "1.2.840.113549.1.7.2";
const PKCS7_PREFIX = "1.2.840.113549.1.7.";

const KEY_ADVICE = "keep it safe; credd never needs a key dropped in the inbox";

/**
 * The certificates in one file, whatever container it is. `name` is only used in messages (give the
 * name the person knows: the path they typed or the inbox file name). Refusals are RefusedError
 * "parse" and never include the file's content.
 */
export function readCertificateFile(bytes: Buffer, name: string): ReadCertificates {
  if (bytes.length > MAX_CERTIFICATE_FILE_BYTES) {
    refuse(name, `is ${bytes.length} bytes, too large for a certificate (limit 1 MiB): is it the right file?`);
  }
  if (bytes.length === 0 || normaliseText(bytes).trim() === "") {
    refuse(name, "is empty: the download may have failed; fetch the certificate again");
  }
  const read = looksLikePem(bytes) ? readPem(bytes, name) : readDer(bytes, name);
  return { kind: read.kind, certificates: uniqueBySha256(read.certificates) };
}

export interface NamedFile {
  name: string;
  bytes: Buffer;
}

/** Several files (leaf, intermediates, CA in any order and any mix of formats): every certificate once. */
export function readCertificateFiles(files: NamedFile[]): { files: Array<ReadCertificates & { name: string }>; certificates: CertInfo[] } {
  const read = files.map((f) => ({ name: f.name, ...readCertificateFile(f.bytes, f.name) }));
  return { files: read, certificates: uniqueBySha256(read.flatMap((r) => r.certificates)) };
}

export function uniqueBySha256(certs: CertInfo[]): CertInfo[] {
  const seen = new Set<string>();
  return certs.filter((c) => {
    if (seen.has(c.sha256)) return false;
    seen.add(c.sha256);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// PEM

function readPem(bytes: Buffer, name: string): ReadCertificates {
  const blocks = findPemBlocks(bytes);
  // A key first, whatever else is in the file and however damaged: the person must hear about it.
  if (blocks.some((b) => b.label.includes("PRIVATE KEY"))) refuse(name, `holds a private key, not a certificate: ${KEY_ADVICE}`);
  if (blocks.length === 0) {
    refuse(name, 'has a "-----BEGIN" line but no PEM block credd can read: give the certificate as "-----BEGIN CERTIFICATE-----", DER or PKCS#7');
  }
  for (const block of blocks) {
    if (CERT_LABELS.has(block.label) || PKCS7_LABELS.has(block.label)) continue;
    refuse(name, whatElse(block.label, name));
  }
  const certificates: CertInfo[] = [];
  blocks.forEach((block, i) => {
    const where = blocks.length > 1 ? ` (block ${i + 1} of ${blocks.length})` : "";
    if (!block.complete) refuse(name, `is truncated: "-----BEGIN ${block.label}-----"${where} has no END line; download it again`);
    if (block.base64 === "") refuse(name, `is damaged: the ${block.label} block${where} is empty`);
    if (!block.validBase64) refuse(name, `is damaged: the ${block.label} block${where} is not valid base64`);
    const der = Buffer.from(block.base64, "base64");
    if (CERT_LABELS.has(block.label)) certificates.push(parseIn(name, der, where ? `certificate${where}` : ""));
    else certificates.push(...readPkcs7(der, name, `the PKCS#7 block${where}`));
  });
  const kind: FileKind = blocks.every((b) => PKCS7_LABELS.has(b.label)) ? "pkcs7-pem" : "pem";
  return { kind, certificates };
}

/** The refusal for a PEM block that is neither a certificate nor PKCS#7. */
function whatElse(label: string, name: string): string {
  if (label === "TRUSTED CERTIFICATE") {
    return "holds an OpenSSL TRUSTED CERTIFICATE (a certificate with trust settings appended), not a plain certificate: " +
      `convert it with \`openssl x509 -in ${shellWord(name)} -out cert.pem\``;
  }
  if (CSR_LABELS.has(label)) {
    return "holds a certificate signing request (CSR), not a certificate: that is what credd sends to Stellantis; drop the signed certificate that comes back";
  }
  if (label === "PUBLIC KEY" || label === "RSA PUBLIC KEY") return "holds a public key, not a certificate";
  if (label === "X509 CRL") return "holds a certificate revocation list (CRL), not a certificate";
  if (label === "PKCS12") return pkcs12Message(name);
  const shown = label.length > 40 ? `${label.slice(0, 40)}...` : label;
  return `holds a PEM block labelled "${shown}", not a certificate: give "-----BEGIN CERTIFICATE-----" or "-----BEGIN PKCS7-----"`;
}

// ---------------------------------------------------------------------------------------------
// DER

type Block = asn1js.AsnType;

function readDer(bytes: Buffer, name: string): ReadCertificates {
  const root = decodeBer(bytes);
  if (!root) {
    if (bytes[0] === 0x30) refuse(name, "looks like DER but is truncated or damaged: download it again");
    refuse(name, `is neither PEM (no "-----BEGIN" line) nor DER: not a certificate${looksLikeHtml(bytes) ? " (it looks like an HTML page: the download link may need a login)" : ""}`);
  }
  const kids = children(root);
  if (!(root instanceof asn1js.Sequence) || kids.length === 0) refuse(name, "is DER but not a certificate, a PKCS#7 bundle or any structure credd knows");

  const contentType = oidOf(kids[0]);
  if (contentType?.startsWith(PKCS7_PREFIX)) return { kind: "pkcs7-der", certificates: readPkcs7Root(root, name, "it") };
  if (isPkcs12(kids)) refuse(name, pkcs12Message(name));
  if (isPrivateKey(kids)) refuse(name, `holds a private key (DER), not a certificate: ${KEY_ADVICE}`);

  const shape = signedShape(kids);
  if (shape === "certificate") return { kind: "der-certificate", certificates: [parseIn(name, bytes, "")] };
  if (shape === "csr") refuse(name, whatElse("CERTIFICATE REQUEST", name));
  if (shape === "crl") refuse(name, whatElse("X509 CRL", name));
  if (kids.length === 2 && kids[0] instanceof asn1js.Sequence && kids[1] instanceof asn1js.BitString) refuse(name, whatElse("PUBLIC KEY", name));
  refuse(name, "is DER but not a certificate, a PKCS#7 bundle or any structure credd knows");
}

/** The whole buffer as one BER value (PKCS#7 and PKCS#12 from Java or BouncyCastle often use indefinite lengths), or undefined. */
function decodeBer(bytes: Uint8Array): Block | undefined {
  const decoded = asn1js.fromBER(bytes);
  if (decoded.offset !== bytes.length || decoded.result.error) return undefined;
  return decoded.result;
}

function children(block: Block | undefined): Block[] {
  const value = (block as { valueBlock?: { value?: unknown } } | undefined)?.valueBlock?.value;
  return Array.isArray(value) ? (value as Block[]) : [];
}

function oidOf(block: Block | undefined): string | undefined {
  return block instanceof asn1js.ObjectIdentifier ? block.getValue() : undefined;
}

function smallInt(block: Block | undefined): number | undefined {
  return block instanceof asn1js.Integer ? block.valueBlock.valueDec : undefined;
}

function isContextTag(block: Block | undefined, n: number): boolean {
  return block !== undefined && block.idBlock.tagClass === 3 && block.idBlock.tagNumber === n;
}

/** PFX: SEQUENCE { INTEGER 3, ContentInfo (data or signedData), MacData? } (RFC 7292). */
function isPkcs12(kids: Block[]): boolean {
  if (smallInt(kids[0]) !== 3 || !(kids[1] instanceof asn1js.Sequence)) return false;
  const type = oidOf(children(kids[1])[0]);
  return type === OID_PKCS7_DATA || type === OID_PKCS7_SIGNED_DATA;
}

function pkcs12Message(name: string): string {
  return "is a PKCS#12 bundle, which usually holds a private key too: export the certificate with " +
    `\`openssl pkcs12 -in ${shellWord(name)} -nokeys -out cert.pem\` and drop cert.pem instead`;
}

/** PKCS#8 (plain or encrypted), PKCS#1 RSA, SEC1 EC and OpenSSL's DSA key shapes. */
function isPrivateKey(kids: Block[]): boolean {
  const version = smallInt(kids[0]);
  // PrivateKeyInfo / OneAsymmetricKey: INTEGER 0|1, AlgorithmIdentifier, OCTET STRING privateKey.
  if ((version === 0 || version === 1) && kids[1] instanceof asn1js.Sequence && kids[2] instanceof asn1js.OctetString) return true;
  // EncryptedPrivateKeyInfo: AlgorithmIdentifier (PBES2, PBE...), OCTET STRING.
  if (kids.length === 2 && kids[0] instanceof asn1js.Sequence && oidOf(children(kids[0])[0]) !== undefined && kids[1] instanceof asn1js.OctetString) return true;
  // ECPrivateKey: INTEGER 1, OCTET STRING, [0] parameters?, [1] publicKey?
  if (version === 1 && kids[1] instanceof asn1js.OctetString) return true;
  // RSAPrivateKey (9 INTEGERs) or OpenSSL's DSA key (6), version 0.
  return version === 0 && kids.length >= 6 && kids.every((k) => k instanceof asn1js.Integer);
}

/**
 * Certificates, CSRs and CRLs share the shape SEQUENCE { tbs SEQUENCE, AlgorithmIdentifier, BIT STRING };
 * the to-be-signed part tells them apart: a v3 certificate starts with [0] version, a v1 one has at
 * least six fields, a CSR has four ending in [0] attributes, a CRL has a time where a Name would be.
 */
function signedShape(kids: Block[]): "certificate" | "csr" | "crl" | undefined {
  if (kids.length !== 3 || !(kids[0] instanceof asn1js.Sequence) || !(kids[1] instanceof asn1js.Sequence) || !(kids[2] instanceof asn1js.BitString)) {
    return undefined;
  }
  const tbs = children(kids[0]);
  const isTime = (b: Block | undefined): boolean => b instanceof asn1js.UTCTime || b instanceof asn1js.GeneralizedTime;
  if (isTime(tbs[2]) || isTime(tbs[3])) return "crl";
  if (isContextTag(tbs[0], 0) || tbs.length >= 6) return "certificate";
  if (tbs.length === 4 && smallInt(tbs[0]) === 0 && isContextTag(tbs[3], 0)) return "csr";
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// PKCS#7

function readPkcs7(der: Buffer, name: string, what: string): CertInfo[] {
  const root = decodeBer(der);
  if (!root || !(root instanceof asn1js.Sequence)) refuse(name, `is damaged: ${what} does not decode as PKCS#7`);
  return readPkcs7Root(root, name, what);
}

/**
 * ContentInfo { signedData, [0] SignedData { version, digestAlgorithms, encapContentInfo,
 * [0] IMPLICIT certificates, [1] crls, signerInfos } }: the certificates, with their exact bytes.
 * Signers and content are ignored: every certificate taken out is checked on its own merits later.
 */
function readPkcs7Root(root: Block, name: string, what: string): CertInfo[] {
  const [typeBlock, explicit] = children(root);
  const type = oidOf(typeBlock);
  if (type !== OID_PKCS7_SIGNED_DATA) {
    refuse(name, `is damaged or not a certificate bundle: ${what} is PKCS#7 ${type ? `content type ${type}` : "without a content type"}, not signedData`);
  }
  const signedData = children(explicit)[0];
  if (!isContextTag(explicit, 0) || !(signedData instanceof asn1js.Sequence)) refuse(name, `is damaged: ${what} is PKCS#7 signedData without its content`);
  const certSet = children(signedData).find((b) => isContextTag(b, 0));
  const certs = children(certSet).filter((b) => b instanceof asn1js.Sequence);
  if (certs.length === 0) refuse(name, `is a PKCS#7 bundle with no certificate in it`);
  return certs.map((c, i) => parseIn(name, Buffer.from(c.valueBeforeDecodeView), `certificate ${i + 1} in ${what === "it" ? "the PKCS#7 bundle" : what}`));
}

// ---------------------------------------------------------------------------------------------

function parseIn(name: string, der: Buffer, what: string): CertInfo {
  try {
    return parseCertificate(der);
  } catch (err) {
    // parseCertificate's messages describe the problem, never the bytes.
    const reason = err instanceof RefusedError ? err.message : "it does not decode";
    throw new RefusedError("parse", `${name}: ${what ? `${what}: ` : ""}${reason}`, { cause: err });
  }
}

/** The file name as a person can paste it into a shell. */
function shellWord(name: string): string {
  return /^[\w./@%+=:,-]+$/.test(name) ? name : `'${name.replace(/'/g, "'\\''")}'`;
}

function looksLikeHtml(bytes: Buffer): boolean {
  return /^\s*<(!doctype html|html|\?xml|head|body)/i.test(normaliseText(bytes.subarray(0, 512)));
}

function refuse(name: string, problem: string): never {
  throw new RefusedError("parse", `${name} ${problem}`);
}
