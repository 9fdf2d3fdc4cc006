// Makes `n` certbot lineages with openssl under a temp --config-dir: archive/, live/ symlinks and the
// renewal/*.conf files certbot reads, as `certbot certonly` leaves them (without talking to any CA).
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mustRun, mustRunAsync } from "./lib/proc.js";

const FILES = ["cert", "chain", "fullchain", "privkey"] as const;

const openssl = (args: string[]) => mustRunAsync("openssl", args);

/** One shared key and a throwaway CA; one openssl call per lineage makes its certificate (SAN = its domain). */
export async function makeCertbotLineages(configDir: string, n: number, version: string): Promise<void> {
  const work = join(configDir, "..", "certbot-work-pki");
  mkdirSync(work, { recursive: true });
  const caKey = join(work, "ca.key");
  const caCert = join(work, "ca.pem");
  const leafKey = join(work, "leaf.key");
  mustRun("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", caKey, "-out", caCert, "-days", "3650", "-subj", "/CN=bench CA"]);
  // ECDSA P-256, certbot's default key type since 2.0. (With RSA keys, `certbot certificates` spends
  // ~45 ms per lineage in cryptography's RSA_check_key just to print "Key Type": 20x slower overall.)
  mustRun("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-pkeyopt", "ec_param_enc:named_curve", "-out", leafKey]);
  const caPem = readFileSync(caCert, "utf8");
  const keyPem = readFileSync(leafKey, "utf8");
  const extFile = join(work, "ext.cnf");
  const names = Array.from({ length: n }, (_, i) => `site${String(i + 1).padStart(5, "0")}.bench.example`);
  for (const d of ["archive", "live", "renewal"]) mkdirSync(join(configDir, d), { recursive: true });
  writeFileSync(
    extFile,
    "[leaf]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth\n",
  );

  // A CSR per lineage would only slow this down: one CSR, signed n times with a per-lineage subject and SAN.
  const csr = join(work, "leaf.csr");
  mustRun("openssl", ["req", "-new", "-key", leafKey, "-subj", "/CN=placeholder", "-out", csr]);
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++]!;
      const archive = join(configDir, "archive", name);
      mkdirSync(archive, { recursive: true });
      const certPath = join(archive, "cert1.pem");
      const ext = join(archive, ".ext");
      writeFileSync(ext, `${readFileSync(extFile, "utf8")}subjectAltName = DNS:${name}\n`);
      await openssl([
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        caCert,
        "-CAkey",
        caKey,
        "-set_serial",
        String(next + 1000),
        "-days",
        "90",
        "-sha256",
        "-subj",
        `/CN=${name}`,
        "-extfile",
        ext,
        "-extensions",
        "leaf",
        "-out",
        certPath,
      ]);
      const certPem = readFileSync(certPath, "utf8");
      writeFileSync(join(archive, "chain1.pem"), caPem);
      writeFileSync(join(archive, "fullchain1.pem"), certPem + caPem);
      writeFileSync(join(archive, "privkey1.pem"), keyPem, { mode: 0o600 });
      const live = join(configDir, "live", name);
      mkdirSync(live, { recursive: true });
      for (const f of FILES) symlinkSync(join("..", "..", "archive", name, `${f}1.pem`), join(live, `${f}.pem`));
      writeFileSync(
        join(configDir, "renewal", `${name}.conf`),
        `# renew_before_expiry = 30 days
version = ${version}
archive_dir = ${archive}
cert = ${join(live, "cert.pem")}
privkey = ${join(live, "privkey.pem")}
chain = ${join(live, "chain.pem")}
fullchain = ${join(live, "fullchain.pem")}

# Options used in the renewal process
[renewalparams]
account = 0123456789abcdef0123456789abcdef
authenticator = standalone
server = https://acme-v02.api.letsencrypt.org/directory
key_type = ecdsa
elliptic_curve = secp256r1
`,
      );
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}
