// Replies composed the way a real mail client composes them (nodemailer's MIME composer: multipart,
// base64 and quoted-printable, HTML alternatives, forwarded messages), and Maildir delivery the
// way a mail server does it (write in tmp/, rename into new/).
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import MailComposer from "nodemailer/lib/mail-composer";

export interface ReplyOptions {
  from?: string;
  to?: string;
  subject?: string;
  text?: string;
  html?: string;
  inReplyTo?: string;
  references?: string[];
  messageId?: string;
  headers?: Record<string, string>;
  attachments?: Array<{ filename: string; content: Buffer | string; contentType?: string; encoding?: string }>;
  /** A message forwarded as an attachment (message/rfc822). */
  forward?: Buffer;
  textEncoding?: "quoted-printable" | "base64";
  date?: Date;
}

let n = 0;

/** The bytes of one message (RFC 5322), as a mail client would send it. */
export async function composeReply(o: ReplyOptions): Promise<Buffer> {
  const attachments = [
    ...(o.attachments ?? []).map((a) => ({ filename: a.filename, content: a.content, ...(a.contentType ? { contentType: a.contentType } : {}) })),
    ...(o.forward ? [{ filename: "forwarded.eml", content: o.forward, contentType: "message/rfc822" }] : []),
  ];
  const composer = new MailComposer({
    from: o.from ?? "Stellantis Connected Car <connectedcar@stellantis.example>",
    to: o.to ?? "it@partner.example",
    subject: o.subject ?? "RE: CSR for MZP128745: new client certificate (Stellantis B2B API)",
    ...(o.text !== undefined ? { text: o.text } : {}),
    ...(o.html !== undefined ? { html: o.html } : {}),
    ...(o.inReplyTo ? { inReplyTo: o.inReplyTo } : {}),
    ...(o.references ? { references: o.references } : {}),
    messageId: o.messageId ?? `<reply.${Date.now()}.${++n}@stellantis.example>`,
    headers: o.headers ?? {},
    attachments,
    textEncoding: o.textEncoding ?? "quoted-printable",
    date: o.date ?? new Date("2026-03-02T09:00:00Z"),
  });
  return await new Promise<Buffer>((resolve, reject) => composer.compile().build((err, buf) => (err ? reject(err) : resolve(buf))));
}

/** Delivers a message into a Maildir the way a mail server does; returns the file's unique name. */
export function deliverToMaildir(root: string, bytes: Buffer): string {
  for (const d of ["tmp", "new", "cur"]) mkdirSync(join(root, d), { recursive: true, mode: 0o700 });
  const unique = `${Date.now()}.M${process.hrtime.bigint()}P${process.pid}Q${++n}.${hostname()}`;
  writeFileSync(join(root, "tmp", unique), bytes);
  renameSync(join(root, "tmp", unique), join(root, "new", unique));
  return unique;
}
