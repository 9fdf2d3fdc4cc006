// Turns a raw message (RFC 5322 bytes) into a Reply with mailparser: multipart, base64 and
// quoted-printable, charsets, HTML-only bodies (converted to text) and forwarded messages (their
// text and attachments flattened into the message's own by mailparser).
import type { Attachment, HeaderValue, ParsedMail } from "mailparser";
import type { Reply } from "./reply.js";

/** A message larger than this is not read at all: no certificate reply comes near it. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

const AUTO_HEADERS = ["auto-submitted", "x-autoreply", "x-autorespond", "precedence", "x-auto-response-suppress"];

export async function parseReply(raw: Buffer): Promise<Reply> {
  const { simpleParser } = await import("mailparser");
  const mail = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true, maxHtmlLengthToParse: 2 * 1024 * 1024 });
  return toReply(mail);
}

function toReply(mail: ParsedMail): Reply {
  const headers: Record<string, string> = {};
  for (const h of AUTO_HEADERS) {
    const v = mail.headers.get(h);
    if (v !== undefined) headers[h] = headerText(v);
  }
  const from = mail.from?.value.find((v) => v.address)?.address?.toLowerCase();
  const refs = mail.references === undefined ? [] : Array.isArray(mail.references) ? mail.references : [mail.references];
  const r: Reply = {
    fromText: mail.from?.text ?? "",
    subject: mail.subject ?? "",
    references: refs,
    text: mail.text ?? "",
    html: typeof mail.html === "string" ? mail.html : "",
    headers,
    attachments: mail.attachments.map(attachment),
  };
  if (mail.messageId) r.messageId = mail.messageId;
  if (from) r.from = from;
  if (mail.date) r.date = mail.date;
  if (mail.inReplyTo) r.inReplyTo = mail.inReplyTo;
  return r;
}

function attachment(a: Attachment, i: number): Reply["attachments"][number] {
  // A name from the mail is only a label: it is never used as a path.
  const name = (a.filename ?? `attachment-${i + 1}`).replace(/[\u0000-\u001f\u007f/\\]/g, "_").slice(0, 200);
  return { name, contentType: a.contentType, size: a.size, content: a.content };
}

function headerText(v: HeaderValue): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return v.map((x) => (typeof x === "string" ? x : "value" in x && typeof x.value === "string" ? x.value : "")).join(", ");
  if (v instanceof Date) return v.toISOString();
  if ("value" in v && typeof v.value === "string") return v.value;
  return "";
}
