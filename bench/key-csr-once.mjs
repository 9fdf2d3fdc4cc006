// One key + CSR as a whole process, the work `credd renew` does for it: RSA 2048 key pair, the key
// as PKCS#8 PEM, the CSR with the Stellantis DN, both written to files. Plain JavaScript on a built
// dist/ (no tsx loader in the measured process), so it compares fairly with `openssl req -new -newkey`.
// usage: node bench/key-csr-once.mjs DIST_DIR KEY_OUT CSR_OUT
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [dist, keyOut, csrOut] = process.argv.slice(2);
if (!dist || !keyOut || !csrOut) {
  console.error("usage: node bench/key-csr-once.mjs DIST_DIR KEY_OUT CSR_OUT");
  process.exit(2);
}
const { exportPrivateKeyPem, generateKeyPair } = await import(pathToFileURL(join(dist, "pki/keys.js")).href);
const { createCsr } = await import(pathToFileURL(join(dist, "pki/csr.js")).href);
const spec = { type: "rsa", bits: 2048 };
const dn = { C: "FR", ST: "Ile de France", L: "Paris", O: "Free2Move", OU: "Programs Partners", CN: "MZP128745", emailAddress: "it@partner.example" };
const keys = await generateKeyPair(spec);
const keyPem = exportPrivateKeyPem(keys);
const csr = await createCsr(keys, spec, dn);
writeFileSync(keyOut, keyPem, { mode: 0o600 });
writeFileSync(csrOut, csr.pem);
