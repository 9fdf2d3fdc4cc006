// The CSR Stellantis signs: the exact DN, SHA-256, no attributes or extensions, built by @peculiar/x509's
// Pkcs10CertificateRequestGenerator from a key pair made by Node's crypto.
import { createPublicKey, type KeyObject } from "node:crypto";
import { webcrypto, x509 } from "./crypto.js";
import { CURVE_OPENSSL_NAMES, spkiSha256, type KeyPair } from "./keys.js";
import { subjectName } from "./name.js";
import { encodePem } from "./pem.js";
import { RefusedError } from "../errors.js";
import type { KeySpec, StellantisDn } from "../config/types.js";

/**
 * SHA-256 for every key kind. For P-384, RFC 5480 only recommends pairing with SHA-384; a CSR's
 * signature just proves possession of the key to the CA, ecdsa-with-SHA256 is accepted everywhere,
 * and one hash for all credentials is one thing fewer to get wrong with a human CA. x509 writes the
 * AlgorithmIdentifier parameters as RFC 4055 and RFC 5758 want: NULL for RSA, absent for ECDSA.
 */
function algorithms(spec: KeySpec): { key: RsaHashedImportParams | EcKeyImportParams; signing: RsaHashedImportParams | EcdsaParams } {
  if (spec.type === "rsa") {
    const rsa = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    return { key: rsa, signing: rsa };
  }
  return { key: { name: "ECDSA", namedCurve: spec.curve }, signing: { name: "ECDSA", hash: "SHA-256" } };
}

export interface CreatedCsr {
  pem: string;
  spkiSha256: string;
}

/**
 * A signed PKCS#10 request for `dn`. Stellantis asks for no extensions, so the attributes are an
 * empty `[0]`: the same bytes as openssl writes without `-addext`.
 */
export async function createCsr(keys: KeyPair, spec: KeySpec, dn: StellantisDn): Promise<CreatedCsr> {
  checkKeyMatchesSpec(keys.privateKey, spec);
  const name = subjectName(dn);
  // The public key from the private one, so a mismatched pair cannot yield a CSR that fails to verify.
  const spki = createPublicKey(keys.privateKey).export({ type: "spki", format: "der" });
  const alg = algorithms(spec);
  // Node's KeyObjects handed to the WebCrypto provider x509 signs with; the private key never leaves memory.
  const pair = {
    privateKey: await webcrypto.subtle.importKey("pkcs8", keys.privateKey.export({ type: "pkcs8", format: "der" }), alg.key, false, ["sign"]),
    publicKey: await webcrypto.subtle.importKey("spki", spki, alg.key, true, ["verify"]),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name, keys: pair, signingAlgorithm: alg.signing }, webcrypto);
  return { pem: encodePem("CERTIFICATE REQUEST", Buffer.from(csr.rawData)), spkiSha256: spkiSha256(spki) };
}

/** The key must be what the config asks for: a CSR for another size or curve would surprise the CA and the checks after it. */
function checkKeyMatchesSpec(key: KeyObject, spec: KeySpec): void {
  const details = key.asymmetricKeyDetails ?? {};
  const have =
    key.asymmetricKeyType === "rsa"
      ? `RSA ${details.modulusLength ?? "?"}`
      : key.asymmetricKeyType === "ec"
        ? `EC ${details.namedCurve ?? "?"}`
        : (key.asymmetricKeyType ?? "unknown");
  const ok =
    spec.type === "rsa"
      ? key.asymmetricKeyType === "rsa" && details.modulusLength === spec.bits
      : key.asymmetricKeyType === "ec" && details.namedCurve === CURVE_OPENSSL_NAMES[spec.curve];
  if (key.type !== "private" || !ok) {
    const want = spec.type === "rsa" ? `RSA ${spec.bits}` : `EC ${spec.curve}`;
    throw new RefusedError(
      "key",
      `the key is ${key.type === "private" ? have : `a ${key.type} key`}, not the ${want} private key the credential asks for: generate it with generateKeyPair`,
    );
  }
}
