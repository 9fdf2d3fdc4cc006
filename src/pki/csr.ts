// The CSR Stellantis signs: the exact DN, SHA-256, no extensions; and reading one back.
import { x509 } from "./crypto.js";
import { buildName, readName, type DnAttribute } from "./dn.js";
import { spkiSha256 } from "./keys.js";
import { describeLabels, encodePem, findPemBlocks, looksLikePem } from "./pem.js";
import { RefusedError } from "../errors.js";
import type { KeySpec, StellantisDn } from "../config/types.js";

/**
 * SHA-256 for every key kind. For P-384, RFC 5480 only recommends pairing with SHA-384; a CSR's
 * signature just proves possession of the key to the CA, ecdsa-with-SHA256 is accepted everywhere,
 * and one hash for all credentials is one thing fewer to get wrong with a human CA.
 */
function signingAlgorithm(spec: KeySpec): Algorithm | EcdsaParams {
  return spec.type === "rsa" ? { name: "RSASSA-PKCS1-v1_5" } : { name: "ECDSA", hash: "SHA-256" };
}

export interface CreatedCsr {
  pem: string;
  spkiSha256: string;
}

/** A signed PKCS#10 request for `dn`; Stellantis asks for no extensions, so none are added. */
export async function createCsr(keys: CryptoKeyPair, spec: KeySpec, dn: StellantisDn): Promise<CreatedCsr> {
  const hash = (keys.privateKey.algorithm as Partial<RsaHashedKeyAlgorithm>).hash?.name;
  // x509 lets the private key's own algorithm override signingAlgorithm, so an RSA key generated
  // for another hash would silently sign with it: refuse instead of sending a surprise to the CA.
  if (spec.type === "rsa" && hash !== "SHA-256") {
    throw new RefusedError("key", `the RSA key was generated for ${hash ?? "no hash"}, not SHA-256: generate it with generateKeyPair`);
  }
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: buildName(dn),
    keys,
    signingAlgorithm: signingAlgorithm(spec),
  });
  return {
    // Our own PEM writer: LF endings, 64 columns, trailing newline, whatever the library does.
    pem: encodePem("CERTIFICATE REQUEST", csr.rawData),
    spkiSha256: spkiSha256(csr.publicKey.rawData),
  };
}

export interface CsrInfo {
  subject: DnAttribute[];
  spkiSha256: string;
}

/** Subject and key hash of a CSR (PEM with "CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST"). */
export function readCsr(pem: string): CsrInfo {
  return describe(decodeCsr(pem));
}

/** True when the CSR's signature verifies with its own public key (proof of possession). */
export async function verifyCsr(pem: string): Promise<boolean> {
  return decodeCsr(pem).verify();
}

function describe(csr: x509.Pkcs10CertificateRequest): CsrInfo {
  return { subject: readName(csr.subjectName), spkiSha256: spkiSha256(csr.publicKey.rawData) };
}

function decodeCsr(pem: string): x509.Pkcs10CertificateRequest {
  if (pem.trim() === "") throw new RefusedError("parse", "the CSR is empty");
  if (!looksLikePem(pem)) throw new RefusedError("parse", 'not a CSR: no "-----BEGIN CERTIFICATE REQUEST-----" line');
  const blocks = findPemBlocks(pem);
  const block = blocks.find((b) => b.label === "CERTIFICATE REQUEST" || b.label === "NEW CERTIFICATE REQUEST");
  if (!block) throw new RefusedError("parse", `not a CSR (found ${describeLabels(blocks)})`);
  if (!block.complete) throw new RefusedError("parse", "the CSR is truncated: its BEGIN line has no END line");
  if (!block.validBase64) throw new RefusedError("parse", "the CSR is damaged: its PEM body is not valid base64");
  try {
    return new x509.Pkcs10CertificateRequest(Buffer.from(block.base64, "base64"));
  } catch (err) {
    throw new RefusedError("parse", "the CSR is damaged: its DER does not decode as PKCS#10", { cause: err });
  }
}
