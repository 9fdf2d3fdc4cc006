// PKCS#12 (PFX v3) bundles for Java consumers: key + certificate + chain under one password,
// readable as-is by keytool (Java 17) and OpenSSL 3 without `-legacy`.
//
// Layout (what OpenSSL 3 and Java 17 write by default, so both read it):
//   PFX v3
//     authSafe: data → AuthenticatedSafe
//       [0] encryptedData (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC) → SafeContents
//             certBag leaf  {friendlyName, localKeyId}
//             certBag chain certs (no attributes: Java then files them under the key's chain, not as trusted entries)
//       [1] data → SafeContents
//             pkcs8ShroudedKeyBag (PBES2, same algorithms) {friendlyName, localKeyId}
//     macData: HMAC-SHA256, key from the PKCS#12 KDF (RFC 7292 B.2), as OpenSSL 3 and Java 17 do.
//
// @peculiar's ASN.1 schemas (the stack @peculiar/x509 already loads) give the structures; the
// cryptography is Node's own (pbkdf2, AES, HMAC, randomBytes), so salts, IVs, iteration counts and
// encodings are ours to choose and see. Three structures have no @peculiar class (CMS EncryptedData,
// PBES2-params, PBKDF2-params): they are declared below with @peculiar/asn1-schema, not hand-encoded.
import { createCipheriv, createHash, createHmac, pbkdf2, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { EncryptedContent, EncryptedContentInfo, ContentInfo } from "@peculiar/asn1-cms";
import { AuthenticatedSafe, CertBag, MacData, PFX, PKCS12Attribute, PKCS8ShroudedKeyBag, SafeBag, SafeContents } from "@peculiar/asn1-pfx";
import { EncryptedData as EncryptedKey } from "@peculiar/asn1-pkcs8";
import { FriendlyName, LocalKeyId } from "@peculiar/asn1-pkcs9";
import { DigestInfo } from "@peculiar/asn1-rsa";
import { AsnConvert, AsnProp, AsnPropTypes, OctetString } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier } from "@peculiar/asn1-x509";
import { parseCertificate } from "./certs.js";
import { loadPrivateKey } from "./keys.js";
import { findPemBlocks } from "./pem.js";
import { CreddError, RefusedError } from "../errors.js";

const pbkdf2Async = promisify(pbkdf2);

/** OpenSSL's default is 2048; 10000 costs a few milliseconds per bundle and we build one per rotation. */
const ITERATIONS = 10_000;
const SALT_BYTES = 16;

const OID = {
  data: "1.2.840.113549.1.7.1",
  encryptedData: "1.2.840.113549.1.7.6",
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  hmacWithSha256: "1.2.840.113549.2.9",
  aes256Cbc: "2.16.840.1.101.3.4.1.42",
  sha256: "2.16.840.1.101.3.4.2.1",
  keyBag: "1.2.840.113549.1.12.10.1.2", // pkcs8ShroudedKeyBag
  certBag: "1.2.840.113549.1.12.10.1.3",
  x509Certificate: "1.2.840.113549.1.9.22.1",
  friendlyName: "1.2.840.113549.1.9.20",
  localKeyId: "1.2.840.113549.1.9.21",
} as const;

export interface Pkcs12Options {
  /** Unencrypted private key PEM (PKCS#8; PKCS#1/SEC1 are accepted too), RSA or EC. */
  keyPem: string;
  /** The leaf certificate for that key. */
  certPem: string;
  /** Issuer certificates, leaf's issuer first; each becomes its own CertBag. */
  chainPems: string[];
  password: string;
  /** Becomes the keytool alias of the one PrivateKeyEntry. */
  friendlyName: string;
}

/**
 * A PFX v3 with one key, its certificate and the chain. Refuses a key that is not the
 * certificate's key (a Java service would only fail at its first TLS handshake). Errors never
 * quote the key or the password.
 */
