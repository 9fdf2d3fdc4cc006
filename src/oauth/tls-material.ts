// The client side of mutual TLS for one certificate version: key, certificate + intermediates, trusted CAs.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Config, CredentialConfig } from "../config/types.js";
import { readFileFor } from "../files/file-errors.js";
import { credentialPaths } from "../files/layout.js";
import { splitPemCertificates } from "../pki/pem.js";
import type { TlsMaterial } from "./http.js";

/** The Stellantis CA file's certificates, trusted besides the system roots for the IDP and API hosts. */
export function stellantisCaPems(config: Config): string[] {
  if (!config.stellantis.ca_file) return [];
  const file = config.stellantis.ca_file;
  const text = readFileFor(
    file,
    {
      what: `stellantis.ca_file (${config.file}), the Stellantis CA certificate trusted for the IDP and API hosts`,
      fix: "save the Stellantis CA certificate there as PEM, or correct stellantis.ca_file; credd check-config checks every file the config names",
      code: "CONFIG",
    },
    "utf8",
  );
  return splitPemCertificates(text);
}

/** TLS material for archive version `version` (the live one, or a new one being probed). */
export function tlsForVersion(config: Config, cred: CredentialConfig, version: number): TlsMaterial {
  const p = credentialPaths(config.state_dir, cred.name);
  const read = (f: string) =>
    readFileFor(
      f,
      {
        what: `${cred.name}'s certificate version ${version} (archive/)`,
        fix: `credd status ${cred.name} shows which version is live; credd rollback ${cred.name} or a new renewal restores a complete pair`,
      },
      "utf8",
    );
  const cert = read(p.cert(version));
  let chain = "";
  try {
    chain = readFileSync(p.chain(version), "utf8");
  } catch {
    /* no chain file: the CA alone signed it */
  }
  // Send the leaf and its intermediates; the self-signed root adds nothing for the server.
  const intermediates = splitPemCertificates(chain).filter((pem) => !isSelfSignedPem(pem));
  return {
    keyPem: read(p.key(version)),
    certPem: [cert.trim(), ...intermediates.map((s) => s.trim())].join("\n") + "\n",
    caPems: stellantisCaPems(config),
  };
}

function isSelfSignedPem(pem: string): boolean {
  try {
    const c = new X509Certificate(pem);
    return c.subject === c.issuer && c.verify(c.publicKey);
  } catch {
    return false;
  }
}
