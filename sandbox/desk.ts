// The people at Stellantis, played by timers. The CA signs each CSR emailed to the contact after a
// delay, dated by the virtual clock, and emails back a link, as Stellantis does: a reply to the CSR
// email, delivered into the Maildir credd's `mailbox:` watches, naming the download page's link and
// the client ID (without a Maildir: the certificate and the CA written into credd's inbox folder). The IDP team binds each certificate emailed for
// registration (seed step 5) to the OAuth2 client after a delay.
import { createHash, X509Certificate } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DAY_MS } from "../src/clock.js";
import { writeFileAtomic } from "../src/files/atomic.js";
import { x509 } from "../src/pki/crypto.js";
import type { EventLog } from "./events.js";
import { mailKind, type MailRecord } from "./mail.js";
import type { SandboxCa, SignedCert } from "./pki.js";

export interface IssuedCert {
  serial: string;
  sha256: string;
  cn: string;
  spkiSha256: string;
  notBefore: string;
  notAfter: string;
  inboxFile: string;
  /** The link the reply email named, when the CA answered by email. */
  link?: string;
}

export interface DeskOptions {
  contact: string;
  inboxDir: string;
  /** Where the CA keeps a copy of what it issued. */
  issuedDir: string;
  ca: SandboxCa;
  now: () => Date;
  signDelayMs: number;
  bindDelayMs: number;
  validityDays: number;
  log: EventLog;
  /** Certificates issued so far (persisted by the sandbox). */
  issued: IssuedCert[];
  onIssued(c: IssuedCert): void;
  /** Makes the IDP accept `sha256` for tls_client_auth. */
  bind(sha256: string, why: string): void;
  /** Reply by email: the Maildir it is delivered to, the download link of a serial, the client ID named. */
  reply?: { maildir: string; linkFor(serial: string): string; clientId: string };
}

const day = (d: Date | string) => new Date(d).toISOString().slice(0, 10);
const PEM_CSR = /-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----[\s\S]+?-----END (?:NEW )?CERTIFICATE REQUEST-----/;
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

export class Desk {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly caX509: X509Certificate;
  private readonly pendingKeys = new Set<string>();
  private replies = 0;

  constructor(private readonly o: DeskOptions) {
    this.caX509 = new X509Certificate(o.ca.certPem);
  }

