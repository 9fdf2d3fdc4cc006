// live/chain.pem after `credd import` holds the intermediates and the CA (docs/lifecycle.md, "On
// disk"), as after an ingest: a certificate given alone gets them from stellantis.ca_file; with no
// way to know them, chain.pem stays empty and import says why. The real binary, real openssl.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { dnFor, runCredd, writeConfig } from "../helpers/credd.js";
import { makeCa, makeIntermediateCa, makeKeyAndCert, makeTempDir } from "../helpers/openssl.js";

const subject = "{ C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }";

function config(dir: string, caFile?: string): string {
  mkdirSync(dir, { recursive: true });
  return writeConfig(
    dir,
    `state_dir: ${join(dir, "state")}\nsmtp: { url: "smtp://127.0.0.1:1", from: "credd <credd@partner.example>" }\n` +
      `alerts: { to: [ops@partner.example] }\nstellantis: { contact: connectedcar@stellantis.example${caFile ? `, ca_file: ${caFile}` : ""} }\n` +
      `credentials:\n  - name: fleet-prod\n    mzp: MZP128745\n    subject: ${subject}\n  - name: fleet-test\n    mzp: MZP654321\n    subject: ${subject}\n`,
  );
}

/** The SHA-256 fingerprints of the certificates in a PEM file, in order. */
function fingerprints(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p).fingerprint256);
}
const fp = (pem: string) => new X509Certificate(pem).fingerprint256;

test("import of a certificate alone: chain.pem is the path to stellantis.ca_file, or empty with a note saying why", async () => {
  const dir = makeTempDir("credd-e2e-import-chain-");
  const root = makeCa(dir);
  const issuing = makeIntermediateCa(root, dir);
  const caFile = join(dir, "stellantis-ca.pem");
  writeFileSync(caFile, root.certPem + issuing.certPem);
  const hand = makeKeyAndCert(dir, dnFor("MZP128745"), { ca: issuing, days: 365 });

  // ca_file set: the intermediate, then the root, in archive/ and live/.
  const withCa = join(dir, "with-ca");
  const cfg = config(withCa, caFile);
  const r = await runCredd(["--config", cfg, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "", "nothing to say");
  const cred = join(withCa, "state/credentials/fleet-prod");
  const path = [fp(issuing.certPem), fp(root.certPem)];
  assert.deepEqual(fingerprints(join(cred, "live/chain.pem")), path, "chain.pem: intermediate and CA");
  assert.deepEqual(fingerprints(join(cred, "archive/chain-1.pem")), path, "archived the same (rollback rewrites live/ from it)");
  assert.deepEqual(fingerprints(join(cred, "live/fullchain.pem")), [fp(hand.certPem), ...path]);
  // The CA that expires first (the intermediate, 1825 days against the root's 3650) is recorded, as after an ingest.
  const db = new Database(join(withCa, "state/credd.db"), { readonly: true });
  const row = db.prepare("SELECT ca_not_after_role, ca_not_after_subject FROM certificates WHERE credential = 'fleet-prod'").get() as Record<
    string,
    string
  >;
  db.close();
  assert.equal(row.ca_not_after_role, "intermediate");
  assert.match(row.ca_not_after_subject ?? "", /Test Stellantis Issuing CA/);

  // Intermediates given with the certificate are written as given, as before.
  const other = makeKeyAndCert(dir, dnFor("MZP654321"), { ca: issuing, days: 365 });
  const both = join(dir, "with-intermediate.pem");
  writeFileSync(both, other.certPem + issuing.certPem);
  const given = await runCredd(["--config", cfg, "import", "fleet-test", "--cert", both, "--key", other.keyPath]);
  assert.equal(given.code, 0, given.stderr);
  assert.equal(given.stderr, "");
  assert.deepEqual(fingerprints(join(withCa, "state/credentials/fleet-test/live/chain.pem")), [fp(issuing.certPem)]);

  // No ca_file, or one of another CA: adopted all the same, chain.pem empty, and the note says why.
  const foreign = makeCa(dir, { cn: "Another CA" });
  const foreignFile = join(dir, "foreign-ca.pem");
  writeFileSync(foreignFile, foreign.certPem);
  for (const [name, ca, why] of [
    ["no-ca", undefined, /stellantis\.ca_file is not set in \S+credd\.yaml/],
    ["foreign-ca", foreignFile, new RegExp(`it does not chain to stellantis\\.ca_file ${foreignFile}: `)],
  ] as const) {
    const d = join(dir, name);
    const c = await runCredd(["--config", config(d, ca), "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /is live/);
    assert.match(c.stderr, new RegExp(`^note: live/chain\\.pem is empty: ${hand.certPath} holds the certificate alone, and `));
    assert.match(c.stderr, why);
    assert.match(c.stderr, /give them after the certificate in the --cert file/);
    assert.equal(readFileSync(join(d, "state/credentials/fleet-prod/live/chain.pem"), "utf8"), "", name);
  }
});
