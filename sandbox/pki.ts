// The sandbox's certificates, made with @peculiar/x509 (no openssl needed): the "Stellantis CA" that
// signs partner CSRs at a given (virtual) time, and the server certificate its SMTP and HTTPS use.
import { randomBytes, X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../src/files/atomic.js";
import { webcrypto, x509 } from "../src/pki/crypto.js";
import { encodePem } from "../src/pki/pem.js";

const RSA: RsaHashedKeyGenParams = { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" };
const EC: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const EC_SIGN: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const DAY = 86_400_000;

/** A positive 16-byte serial in hex (high bit clear, so DER needs no padding byte). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x10;
  return b.toString("hex");
}

async function privatePem(key: CryptoKey): Promise<string> {
  return encodePem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", key));
}

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64"));
}

/** A certificate the sandbox CA signed. */
export interface SignedCert {
  pem: string;
  serial: string;
  /** SHA-256 fingerprint as openssl prints it (AB:CD:...). */
  sha256: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
}

export interface SandboxCa {
  certPem: string;
  certPath: string;
  subject: string;
  /** Signs a PKCS#10 request (PEM) as a human CA would: its subject as encoded, TLS client auth, the given dates. */
  sign(csrPem: string, validity: { notBefore: Date; notAfter: Date }): Promise<SignedCert>;
}

const CA_NAME = "C=FR, O=Sandbox Stellantis, CN=Sandbox Stellantis Partner CA";

/**
 * The CA in `dir` (ca.pem, ca.key 0600), made when missing or no longer valid at `now`, so a credd
 * state folder keeps trusting it across sandbox restarts. Valid from a year before `now` for 20 years.
 */
export async function loadOrMakeCa(dir: string, now: Date): Promise<SandboxCa & { made: boolean }> {
  const certPath = join(dir, "ca.pem");
  const keyPath = join(dir, "ca.key");
  let made = false;
  let keys: { privateKey: CryptoKey; publicKey: CryptoKey } | undefined;
  let cert: x509.X509Certificate | undefined;
  if (existsSync(certPath) && existsSync(keyPath)) {
    const c = new x509.X509Certificate(readFileSync(certPath, "utf8"));
    if (c.notBefore.getTime() <= now.getTime() && now.getTime() < c.notAfter.getTime()) {
      const privateKey = await webcrypto.subtle.importKey("pkcs8", pemBody(readFileSync(keyPath, "utf8")), RSA, true, ["sign"]);
      keys = { privateKey, publicKey: await c.publicKey.export(RSA, ["verify"], webcrypto) };
      cert = c;
    }
  }
  if (!keys || !cert) {
    const pair = (await webcrypto.subtle.generateKey(RSA, true, ["sign", "verify"])) as CryptoKeyPair;
    cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: CA_NAME,
      notBefore: new Date(now.getTime() - 365 * DAY),
      notAfter: new Date(now.getTime() + 20 * 365 * DAY),
      keys: pair,
      signingAlgorithm: RSA,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(pair.publicKey, false, webcrypto),
      ],
    });
    writeFileAtomic(keyPath, await privatePem(pair.privateKey), 0o600);
    writeFileAtomic(certPath, encodePem("CERTIFICATE", cert.rawData), 0o644);
    keys = pair;
    made = true;
  }
  const caCert = cert;
  const caKeys = keys;
  const certPem = encodePem("CERTIFICATE", caCert.rawData);
  return {
    certPem,
    certPath,
    subject: caCert.subject,
    made,
    async sign(csrPem, validity) {
      const csr = new x509.Pkcs10CertificateRequest(csrPem);
      if (!(await csr.verify(webcrypto))) throw new Error("the CSR's signature does not verify with its own key");
      const rsa = csr.publicKey.algorithm.name === "RSASSA-PKCS1-v1_5" || csr.publicKey.algorithm.name === "RSA-PSS";
      const leaf = await x509.X509CertificateGenerator.create(
        {
          serialNumber: serial(),
          subject: csr.subjectName, // as encoded in the request, attribute by attribute
          issuer: caCert.subjectName,
          notBefore: validity.notBefore,
          notAfter: validity.notAfter,
          publicKey: csr.publicKey,
          signingKey: caKeys.privateKey,
          signingAlgorithm: RSA,
          extensions: [
            new x509.BasicConstraintsExtension(false, undefined, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | (rsa ? x509.KeyUsageFlags.keyEncipherment : 0), true),
            new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
            await x509.SubjectKeyIdentifierExtension.create(csr.publicKey, false, webcrypto),
            await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false, webcrypto),
          ],
        },
        webcrypto,
      );
      const pem = encodePem("CERTIFICATE", leaf.rawData);
      const node = new X509Certificate(pem);
      return {
        pem,
        serial: node.serialNumber.toUpperCase(),
        sha256: node.fingerprint256,
        subject: leaf.subject,
        notBefore: leaf.notBefore,
        notAfter: leaf.notAfter,
      };
    },
  };
}

/** The certificate the sandbox's SMTP and HTTPS servers present, and the CA credd must trust for it. */
export interface ServerTls {
  caPem: string;
  caPath: string;
  certPem: string;
  keyPem: string;
}

/**
 * A server CA and a certificate for 127.0.0.1 / localhost in `dir`, made when missing or expiring
 * within a day. TLS checks these against real time (Node's), so their dates are real, not virtual.
 */
export async function loadOrMakeServerTls(dir: string): Promise<ServerTls> {
  const caPath = join(dir, "server-ca.pem");
  const certPath = join(dir, "server.pem");
  const keyPath = join(dir, "server.key");
  if ([caPath, certPath, keyPath].every((p) => existsSync(p))) {
    const certPem = readFileSync(certPath, "utf8");
    const c = new X509Certificate(certPem);
    if (Date.parse(c.validTo) - Date.now() > DAY && Date.parse(c.validFrom) <= Date.now()) {
      return { caPem: readFileSync(caPath, "utf8"), caPath, certPem, keyPem: readFileSync(keyPath, "utf8") };
    }
  }
  const made = await makeServerTls("credd sandbox server CA");
  writeFileAtomic(keyPath, made.keyPem, 0o600);
  writeFileAtomic(certPath, made.certPem, 0o644);
  writeFileAtomic(caPath, made.caPem, 0o644);
  return { ...made, caPath };
}

/** A server CA named `caName` and a certificate for 127.0.0.1 / localhost, in memory. */
export async function makeServerTls(caName = "credd test CA"): Promise<Omit<ServerTls, "caPath">> {
  const now = Date.now();
  const caKeys = (await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"])) as CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name: `CN=${caName}`,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 3 * 365 * DAY),
      keys: caKeys,
      signingAlgorithm: EC_SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, webcrypto),
      ],
    },
    webcrypto,
  );
  const keys = (await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial(),
      subject: "CN=localhost",
      issuer: ca.subjectName,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 2 * 365 * DAY),
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: EC_SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([
          { type: "dns", value: "localhost" },
          { type: "ip", value: "127.0.0.1" },
        ]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
        await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false, webcrypto),
      ],
    },
    webcrypto,
  );
  return {
    caPem: encodePem("CERTIFICATE", ca.rawData),
    certPem: encodePem("CERTIFICATE", cert.rawData),
    keyPem: await privatePem(keys.privateKey),
  };
}