export async function buildPkcs12(opts: Pkcs12Options): Promise<Buffer> {
  if (opts.password.length === 0) {
    // An empty password means "no MAC, no encryption" to some readers and a MAC over two zero bytes to others.
    throw new CreddError("CONFIG", "the PKCS#12 password is empty: put a non-empty password in pkcs12_password_file");
  }
  if (!/^[\x20-\x7e]+$/.test(opts.password)) {
    // Java's PBES2 keys (com.sun.crypto.provider.PBEKey) throw "Password is not ASCII" for
    // anything outside 0x20-0x7E, so keytool could never open the bundle. Refuse it here, naming
    // the rule rather than the character. A trailing newline from the password file lands here too.
    throw new CreddError(
      "CONFIG",
      "the PKCS#12 password must be printable ASCII (space to ~, no newline): Java refuses other characters in PBES2 keystores; change pkcs12_password_file",
    );
  }
  if (opts.friendlyName.length === 0) throw new CreddError("INTERNAL", "the PKCS#12 friendly name (keytool alias) is empty");

  const key = loadPrivateKey(opts.keyPem);
  const leaf = parseCertificate(opts.certPem);
  if (key.spkiSha256.toLowerCase() !== leaf.spkiSha256.toLowerCase()) {
    throw new RefusedError(
      "key-match",
      `the private key is not the key of certificate ${leaf.subjectText} (serial ${leaf.serial}): refusing to bundle them`,
    );
  }
  const chain = opts.chainPems.map((pem, i) => {
    try {
      return parseCertificate(pem);
    } catch (err) {
      throw new RefusedError("parse", `chain certificate ${i + 1} for the PKCS#12 bundle: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
  });

  const pkcs8Der = pkcs8DerOf(key.pkcs8Pem);
  // OpenSSL's choice: the SHA-1 of the leaf's DER, which ties the key bag to the certificate bag.
  const localKeyId = createHash("sha1").update(leaf.der).digest();
  const attributes = [attribute(OID.friendlyName, new FriendlyName(opts.friendlyName)), attribute(OID.localKeyId, new LocalKeyId(localKeyId))].sort(
    (a, b) => Buffer.compare(der(a), der(b)),
  ); // a DER SET OF is in encoding order; the schema writes it as given

  const certBags = [
    new SafeBag({ bagId: OID.certBag, bagValue: certBag(leaf.der), bagAttributes: attributes }),
    ...chain.map((c) => new SafeBag({ bagId: OID.certBag, bagValue: certBag(c.der) })),
  ];
  const certSafe = await pbes2Encrypt(der(new SafeContents(certBags)), opts.password);

  const keyEnc = await pbes2Encrypt(pkcs8Der, opts.password);
  const keyBag = new PKCS8ShroudedKeyBag({ encryptionAlgorithm: keyEnc.algorithm, encryptedData: new EncryptedKey(keyEnc.ciphertext) });
  const keySafe = der(new SafeContents([new SafeBag({ bagId: OID.keyBag, bagValue: bytes(der(keyBag)), bagAttributes: attributes })]));

  const authenticatedSafe = der(
    new AuthenticatedSafe([
      new ContentInfo({
        contentType: OID.encryptedData,
        content: bytes(
          der(
            new CmsEncryptedData({
              version: 0,
              encryptedContentInfo: new EncryptedContentInfo({
                contentType: OID.data,
                contentEncryptionAlgorithm: certSafe.algorithm,
                // `value`: a primitive [0] OCTET STRING (DER), not the constructed form cut into pieces.
                encryptedContent: new EncryptedContent({ value: new OctetString(certSafe.ciphertext) }),
              }),
            }),
          ),
        ),
      }),
      new ContentInfo({ contentType: OID.data, content: octetString(keySafe) }),
    ]),
  );

  const macSalt = randomBytes(SALT_BYTES);
  const macKey = pkcs12Kdf(opts.password, macSalt, 3, ITERATIONS, 32);
  const mac = createHmac("sha256", macKey).update(authenticatedSafe).digest();

  const pfx = new PFX({
    version: 3,
    authSafe: new ContentInfo({ contentType: OID.data, content: octetString(authenticatedSafe) }),
    macData: new MacData({
      mac: new DigestInfo({ digestAlgorithm: algorithm(OID.sha256, null), digest: new OctetString(mac) }),
      macSalt: new OctetString(macSalt),
      iterations: ITERATIONS,
    }),
  });
  return der(pfx);
}

// Structures @peculiar has no class for, declared with its schema API. AsnProp is a legacy
// decorator; it is applied as a plain call because tsconfig.json leaves experimentalDecorators off.

/** CMS EncryptedData (RFC 5652 section 8), without unprotectedAttrs. */
class CmsEncryptedData {
  version = 0;
  encryptedContentInfo = new EncryptedContentInfo();
  constructor(params: Partial<CmsEncryptedData> = {}) {
    Object.assign(this, params);
  }
}
AsnProp({ type: AsnPropTypes.Integer })(CmsEncryptedData.prototype, "version");
AsnProp({ type: EncryptedContentInfo })(CmsEncryptedData.prototype, "encryptedContentInfo");

/** PBKDF2-params (RFC 8018 A.2) with the `specified` salt; no keyLength (AES-256 fixes it, OpenSSL omits it too). */
class Pbkdf2Params {
  salt = new OctetString();
  iterationCount = 0;
  prf = new AlgorithmIdentifier();
  constructor(params: Partial<Pbkdf2Params> = {}) {
    Object.assign(this, params);
  }
}
AsnProp({ type: OctetString })(Pbkdf2Params.prototype, "salt");
AsnProp({ type: AsnPropTypes.Integer })(Pbkdf2Params.prototype, "iterationCount");
AsnProp({ type: AlgorithmIdentifier })(Pbkdf2Params.prototype, "prf");

/** PBES2-params (RFC 8018 A.4). */
class Pbes2Params {
  keyDerivationFunc = new AlgorithmIdentifier();
  encryptionScheme = new AlgorithmIdentifier();
  constructor(params: Partial<Pbes2Params> = {}) {
    Object.assign(this, params);
  }
}
AsnProp({ type: AlgorithmIdentifier })(Pbes2Params.prototype, "keyDerivationFunc");
AsnProp({ type: AlgorithmIdentifier })(Pbes2Params.prototype, "encryptionScheme");

function der(value: unknown): Buffer {
  return Buffer.from(AsnConvert.serialize(value));
}

/** The ArrayBuffer the schemas' ANY fields take: a copy, since a Buffer may be a view into Node's shared pool. */
function bytes(buf: Buffer): ArrayBuffer {
  return Uint8Array.from(buf).buffer;
}

function octetString(content: Buffer): ArrayBuffer {
  return bytes(der(new OctetString(content)));
}

/** `parameters: null` writes NULL (as OpenSSL does for HMAC and digests); undefined leaves them out. */
function algorithm(oid: string, parameters: ArrayBuffer | null | undefined): AlgorithmIdentifier {
  return new AlgorithmIdentifier({ algorithm: oid, ...(parameters === undefined ? {} : { parameters }) });
}

function attribute(oid: string, value: FriendlyName | LocalKeyId): PKCS12Attribute {
  // PKCS12Attribute's constructor ignores its argument (asn1-pfx 2.11.1), so the fields are set here.
  const attr = new PKCS12Attribute();
  attr.attrId = oid;
  attr.attrValues = [bytes(der(value))];
  return attr;
}

function certBag(certDer: Buffer): ArrayBuffer {
  return bytes(der(new CertBag({ certId: OID.x509Certificate, certValue: octetString(certDer) })));
}

function pkcs8DerOf(pkcs8Pem: string): Buffer {
  const block = findPemBlocks(pkcs8Pem).find((b) => b.label === "PRIVATE KEY");
  if (!block) throw new CreddError("INTERNAL", "re-encoded private key has no PRIVATE KEY block");
  return Buffer.from(block.base64, "base64");
}

interface Encrypted {
  algorithm: AlgorithmIdentifier;
  ciphertext: Buffer;
}

/**
 * PBES2 (RFC 8018) with PBKDF2-HMAC-SHA256 and AES-256-CBC. PBKDF2 takes the password as UTF-8
 * bytes, which is what OpenSSL passes through and what Java's PBKDF2 makes of its char[].
 */
async function pbes2Encrypt(plaintext: Buffer, password: string): Promise<Encrypted> {
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(16);
  const key = await pbkdf2Async(Buffer.from(password, "utf8"), salt, ITERATIONS, 32, "sha256");
  const cipher = createCipheriv("aes-256-cbc", key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const params = new Pbes2Params({
    keyDerivationFunc: algorithm(
      OID.pbkdf2,
      bytes(
        der(
          new Pbkdf2Params({
            salt: new OctetString(salt),
            iterationCount: ITERATIONS,
            // The PRF is spelled out with NULL parameters as OpenSSL writes it; the default would be HMAC-SHA1.
            prf: algorithm(OID.hmacWithSha256, null),
          }),
        ),
      ),
    ),
    encryptionScheme: algorithm(OID.aes256Cbc, octetString(iv)),
  });
  return { algorithm: algorithm(OID.pbes2, bytes(der(params))), ciphertext };
}

/**
 * The PKCS#12 key derivation (RFC 7292 appendix B.2) with SHA-256 (u = 32, v = 64). `id` 3 makes
 * a MAC key. The password is a BMPString: UTF-16 big-endian with a two-byte zero terminator, as
 * Java (from its char[]) and OpenSSL 3 (from UTF-8 input) both form it. Written here because
 * neither Node's crypto nor any @peculiar package offers this KDF (Node has PBKDF2, HKDF, scrypt);
 * test/integration/pkcs12.test.ts checks it against `openssl kdf PKCS12KDF`.
 */
export function pkcs12Kdf(password: string, salt: Buffer, id: 1 | 2 | 3, iterations: number, length: number): Buffer {
  const u = 32;
  const v = 64;
  const pwd = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) pwd.writeUInt16BE(password.charCodeAt(i), i * 2);
  const fill = (src: Buffer): Buffer => {
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!;
    return out;
  };
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([fill(salt), fill(pwd)]);
  const blocks: Buffer[] = [];
  for (let n = 0; n < Math.ceil(length / u); n++) {
    let A = createHash("sha256").update(D).update(I).digest();
    for (let r = 1; r < iterations; r++) A = createHash("sha256").update(A).digest();
    blocks.push(A);
    // I_j = (I_j + B + 1) mod 2^(8v) for every v-byte block of I, B being A repeated to v bytes.
    const B = fill(A);
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(blocks).subarray(0, length);
}
