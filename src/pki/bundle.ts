// Reading what the CA sent back: PEM (one or many certificates), DER, PKCS#7 (PEM or DER); naming anything else.
// The Stellantis CA answers with "a link to download your certificate & the CA certificate" in an
// unstated format, so every common container is read, and every refusal says what the file is
// instead (a key, a CSR, a PKCS#12, an HTML page...) without quoting a byte of it.
import { createPrivateKey } from "node:crypto";
import { ContentInfo, id_signedData, SignedData } from "@peculiar/asn1-cms";
import { PFX } from "@peculiar/asn1-pfx";
import { EncryptedPrivateKeyInfo, PrivateKeyInfo } from "@peculiar/asn1-pkcs8";
import { RSAPrivateKey } from "@peculiar/asn1-rsa";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, CertificateList, SubjectPublicKeyInfo } from "@peculiar/asn1-x509";
import { x509 } from "./crypto.js";
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
    return (
      "holds an OpenSSL TRUSTED CERTIFICATE (a certificate with trust settings appended), not a plain certificate: " +
      `convert it with \`openssl x509 -in ${shellWord(name)} -out cert.pem\``
    );
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

/**
 * asn1js (under @peculiar/asn1-schema) stops at 10,000 ASN.1 nodes by default, which a PKCS#7 bundle
 * of about 200 certificates (~50 nodes each) exceeds: it was refused as "truncated or damaged". Every
 * node takes at least two bytes (tag and length), so a limit of one node per byte never refuses a
 * real file, and the 1 MiB file cap still bounds the work.
 */
function limits(bytes: Uint8Array): ParseOptions {
  return { berOptions: { maxNodes: bytes.length, maxContentLength: bytes.length } };
}
type ParseOptions = NonNullable<Parameters<typeof AsnConvert.parse>[2]>;

/** The value as `type`, or undefined when the bytes do not have that shape (or do not decode). */
function as<T>(bytes: Uint8Array, type: new () => T): T | undefined {
  try {
    return AsnConvert.parse(bytes, type, limits(bytes));
  } catch {
    return undefined;
  }
}

/** The bytes decode as BER at all (a structure credd does not know, rather than a damaged file). */
function decodes(bytes: Uint8Array): boolean {
  try {
    AsnConvert.toString(bytes, limits(bytes));
    return true;
  } catch {
    return false;
  }
}

/**
 * What a DER file is, asked of @peculiar's schemas in turn (each one matches only its own shape):
 * PKCS#7, PKCS#12, a private key, a certificate, a CSR, a CRL, a public key.
 */
function readDer(bytes: Buffer, name: string): ReadCertificates {
  if (bytes[0] !== 0x30) {
    refuse(
      name,
      `is neither PEM (no "-----BEGIN" line) nor DER: not a certificate${looksLikeHtml(bytes) ? " (it looks like an HTML page: the download link may need a login)" : ""}`,
    );
  }
  const info = as(bytes, ContentInfo);
  if (info?.contentType.startsWith(PKCS7_PREFIX)) return { kind: "pkcs7-der", certificates: readPkcs7Info(info, name, "it") };
  if (as(bytes, PFX)) refuse(name, pkcs12Message(name));
  if (isPrivateKey(bytes)) refuse(name, `holds a private key (DER), not a certificate: ${KEY_ADVICE}`);
  if (as(bytes, Certificate)) return { kind: "der-certificate", certificates: [parseIn(name, bytes, "")] };
  if (isCsr(bytes)) refuse(name, whatElse("CERTIFICATE REQUEST", name));
  if (as(bytes, CertificateList)) refuse(name, whatElse("X509 CRL", name));
  if (as(bytes, SubjectPublicKeyInfo)) refuse(name, whatElse("PUBLIC KEY", name));
  if (!decodes(bytes)) refuse(name, "looks like DER but is truncated or damaged: download it again");
  refuse(name, "is DER but not a certificate, a PKCS#7 bundle or any structure credd knows");
}

function pkcs12Message(name: string): string {
  return (
    "is a PKCS#12 bundle, which usually holds a private key too: export the certificate with " +
    `\`openssl pkcs12 -in ${shellWord(name)} -nokeys -out cert.pem\` and drop cert.pem instead`
  );
}

/**
 * PKCS#8 (plain or encrypted) and PKCS#1 RSA by @peculiar's schemas; SEC1 EC keys by Node's own
 * key reader (the SEC1 schema lives in @peculiar/asn1-ecc, which credd does not depend on).
 */
function isPrivateKey(bytes: Buffer): boolean {
  if (as(bytes, PrivateKeyInfo) || as(bytes, EncryptedPrivateKeyInfo) || as(bytes, RSAPrivateKey)) return true;
  try {
    createPrivateKey({ key: bytes, format: "der", type: "sec1" });
    return true;
  } catch {
    return false;
  }
}

function isCsr(bytes: Buffer): boolean {
  try {
    new x509.Pkcs10CertificateRequest(new Uint8Array(bytes));
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// PKCS#7

function readPkcs7(der: Buffer, name: string, what: string): CertInfo[] {
  const info = der[0] === 0x30 ? as(der, ContentInfo) : undefined;
  if (!info) refuse(name, `is damaged: ${what} does not decode as PKCS#7`);
  return readPkcs7Info(info, name, what);
}

/**
 * ContentInfo { signedData, [0] SignedData { version, digestAlgorithms, encapContentInfo,
 * [0] IMPLICIT certificates, [1] crls, signerInfos } }: the certificates, with their exact bytes.
 * Signers and content are ignored: every certificate taken out is checked on its own merits later.
 */
function readPkcs7Info(info: ContentInfo, name: string, what: string): CertInfo[] {
  if (info.contentType !== id_signedData) {
    refuse(name, `is damaged or not a certificate bundle: ${what} is PKCS#7 content type ${info.contentType}, not signedData`);
  }
  const content = new Uint8Array(info.content);
  const signedData = content.length > 0 ? as(content, SignedData) : undefined;
  if (!signedData) refuse(name, `is damaged: ${what} is PKCS#7 signedData without its content`);
  const certs = (signedData.certificates ?? []).flatMap((c) => (c.certificate ? [c.certificate] : []));
  if (certs.length === 0) refuse(name, `is a PKCS#7 bundle with no certificate in it`);
  const where = what === "it" ? "the PKCS#7 bundle" : what;
  return certs.map((c, i) => {
    // The schema re-encodes what it read; in DER that is the same bytes, found in the file as they
    // are. A certificate that is not there as re-encoded was not DER, which X.509 requires.
    const der = Buffer.from(AsnConvert.serialize(c));
    if (Buffer.from(content.buffer, content.byteOffset, content.length).indexOf(der) < 0) {
      refuse(
        name,
        `certificate ${i + 1} in ${where}: the certificate is not in DER (its encoding is not the canonical one X.509 requires): export it again as DER or PEM`,
      );
    }
    return parseIn(name, der, `certificate ${i + 1} in ${where}`);
  });
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
