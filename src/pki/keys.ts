// Key pairs: generating them, exporting and loading private keys, and the SPKI hash that ties a key to its CSR and certificate.
import { createHash, createPrivateKey, createPublicKey, generateKeyPair as nodeGenerateKeyPair, KeyObject, sign, verify } from "node:crypto";
import { promisify } from "node:util";
import { describeLabels, encodePem, findPemBlocks, looksLikePem, type PemBlock } from "./pem.js";
import { RefusedError } from "../errors.js";
import type { KeySpec } from "../config/types.js";

/** A key pair as Node (OpenSSL) holds it. */
export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** OpenSSL's names for the curves credd generates, keyed by the names the config uses. */
export const CURVE_OPENSSL_NAMES = { "P-256": "prime256v1", "P-384": "secp384r1" } as const;

const generate = promisify(nodeGenerateKeyPair);

/**
 * A new key pair from Node's own crypto (OpenSSL, on the thread pool): RSA with exponent 65537,
 * or EC on a named curve. KeyObjects are what the rest of credd holds (key files, TLS, the
 * checks); createCsr (pki/csr.ts) imports them into x509's WebCrypto provider only to sign.
 */
export async function generateKeyPair(spec: KeySpec): Promise<KeyPair> {
  if (spec.type === "rsa") return generate("rsa", { modulusLength: spec.bits, publicExponent: 0x10001 });
  return generate("ec", { namedCurve: CURVE_OPENSSL_NAMES[spec.curve] });
}

/** Unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"): the file is protected by 0600, not a passphrase a daemon would need. */
export function exportPrivateKeyPem(keys: KeyPair): string {
  return encodePem("PRIVATE KEY", keys.privateKey.export({ type: "pkcs8", format: "der" }));
}

/**
 * Hex SHA-256 of the DER SubjectPublicKeyInfo. Bytes are first re-encoded through Node (OpenSSL)
 * so that two encoders' spellings of the same key (e.g. RSA parameters NULL or absent) hash alike;
 * a private KeyObject hashes as its public half. This is what "the same key pair" means across
 * a private key, a CSR and a certificate.
 */
export function spkiSha256(key: KeyObject | ArrayBuffer | ArrayBufferView): string {
  let der: Buffer;
  if (key instanceof KeyObject) {
    const pub = key.type === "private" ? createPublicKey(key) : key;
    der = pub.export({ type: "spki", format: "der" });
  } else {
    const raw = ArrayBuffer.isView(key) ? Buffer.from(key.buffer, key.byteOffset, key.byteLength) : Buffer.from(key);
    try {
      der = createPublicKey({ key: raw, format: "der", type: "spki" }).export({ type: "spki", format: "der" });
    } catch {
      // An algorithm OpenSSL cannot load cannot be one of ours either; hash the bytes as given.
      der = raw;
    }
  }
  return createHash("sha256").update(der).digest("hex");
}

export interface LoadedPrivateKey {
  /** The key re-encoded as unencrypted PKCS#8 PEM, whatever form it came in. */
  pkcs8Pem: string;
  spkiSha256: string;
  type: "rsa" | "ec";
  bits?: number;
  /** "P-256", "P-384", "P-521", or OpenSSL's name for another curve. */
  curve?: string;
}

