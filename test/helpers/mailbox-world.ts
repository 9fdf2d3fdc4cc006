// An in-process credd with a `mailbox: maildir:` section for the mailbox tests: a real SQLite file,
// a pending renewal whose CSR email's Message-ID a reply can answer, its certificate signed by a
// real openssl CA, and the Maildir source with the daemon's own collectors (ZIP, links).
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { ManualClock } from "./clock.js";
import { parseConfig } from "../../src/config/load.js";
import { sqliteCtx, type TestCtx } from "./ctx.js";
import { startRenewal } from "../../src/core/renewal.js";
import { makeMailerFactory } from "../../src/mail/factory.js";
import type { OutgoingMail } from "../../src/mail/message.js";
import { createMaildirSource, maildirFolder } from "../../src/mailbox/maildir.js";
import { defaultCollectors } from "../../src/mailbox/service.js";
import { liveCertificate, type CertificateRow } from "../../src/store/certificates.js";
import { openDb } from "../../src/store/db.js";
import { queuedMails } from "../../src/store/outbox.js";
import { makeTempDir, signCsr, type TestCa } from "./openssl.js";

export const MZP = "MZP128745";

export interface MailboxWorld {
  dir: string;
  ctx: TestCtx;
  maildir: string;
  lines: Record<string, unknown>[];
  /** The CSR email's Message-ID, and the certificate signed for its key. */
  csrMessageId: string;
  certPem: string;
  certPath: string;
  opsMails(): OutgoingMail[];
  scan(): ReturnType<ReturnType<typeof createMaildirSource>["scan"]>;
  inFolder(folder: string): string[];
  live(): CertificateRow | undefined;
  close(): void;
}

/** `mailboxExtra`: more lines under `mailbox:` (indented two spaces). */
export async function mailboxWorld(ca: TestCa, mailboxExtra = ""): Promise<MailboxWorld> {
  const dir = makeTempDir("credd-int-mailbox-");
  const maildir = join(dir, "Maildir");
  const config = parseConfig(
    `state_dir: ${join(dir, "state")}
inbox_dir: ${join(dir, "inbox")}
smtp: { url: "smtp://127.0.0.1:9", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example] }
stellantis: { contact: connectedcar@stellantis.example, ca_file: ${ca.certPath} }
credentials:
  - name: fleet-prod
    mzp: ${MZP}
    client_id: 1a2b3c
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
  - name: fleet-test
    mzp: MZP654321
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    key: { type: ec, curve: P-256 }
mailbox:
  maildir: ${maildir}
${mailboxExtra}`,
    join(dir, "credd.yaml"),
  );
  const lines: Record<string, unknown>[] = [];
  // A few minutes ahead of the wall clock: the certificates signed below are valid from "now".
  const clock = new ManualClock(Date.now() + 5 * 60_000);
  const ctx: TestCtx = sqliteCtx({
    config,
    db: openDb(config.state_dir),
    clock,
    log: pino({ level: "info" }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }),
    mailer: makeMailerFactory(config),
  });
  const started = await startRenewal(ctx, config.credentials[0]!, { kind: "enroll", forced: true, reason: "test" });
  const certPath = join(dir, "signed.pem");
  const certPem = signCsr(ca, started.csrPath, certPath);
  const src = createMaildirSource(ctx, { ...config.mailbox!, maildir }, await defaultCollectors(ctx));
  return {
    dir,
    ctx,
    maildir,
    lines,
    csrMessageId: started.messageId,
    certPem,
    certPath,
    opsMails: () =>
      queuedMails(ctx.db)
        .filter((r) => r.kind === "mailbox")
        .map((r) => JSON.parse(r.mail_json) as OutgoingMail),
    scan: () => src.scan(),
    inFolder: (folder: string) => {
      const d = join(maildirFolder(maildir, folder), "cur");
      return existsSync(d) ? readdirSync(d) : [];
    },
    live: () => liveCertificate(ctx.db, "fleet-prod"),
    close: () => ctx.db.close(),
  };
}
