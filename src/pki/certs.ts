// Certificates: decoding one from PEM or DER, the facts credd decides on, and splitting PEM bundles.
import { createHash, X509Certificate as NodeX509 } from "node:crypto";
import { x509 } from "./crypto.js";
import { formatAttributes, type DnAttribute } from "./dn.js";
import { spkiSha256 } from "./keys.js";
import { readName } from "./name.js";
import { CERT_LABELS, describeLabels, encodePem, findPemBlocks, looksLikePem } from "./pem.js";
// In pem.ts (no x509 needed); still offered here, where callers looked for it.
export { splitPemCertificates } from "./pem.js";
import { RefusedError } from "../errors.js";

export interface CertInfo {
  /** Canonical PEM (LF, 64 columns, trailing newline). */
  pem: string;
  der: Buffer;
  /** Upper-case hex, no colons, without DER's sign-padding zero byte, "-" when negative: what `openssl x509 -serial` prints. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  subject: DnAttribute[];
  issuer: DnAttribute[];
  /** Encoded order, `C=FR, ST=..., CN=...`: for people, never for comparing. */
  subjectText: string;
  issuerText: string;
  spkiSha256: string;
  /** SHA-256 of the DER, upper-case hex with colons like `openssl x509 -fingerprint -sha256`. */
  sha256: string;
  /** basicConstraints says cA=TRUE. */
  isCa: boolean;
  /** Issuer equals subject and the certificate's own key verifies its signature. */
  selfSigned: boolean;
}

/** One certificate, PEM or DER. A bundle is refused here: split it with splitPemCertificates first. */
export function parseCertificate(pemOrDer: string | Buffer): CertInfo {
  const der = decodeOne(pemOrDer);
  let cert: x509.X509Certificate;
  let node: NodeX509;
  try {
    cert = new x509.X509Certificate(new Uint8Array(der));
    // OpenSSL's decoder is stricter than the JavaScript one; it also verifies signatures for us below.
    node = new NodeX509(der);
  } catch (err) {
    throw new RefusedError("parse", "the certificate is truncated or damaged: its DER does not decode as an X.509 certificate", { cause: err });
  }
  // Both decoders stop where the certificate ends and ignore what follows: junk, or the second
  // certificate of a concatenated DER "bundle". OpenSSL re-encodes what it read (`raw`), which for a
  // DER certificate is the same bytes, so anything more or different is refused.
  if (!node.raw.equals(der)) {
    const extra = der.length - node.raw.length;
    throw new RefusedError(
      "parse",
      extra > 0 && der.subarray(0, node.raw.length).equals(node.raw)
        ? `the certificate is followed by ${extra} more bytes: give one certificate per DER file, or several as PEM`
        : "the certificate is not in DER (its encoding is not the canonical one X.509 requires): export it again as DER or PEM",
    );
  }
  const subject = readName(cert.subjectName.toArrayBuffer());
  const issuer = readName(cert.issuerName.toArrayBuffer());
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  const sameName = Buffer.from(cert.subjectName.toArrayBuffer()).equals(Buffer.from(cert.issuerName.toArrayBuffer()));
  return {
    pem: encodePem("CERTIFICATE", der),
    der,
    // OpenSSL's own rendering (BN_bn2hex): "-05" for a negative serial, where the DER bytes are FB.
    serial: opensslSerial(node.serialNumber),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    subject,
    issuer,
    subjectText: formatAttributes(subject),
    issuerText: formatAttributes(issuer),
    spkiSha256: spkiSha256(cert.publicKey.rawData),
    sha256: colonHex(createHash("sha256").update(der).digest()),
    // Node's `ca` also says true for old v1 self-signed roots; only an explicit cA=TRUE counts here.
    isCa: basic?.ca === true,
    selfSigned: sameName && safeVerify(node),
  };
}

/** The key (by its SPKI hash from loadPrivateKey or createCsr) is the certificate's key. */
export function keyMatchesCertificate(keySpkiSha256: string, cert: CertInfo): boolean {
  return keySpkiSha256.toLowerCase() === cert.spkiSha256.toLowerCase();
}

function decodeOne(input: string | Buffer): Buffer {
  const empty = typeof input === "string" ? input.trim() === "" : input.length === 0;
  if (empty) throw new RefusedError("parse", "empty input: no certificate");
  const fromPem = looksLikePem(input);
  const der = fromPem ? decodePem(input) : Buffer.isBuffer(input) ? input : Buffer.from(input, "latin1");
  if (der[0] !== 0x30) {
    throw new RefusedError(
      "parse",
      fromPem
        ? "damaged PEM: the certificate block does not hold DER"
        : 'not a certificate: neither PEM (no "-----BEGIN CERTIFICATE-----" line) nor DER',
    );
  }
  return der;
}

function decodePem(input: string | Buffer): Buffer {
  const blocks = findPemBlocks(input);
  const certs = blocks.filter((b) => CERT_LABELS.has(b.label));
  if (certs.length === 0) throw new RefusedError("parse", `not a certificate (found ${describeLabels(blocks)})`);
  if (certs.length > 1) throw new RefusedError("parse", `found ${certs.length} certificates where one was expected`);
  const block = certs[0]!;
  if (!block.complete) throw new RefusedError("parse", "truncated PEM: the certificate has a BEGIN line but no END line");
  if (!block.validBase64) throw new RefusedError("parse", "damaged PEM: the certificate body is not valid base64");
  const der = Buffer.from(block.base64, "base64");
  if (der.length === 0) throw new RefusedError("parse", "empty PEM block: no certificate inside");
  return der;
}

function safeVerify(node: NodeX509): boolean {
  try {
    return node.verify(node.publicKey);
  } catch {
    return false;
  }
}

/** Node's serial (BN_bn2hex) with an even number of digits, as `openssl x509 -serial` prints it: 0 is "00". */
function opensslSerial(hex: string): string {
  const negative = hex.startsWith("-");
  const digits = hex.slice(negative ? 1 : 0).toUpperCase();
  return `${negative ? "-" : ""}${digits.length % 2 ? `0${digits}` : digits}`;
}

function colonHex(bytes: Buffer): string {
  return (bytes.toString("hex").toUpperCase().match(/../g) ?? []).join(":");
}
