// The real `credd run` with a Maildir mailbox: a reply whose link is on download_hosts is taken in
// by the daemon with nothing copied by hand; a SIGKILL between the download and the ingest leaves
// nothing half-done, and the next start handles the message once.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import Database from "better-sqlite3";
import { runCredd, startCreddDaemon, writeConfig } from "../helpers/credd.js";
import { composeReply, deliverToMaildir } from "../helpers/mailbox.js";
import { makeCa, makeTempDir, signCsr, type TestCa } from "../helpers/openssl.js";
import { makeCert } from "../helpers/tls.js";

let ca: TestCa;
let server: Server;
let base: string;
let served = "";

before(async () => {
  ca = makeCa(makeTempDir("credd-e2e-mailbox-ca-"));
  const tls = makeCert(
    { dir: ca.dir, caPem: ca.certPem, caPath: ca.certPath, caKeyPath: ca.keyPath },
    { subject: "/CN=localhost", san: ["IP:127.0.0.1"], usage: "server" },
  );
  server = createServer({ cert: tls.certPem, key: tls.keyPem }, (_req, res) => {
    res.writeHead(200, { "content-type": "application/x-pem-file" });
    res.end(served);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

test("credd run: a SIGKILL between download and ingest, then a restart: the reply is handled once and goes live", async () => {
  const dir = makeTempDir("credd-e2e-mailbox-");
  const maildir = join(dir, "Maildir");
  const config = writeConfig(
    dir,
    `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
smtp: { url: "smtp://127.0.0.1:9", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example] }
stellantis: { contact: connectedcar@stellantis.example, ca_file: ${ca.certPath} }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
mailbox:
  maildir: ${maildir}
  download_hosts: [127.0.0.1]
`,
  );
  // The mail server makes the Maildir; credd only reads it (check-config refuses a missing one).
  for (const d of ["new", "cur", "tmp"]) mkdirSync(join(maildir, d), { recursive: true, mode: 0o700 });
  const enroll = await runCredd(["--config", config, "enroll", "fleet-prod", "--no-send"]);
  assert.equal(enroll.code, 0, enroll.stderr);
  served = signCsr(ca, join(dir, "state/credentials/fleet-prod/archive/csr-1.pem"), join(dir, "signed.pem"));
  const key = deliverToMaildir(
    maildir,
    await composeReply({
      subject: "Your certificate for MZP128745",
      text: `Hello,\n\ndownload your certificate: ${base}/certificate/MZP128745.pem\n`,
    }),
  );
  const db = () => new Database(join(dir, "state/credd.db"), { readonly: true });

  const crashed = startCreddDaemon(["--config", config, "run"], { CREDD_CRASH_AT: "mailbox-after-download" });
  await crashed.exited;
  assert.equal(crashed.child.signalCode, "SIGKILL", crashed.stderr());
  const d0 = db();
  assert.equal((d0.prepare("SELECT count(*) AS n FROM mailbox_messages").get() as { n: number }).n, 0, "nothing recorded");
  d0.close();
  assert.ok(!existsSync(join(dir, "state/credentials/fleet-prod/live")), "nothing live");
  assert.deepEqual(readdirSync(join(maildir, "new")), [key], "the message is still where it was");

  const d = startCreddDaemon(["--config", config, "run"]);
  try {
    await d.waitForLog((l) => l.msg === "mailbox: reply handled", 60_000);
    await d.waitForLog((l) => l.msg === "certificate live", 60_000);
  } finally {
    assert.equal(await d.stop(), 0, d.stderr());
  }
  assert.equal(readFileSync(join(dir, "state/credentials/fleet-prod/live/cert.pem"), "utf8").trim(), served.trim());
  assert.deepEqual(readdirSync(join(maildir, ".credd.done", "cur")), [`${key}:2,S`]);
  const d1 = db();
  const rows = d1.prepare("SELECT outcome, matched_by, moved_at FROM mailbox_messages").all() as Array<{
    outcome: string;
    matched_by: string;
    moved_at: string | null;
  }>;
  assert.deepEqual(
    rows.map((r) => [r.outcome, r.matched_by, r.moved_at !== null]),
    [["installed", "mzp", true]],
    "handled once",
  );
  assert.equal((d1.prepare("SELECT count(*) AS n FROM outbox WHERE kind LIKE 'mailbox%'").get() as { n: number }).n, 0, "nothing for ops");
  d1.close();
});
