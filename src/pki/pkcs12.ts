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
// pkijs and asn1js give the ASN.1 structures; the cryptography is Node's own (pbkdf2, AES, HMAC,
// randomBytes), so salts, IVs, iteration counts and encodings are ours to choose and see. pkijs's
// makeInternalValues would split the encrypted content into a constructed OCTET STRING and leave
// the randomness to whatever engine is global.
import { createCipheriv, createHash, createHmac, pbkdf2, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import * as asn1js from "asn1js";
import {
  AlgorithmIdentifier,
  Attribute,
  AuthenticatedSafe,
  CertBag,
  ContentInfo,
  DigestInfo,
  EncryptedContentInfo,
  EncryptedData,
  MacData,
  PBES2Params,
  PBKDF2Params,
  PFX,
  PKCS8ShroudedKeyBag,
  SafeBag,
  SafeContents,
} from "pkijs";
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
    throw new CreddError("CONFIG", "the PKCS#12 password must be printable ASCII (space to ~, no newline): Java refuses other characters in PBES2 keystores; change pkcs12_password_file");
  }
  if (opts.friendlyName.length === 0) throw new CreddError("INTERNAL", "the PKCS#12 friendly name (keytool alias) is empty");

  const key = loadPrivateKey(opts.keyPem);
  const leaf = parseCertificate(opts.certPem);
  if (key.spkiSha256.toLowerCase() !== leaf.spkiSha256.toLowerCase()) {
    throw new RefusedError("key-match", `the private key is not the key of certificate ${leaf.subjectText} (serial ${leaf.serial}): refusing to bundle them`);
  }
  const chain = opts.chainPems.map((pem, i) => {
    try {
      return parseCertificate(pem);
    } catch (err) {
      throw new RefusedError("parse", `chain certificate ${i + 1} for the PKCS#12 bundle: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  });

  const pkcs8Der = pkcs8DerOf(key.pkcs8Pem);
  // OpenSSL's choice: the SHA-1 of the leaf's DER, which ties the key bag to the certificate bag.
  const localKeyId = createHash("sha1").update(leaf.der).digest();
  const attributes = [
    new Attribute({ type: OID.friendlyName, values: [new asn1js.BmpString({ value: opts.friendlyName })] }),
    new Attribute({ type: OID.localKeyId, values: [new asn1js.OctetString({ valueHex: localKeyId })] }),
  ].sort((a, b) => Buffer.compare(der(a), der(b))); // a DER SET OF is in encoding order

  const certBags = [
    new SafeBag({ bagId: OID.certBag, bagValue: certBag(leaf.der), bagAttributes: attributes }),
    ...chain.map((c) => new SafeBag({ bagId: OID.certBag, bagValue: certBag(c.der) })),
  ];
  const certSafe = await pbes2Encrypt(der(new SafeContents({ safeBags: certBags })), opts.password);

  const keyEnc = await pbes2Encrypt(pkcs8Der, opts.password);
  const keyBag = new PKCS8ShroudedKeyBag({
    encryptionAlgorithm: keyEnc.algorithm,
    encryptedData: new asn1js.OctetString({ valueHex: keyEnc.ciphertext }),
  });
  const keySafe = der(new SafeContents({ safeBags: [new SafeBag({ bagId: OID.keyBag, bagValue: keyBag, bagAttributes: attributes })] }));

  const authenticatedSafe = der(new AuthenticatedSafe({
    safeContents: [
      new ContentInfo({
        contentType: OID.encryptedData,
        content: new EncryptedData({
          version: 0,
          encryptedContentInfo: new EncryptedContentInfo({
            contentType: OID.data,
            contentEncryptionAlgorithm: certSafe.algorithm,
            encryptedContent: new asn1js.OctetString({ valueHex: certSafe.ciphertext }),
            // A primitive OCTET STRING (DER); pkijs would otherwise cut it into 1 KiB pieces.
            disableSplit: true,
          }),
        }).toSchema(),
      }),
      new ContentInfo({ contentType: OID.data, content: new asn1js.OctetString({ valueHex: keySafe }) }),
    ],
  }));

  const macSalt = randomBytes(SALT_BYTES);
  const macKey = pkcs12Kdf(opts.password, macSalt, 3, ITERATIONS, 32);
  const mac = createHmac("sha256", macKey).update(authenticatedSafe).digest();

  const pfx = new PFX({
    version: 3,
    authSafe: new ContentInfo({ contentType: OID.data, content: new asn1js.OctetString({ valueHex: authenticatedSafe }) }),
    macData: new MacData({
      mac: new DigestInfo({
        digestAlgorithm: new AlgorithmIdentifier({ algorithmId: OID.sha256, algorithmParams: new asn1js.Null() }),
        digest: new asn1js.OctetString({ valueHex: mac }),
      }),
      macSalt: new asn1js.OctetString({ valueHex: macSalt }),
      iterations: ITERATIONS,
    }),
  });
  return der(pfx);
}

function certBag(certDer: Buffer): CertBag {
  return new CertBag({ certId: OID.x509Certificate, certValue: new asn1js.OctetString({ valueHex: certDer }) });
}

function der(obj: { toSchema(): asn1js.BaseBlock }): Buffer {
  return Buffer.from(obj.toSchema().toBER(false));
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
  const params = new PBES2Params({
    keyDerivationFunc: new AlgorithmIdentifier({
      algorithmId: OID.pbkdf2,
      algorithmParams: new PBKDF2Params({
        salt: new asn1js.OctetString({ valueHex: salt }),
        iterationCount: ITERATIONS,
        // No keyLength: AES-256 fixes it (OpenSSL omits it too). The PRF is spelled out with NULL
        // parameters as OpenSSL writes it; the default would be HMAC-SHA1.
        prf: new AlgorithmIdentifier({ algorithmId: OID.hmacWithSha256, algorithmParams: new asn1js.Null() }),
      }).toSchema(),
    }),
    encryptionScheme: new AlgorithmIdentifier({ algorithmId: OID.aes256Cbc, algorithmParams: new asn1js.OctetString({ valueHex: iv }) }),
  });
  return { algorithm: new AlgorithmIdentifier({ algorithmId: OID.pbes2, algorithmParams: params.toSchema() }), ciphertext };
}

/**
 * The PKCS#12 key derivation (RFC 7292 appendix B.2) with SHA-256 (u = 32, v = 64). `id` 3 makes
 * a MAC key. The password is a BMPString: UTF-16 big-endian with a two-byte zero terminator, as
 * Java (from its char[]) and OpenSSL 3 (from UTF-8 input) both form it.
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
