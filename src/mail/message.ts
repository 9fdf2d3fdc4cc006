// The stored, transport-independent shape of an email: what the outbox keeps in SQLite and the
// SMTP adapter sends. Plain data (JSON round-trips it), so a resend after a crash is the same mail.
import { randomUUID } from "node:crypto";

export interface MailAttachment {
  filename: string;
  contentType: string;
  /** Text content (PEM); sent as given. */
  content: string;
}

export interface OutgoingMail {
  /** "<credd.UUID@domain>", fixed when the mail is queued so every attempt carries the same one. */
  messageId: string;
  from: string;
  to: string[];
  cc: string[];
  subject: string;
  text: string;
  attachments: MailAttachment[];
}

/**
 * A Message-ID for a mail sent from `from`, the sender's address (bare or as `Name <addr@host>`,
 * e.g. smtp.from as configured; not a bare domain): `<credd.UUID@host>`. Falls back to
 * `localhost` when the address has no usable domain part.
 */
export function newMessageId(from: string, random: () => string = randomUUID): string {
  return `<credd.${random()}@${domainOf(from)}>`;
}

function domainOf(from: string): string {
  const angle = /<([^<>]*)>\s*$/.exec(from);
  const addr = (angle?.[1] ?? from).trim();
  const at = addr.lastIndexOf("@");
  const domain =
    at >= 0
      ? addr
          .slice(at + 1)
          .trim()
          .toLowerCase()
      : "";
  // A Message-ID's right side is a dot-atom or a domain literal: keep only what fits one.
  return /^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*|\[[^[\]\\\s]*\])$/.test(domain) ? domain : "localhost";
}