const CURVES: Record<string, string> = { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521" };
const KEY_LABELS = new Set(["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]);
const PASSPHRASE_HINT = "give its passphrase with --passphrase-file FILE";

/**
 * Reads a private key made by anyone: PKCS#1, SEC1, PKCS#8, encrypted PKCS#8 or legacy encrypted
 * PEM (Proc-Type header), or DER. Refusals say what is wrong and what to do, and never quote the
 * key or the passphrase: they end up in logs and emails.
 */
export function loadPrivateKey(pem: string | Buffer, passphrase?: string): LoadedPrivateKey {
  const key = decodeKeyInput(pem, passphrase);
  const kind = key.asymmetricKeyType;
  if (kind !== "rsa" && kind !== "ec") {
    throw new RefusedError("key", `unsupported key type ${kind ?? "unknown"}: credd uses RSA or EC (P-256, P-384) keys`);
  }
  selfTest(key);
  const details = key.asymmetricKeyDetails ?? {};
  const loaded: LoadedPrivateKey = {
    pkcs8Pem: key.export({ type: "pkcs8", format: "pem" }).toString(),
    spkiSha256: spkiSha256(key),
    type: kind,
  };
  if (kind === "rsa" && details.modulusLength !== undefined) loaded.bits = details.modulusLength;
  if (kind === "ec" && details.namedCurve !== undefined) loaded.curve = CURVES[details.namedCurve] ?? details.namedCurve;
  return loaded;
}

function decodeKeyInput(input: string | Buffer, passphrase: string | undefined): KeyObject {
  if (input.length === 0 || (typeof input === "string" && input.trim() === "")) {
    throw new RefusedError("key", "the key file is empty: give the PEM private key that goes with the certificate");
  }
  if (!looksLikePem(input)) return decodeDerKey(Buffer.isBuffer(input) ? input : Buffer.from(input, "latin1"), passphrase);

  const blocks = findPemBlocks(input);
  const keyBlocks = blocks.filter((b) => KEY_LABELS.has(b.label));
  if (keyBlocks.length === 0) {
    throw new RefusedError(
      "key",
      `not a private key (found ${describeLabels(blocks)}): give the file with "BEGIN PRIVATE KEY" or "BEGIN RSA/EC PRIVATE KEY"`,
    );
  }
  if (keyBlocks.length > 1) throw new RefusedError("key", `found ${keyBlocks.length} private keys in one file: give exactly one`);
  const block = keyBlocks[0]!;
  if (!block.complete) throw new RefusedError("key", `the private key is truncated: "BEGIN ${block.label}" has no END line`);
  if (!block.validBase64) throw new RefusedError("key", "the private key is damaged: its PEM body is not valid base64");

  const encrypted = isEncrypted(block);
  if (encrypted && passphrase === undefined) throw new RefusedError("key", `the key is encrypted: ${PASSPHRASE_HINT}`);
  try {
    return createPrivateKey({ key: block.text, format: "pem", ...(passphrase !== undefined ? { passphrase } : {}) });
  } catch (err) {
    // A wrong passphrase on legacy PEM sometimes passes the padding check and fails later as
    // "unsupported", so for an encrypted key any failure most likely means the passphrase.
    if (encrypted)
      throw new RefusedError("key", `wrong passphrase for the encrypted private key (or the key is damaged): ${PASSPHRASE_HINT}`, { cause: err });
    throw new RefusedError("key", `the private key could not be read (${opensslReason(err)}): it is damaged or in an unsupported format`, {
      cause: err,
    });
  }
}

function isEncrypted(block: PemBlock): boolean {
  return block.label === "ENCRYPTED PRIVATE KEY" || block.headers.some(([k, v]) => k === "Proc-Type" && v.includes("ENCRYPTED"));
}

/** DER has no label, so try the three encodings in turn; an encrypted PKCS#8 DER needs the passphrase. */
function decodeDerKey(der: Buffer, passphrase: string | undefined): KeyObject {
  if (der[0] !== 0x30) throw new RefusedError("key", 'not a private key: neither PEM (no "-----BEGIN" line) nor DER');
  const attempts = [
    { type: "pkcs8" as const, ...(passphrase !== undefined ? { passphrase } : {}) },
    { type: "pkcs1" as const },
    { type: "sec1" as const },
  ];
  for (const a of attempts) {
    try {
      return createPrivateKey({ key: der, format: "der", ...a });
    } catch {
      // try the next encoding
    }
  }
  throw new RefusedError(
    "key",
    "not a private key: DER data that is not a PKCS#8, PKCS#1 or SEC1 key (if it is an encrypted key, check the passphrase)",
  );
}

/** OpenSSL does not check that the parts of a loaded key belong together; one signature does. */
function selfTest(key: KeyObject): void {
  const data = Buffer.from("credd key self-test");
  const pub = createPublicKey(key);
  if (!verify("sha256", data, pub, sign("sha256", data, key))) {
    throw new RefusedError("key", "the private key is damaged: it fails a sign/verify self-test");
  }
}

/** The OpenSSL reason ("bad decrypt", "unsupported") without anything from the input. */
function opensslReason(err: unknown): string {
  const e = err as { reason?: unknown; code?: unknown };
  if (typeof e.reason === "string") return e.reason;
  if (typeof e.code === "string") return e.code;
  return "unknown error";
}
