// The partner's surroundings on loopback: the Stellantis CA (openssl), the IDP (test/helpers/stellantis.ts), an SMTP server.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dnFor } from "../../test/helpers/credd.js";
import { makeCa, subjFromDn, type TestCa } from "../../test/helpers/openssl.js";
import { startSmtpServer, type TestSmtpServer } from "../../test/helpers/smtp.js";
import { startFakeStellantis, type FakeStellantis } from "../../test/helpers/stellantis.js";
import { mustRun, mustRunAsync } from "./proc.js";

export interface Partner {
  ca: TestCa;
  idp: FakeStellantis;
  smtp: TestSmtpServer;
  /** The Stellantis CA plus the IDP's server CA: what `stellantis.ca_file` points at. */
  stellantisCaFile: string;
  close(): Promise<void>;
}

export async function startPartner(dir: string): Promise<Partner> {
  const ca = makeCa(dir);
  const idp = await startFakeStellantis({ clientCaPem: ca.certPem });
  idp.acceptAllFromCa = true; // every certificate the CA signed is registered at the IDP
  const smtp = await startSmtpServer();
  const stellantisCaFile = join(dir, "stellantis-ca.pem");
  writeFileSync(stellantisCaFile, ca.certPem + idp.serverCaPem);
  return {
    ca,
    idp,
    smtp,
    stellantisCaFile,
    async close() {
      await smtp.stop();
      await idp.close();
    },
  };
}

const openssl = (args: string[]) => mustRunAsync("openssl", args);

/**
 * Hand-made certificates for many MZPs, signed by the CA (clientAuth, 365 days), sharing one RSA key
 * so that making 100 of them takes seconds rather than 100 key generations.
 */
export async function makeCertsFor(dir: string, ca: TestCa, mzps: string[]): Promise<{ keyPath: string; certPaths: string[] }> {
  mkdirSync(dir, { recursive: true });
  const keyPath = join(dir, "shared.key");
  mustRun("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keyPath]);
  const ext = join(dir, "leaf.cnf");
  writeFileSync(ext, "[leaf]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = clientAuth\n");
  const req = join(dir, "req.cnf");
  writeFileSync(req, "[req]\ndistinguished_name = dn\nprompt = no\nstring_mask = utf8only\n[dn]\n");
  const certPaths = mzps.map((m) => join(dir, `${m}.pem`));
  let next = 0;
  const worker = async () => {
    while (next < mzps.length) {
      const i = next++;
      const csr = join(dir, `${mzps[i]}.csr`);
      await openssl(["req", "-new", "-config", req, "-utf8", "-key", keyPath, "-subj", subjFromDn(dnFor(mzps[i]!)), "-sha256", "-out", csr]);
      await openssl([
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca.certPath,
        "-CAkey",
        ca.keyPath,
        "-set_serial",
        `0x${(0x1000 + i).toString(16)}`,
        "-days",
        "365",
        "-sha256",
        "-extfile",
        ext,
        "-extensions",
        "leaf",
        "-out",
        certPaths[i]!,
      ]);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  readFileSync(certPaths.at(-1)!);
  return { keyPath, certPaths };
}