  /** Looks at every email; acts on those to the Stellantis contact. */
  handle(m: MailRecord): void {
    if (!m.to.some((t) => t.toLowerCase() === this.o.contact.toLowerCase())) return;
    const kind = mailKind(m);
    if (kind === "csr") this.csr(m);
    else if (kind === "certificate") this.registration(m);
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private later(ms: number, fn: () => Promise<void> | void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      Promise.resolve()
        .then(fn)
        .catch((err: unknown) => this.o.log.add("csr-ignored", `the sandbox failed: ${(err as Error).message}`));
    }, ms);
    this.timers.add(t);
  }

  private csr(m: MailRecord): void {
    const pem = m.attachments.map((a) => PEM_CSR.exec(a.content.toString("utf8"))?.[0]).find(Boolean);
    if (!pem) return;
    let req: x509.Pkcs10CertificateRequest;
    try {
      req = new x509.Pkcs10CertificateRequest(pem);
    } catch (err) {
      this.o.log.add("csr-ignored", `CA: the CSR in mail #${m.n} does not parse: ${(err as Error).message}`, { mail: m.n });
      return;
    }
    const cn = req.subjectName.getField("CN")[0] ?? "(no CN)";
    const spki = createHash("sha256").update(Buffer.from(req.publicKey.rawData)).digest("hex");
    const done = this.o.issued.find((c) => c.spkiSha256 === spki);
    if (done || this.pendingKeys.has(spki)) {
      this.o.log.add(
        "csr-ignored",
        `CA: mail #${m.n} repeats a CSR for ${cn} it ${done ? `already signed (serial ${done.serial})` : "is signing"}: nothing new to do`,
        { mail: m.n, cn },
      );
      return;
    }
    this.pendingKeys.add(spki);
    this.o.log.add("csr-received", `CA desk got the CSR for ${cn} (${req.subject}); signs it in ${secs(this.o.signDelayMs)}`, {
      mail: m.n,
      cn,
      delayMs: this.o.signDelayMs,
    });
    this.later(this.o.signDelayMs, async () => {
      const v = this.o.now().getTime();
      const notBefore = new Date(v - 60_000);
      const notAfter = new Date(notBefore.getTime() + this.o.validityDays * DAY_MS);
      let cert: SignedCert;
      try {
        cert = await this.o.ca.sign(pem, { notBefore, notAfter });
      } finally {
        this.pendingKeys.delete(spki);
      }
      const name = `${cn.replace(/[^A-Za-z0-9_-]/g, "_")}-${cert.serial.slice(-8)}.pem`;
      writeFileAtomic(join(this.o.issuedDir, `${cert.serial}.pem`), cert.pem, 0o644);
      // The "link to download your certificate & the CA certificate": both in one file.
      writeFileAtomic(join(this.o.issuedDir, `${cert.serial}-bundle.pem`), cert.pem + this.o.ca.certPem, 0o644);
      const link = this.o.reply?.linkFor(cert.serial);
      if (this.o.reply && link) await this.emailReply(m, cn, link, this.o.reply);
      else writeFileAtomic(join(this.o.inboxDir, name), cert.pem + this.o.ca.certPem, 0o644);
      const issued: IssuedCert = {
        serial: cert.serial,
        sha256: cert.sha256,
        cn,
        spkiSha256: spki,
        notBefore: cert.notBefore.toISOString(),
        notAfter: cert.notAfter.toISOString(),
        inboxFile: name,
        ...(link ? { link } : {}),
      };
      this.o.issued.push(issued);
      this.o.onIssued(issued);
      this.o.log.add(
        "signed",
        link
          ? `CA signed ${cn}: serial ${cert.serial}, valid ${day(notBefore)} to ${day(notAfter)}; replied to mail #${m.n} with a download link (${link}) and the client ID`
          : `CA signed ${cn}: serial ${cert.serial}, valid ${day(notBefore)} to ${day(notAfter)}; emailed back a link: inbox/${name} (certificate + CA)`,
        { ...issued },
      );
    });
  }

  /** The reply as Stellantis writes it, delivered the way a mail server does (tmp/, then new/). */
  private async emailReply(m: MailRecord, cn: string, link: string, r: NonNullable<DeskOptions["reply"]>): Promise<void> {
    const { default: MailComposer } = await import("nodemailer/lib/mail-composer");
    const text = [
      "Hello,",
      "",
      `you'll find below the link to download your certificate & Stellantis CA certificate for ${cn}:`,
      "",
      link,
      "",
      `Client ID: ${r.clientId}`,
      "",
      "Best regards,",
      "Stellantis Connected Car B2B (sandbox)",
    ].join("\n");
    const html = `<p>Hello,</p><p>you'll find below the link to download your certificate &amp; Stellantis CA certificate for ${cn}:</p><p><a href="${link}">${link}</a></p><p>Client ID: ${r.clientId}</p>`;
    const bytes = await new Promise<Buffer>((resolve, reject) =>
      new MailComposer({
        from: `Stellantis Connected Car <${this.o.contact}>`,
        to: m.from,
        subject: `RE: ${m.subject}`,
        ...(m.messageId ? { inReplyTo: m.messageId, references: [m.messageId] } : {}),
        text,
        html,
        date: this.o.now(),
      })
        .compile()
        .build((err, buf) => (err ? reject(err) : resolve(buf))),
    );
    const unique = `${this.o.now().getTime()}.sandbox${++this.replies}.${cn.replace(/[^A-Za-z0-9]/g, "")}`;
    for (const d of ["tmp", "new", "cur"]) mkdirSync(join(r.maildir, d), { recursive: true, mode: 0o700 });
    writeFileSync(join(r.maildir, "tmp", unique), bytes, { mode: 0o600 });
    renameSync(join(r.maildir, "tmp", unique), join(r.maildir, "new", unique));
  }

  private registration(m: MailRecord): void {
    const pem = m.attachments.map((a) => PEM_CERT.exec(a.content.toString("utf8"))?.[0]).find(Boolean);
    if (!pem) return;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch {
      this.o.log.add("csr-ignored", `IDP team: the certificate in mail #${m.n} does not parse`, { mail: m.n });
      return;
    }
    if (!cert.checkIssued(this.caX509) || !cert.verify(this.caX509.publicKey)) {
      this.o.log.add("csr-ignored", `IDP team: mail #${m.n} holds a certificate the sandbox CA did not sign: not bound`, { mail: m.n });
      return;
    }
    const client = /OAuth2 client (\S+)/.exec(m.subject)?.[1] ?? "the OAuth2 client";
    const serial = cert.serialNumber.toUpperCase();
    this.o.log.add("registration-received", `IDP team got certificate ${serial} to bind to ${client}; binds it in ${secs(this.o.bindDelayMs)}`, {
      mail: m.n,
      serial,
      sha256: cert.fingerprint256,
      delayMs: this.o.bindDelayMs,
    });
    this.later(this.o.bindDelayMs, () => this.o.bind(cert.fingerprint256, `registration email #${m.n}`));
  }
}

function secs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}
