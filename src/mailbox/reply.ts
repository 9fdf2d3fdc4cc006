// Pure decisions about one incoming message: is it an auto-reply, which credential does it answer,
// which attachments may hold certificates, which links it names and what client details it gives.
// No I/O: the sources parse the mail (parse.ts) and the handler acts on the answers (handle.ts).
import type { CredentialConfig } from "../config/types.js";

export interface ReplyAttachment {
  name: string;
  contentType: string;
  size: number;
  content: Buffer;
}

/** A parsed message, as much of it as credd looks at. */
export interface Reply {
  messageId?: string;
  /** The sender's address, lower case; undefined when the From header has none. */
  from?: string;
  /** The From header as written, for the ops email. */
  fromText: string;
  subject: string;
  date?: Date;
  inReplyTo?: string;
  references: string[];
  /** The plain text (an HTML-only body converted to text). */
  text: string;
  html: string;
  /** Lower-case header names → values, for the auto-reply headers. */
  headers: Record<string, string>;
  /** Every attachment, those of a forwarded message (message/rfc822) included: mailparser flattens them. */
  attachments: ReplyAttachment[];
}

export interface SentThreadRef {
  message_id: string;
  credential: string;
  kind: string;
}

export type Match = { credential: string; by: "in-reply-to" | "references" | "mzp" } | { credential?: undefined; why: string };

/** Auto-Submitted (RFC 3834), the vendor headers and the usual subjects of out-of-office replies. */
export function isAutoReply(r: Reply): boolean {
  const h = r.headers;
  const auto = h["auto-submitted"]?.trim().toLowerCase();
  if (auto && auto !== "no") return true;
  if (h["x-autoreply"] !== undefined || h["x-autorespond"] !== undefined) return true;
  if (/^(auto_reply|auto-reply|bulk|junk)$/i.test(h.precedence?.trim() ?? "")) return true;
  if (/\b(oof|autoreply)\b/i.test(h["x-auto-response-suppress"] ?? "") && /^(auto|automatic)/i.test(r.subject)) return true;
  return /^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|absence|abwesenheit|r[ée]ponse automatique|auto:)/i.test(r.subject);
}

/** `senders` entries are "@domain" (anyone there) or a full address; both lower case. */
export function senderAllowed(from: string | undefined, senders: readonly string[]): boolean {
  if (!from) return false;
  const addr = from.toLowerCase();
  const domain = addr.slice(addr.lastIndexOf("@"));
  return senders.some((s) => (s.startsWith("@") ? domain === s : addr === s));
}

const idList = (r: Reply): { inReplyTo: string[]; refs: string[] } => ({
  inReplyTo: r.inReplyTo ? ids(r.inReplyTo) : [],
  refs: r.references.flatMap(ids),
});

/** Message-IDs in a header value, with their angle brackets, as credd stores them. */
export function ids(v: string): string[] {
  return [...v.matchAll(/<[^<>\s]+>/g)].map((m) => m[0]);
}

/** Every Message-ID a reply names in In-Reply-To or References. */
export function referencedIds(r: Reply): string[] {
  const l = idList(r);
  return [...new Set([...l.inReplyTo, ...l.refs])];
}

/**
 * Which credential a message answers: a Message-ID credd sent (In-Reply-To first, then
 * References), or, failing that, the one MZP login named in the subject or body of a message from
 * an allowed sender. Anything else belongs to none. A forwarded copy has lost the thread (mailparser
 * gives the forwarded message's text and attachments, not its headers): it is matched by the MZP,
 * so the person who forwards must be on mailbox.senders.
 */
export function matchReply(r: Reply, threads: readonly SentThreadRef[], creds: readonly CredentialConfig[], senders: readonly string[]): Match {
  const known = new Set(creds.map((c) => c.name));
  const byId = new Map(threads.filter((t) => known.has(t.credential)).map((t) => [t.message_id, t.credential]));
  const first = (list: string[]) => list.map((i) => byId.get(i)).find((c) => c !== undefined);
  const own = idList(r);
  const a = first(own.inReplyTo);
  if (a) return { credential: a, by: "in-reply-to" };
  const b = first(own.refs);
  if (b) return { credential: b, by: "references" };
  if (!senderAllowed(r.from, senders)) {
    return { why: `it answers no email credd sent, and its sender ${r.from ?? "(none)"} is not on mailbox.senders (${senders.join(", ")})` };
  }
  const text = `${r.subject}\n${r.text}`;
  const named = creds.filter((c) => new RegExp(`(^|[^A-Za-z0-9])${c.mzp}([^A-Za-z0-9]|$)`, "i").test(text));
  if (named.length === 1) return { credential: named[0]!.name, by: "mzp" };
  if (named.length > 1)
    return { why: `it names the MZP logins of several credentials (${named.map((c) => c.name).join(", ")}) and answers no email credd sent` };
  return { why: "it answers no email credd sent and names no credential's MZP login" };
}

const CERT_EXT = /\.(pem|crt|cer|der|p7b|p7c|p7|cert|ca-bundle)$/i;
const CERT_TYPES =
  /^application\/(x-x509-ca-cert|x-x509-user-cert|pkix-cert|x-pem-file|pkcs7-mime|x-pkcs7-certificates|x-pkcs7-mime|pkcs7-certificates)$/i;
const ZIP_EXT = /\.zip$/i;
const ZIP_TYPES = /^application\/(zip|x-zip-compressed|x-zip)$/i;

export type AttachmentKind = "certificate" | "zip" | "other";

/** What an attachment may hold, by its name, its type and, for text, a PEM header. */
export function attachmentKind(a: Pick<ReplyAttachment, "name" | "contentType" | "content">): AttachmentKind {
  if (ZIP_EXT.test(a.name) || ZIP_TYPES.test(a.contentType)) return "zip";
  if (CERT_EXT.test(a.name) || CERT_TYPES.test(a.contentType)) return "certificate";
  if (/^text\//i.test(a.contentType) && a.content.includes("-----BEGIN ")) return "certificate";
  return "other";
}

/** PEM certificates pasted into the body: the span from the first BEGIN to the last END line. */
export function pastedPem(text: string): string | undefined {
  const start = text.indexOf("-----BEGIN CERTIFICATE-----");
  const endMark = "-----END CERTIFICATE-----";
  const end = text.lastIndexOf(endMark);
  if (start < 0 || end < start) return undefined;
  return `${text.slice(start, end + endMark.length)}\n`;
}

/** The http(s) links a message names, in its text and in the href of its HTML, once each. */
export function findLinks(r: Reply): string[] {
  const out: string[] = [];
  const add = (u: string) => {
    const clean = u.replace(/&amp;/g, "&").replace(/[).,;:!?'"\]>]+$/, "");
    try {
      const url = new URL(clean);
      if ((url.protocol === "https:" || url.protocol === "http:") && !out.includes(url.href)) out.push(url.href);
    } catch {
      /* not a URL */
    }
  };
  for (const m of r.html.matchAll(/href\s*=\s*["']([^"']+)["']/gi)) add(m[1]!);
  for (const m of r.text.matchAll(/https?:\/\/[^\s<>"]+/gi)) add(m[0]);
  return out;
}

/** Whether credd may fetch `link`: https, and its host on mailbox.download_hosts. */
export function linkAllowed(link: string, hosts: readonly string[]): { ok: true; url: URL } | { ok: false; why: string } {
  let url: URL;
  try {
    url = new URL(link);
  } catch {
    return { ok: false, why: "it is not a valid URL" };
  }
  if (url.protocol !== "https:") return { ok: false, why: "it is not https" };
  if (url.username || url.password) return { ok: false, why: "it carries a user name or password" };
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (!hosts.includes(host)) return { ok: false, why: `its host ${host} is not on mailbox.download_hosts` };
  return { ok: true, url };
}

export interface ReplyDetails {
  client_id?: string;
  idp_url?: string;
  scope?: string;
}

/** "Client ID: …", "IDP URL: …", "Scope: …" lines, as Stellantis' replies name them. */
export function replyDetails(r: Reply): ReplyDetails {
  const text = r.text;
  const pick = (re: RegExp): string | undefined => {
    const m = re.exec(text);
    return m?.[1]?.trim().replace(/[.,;]$/, "") || undefined;
  };
  const out: ReplyDetails = {};
  const id = pick(/^[ \t>*-]*client[ _-]?id\s*[:=]\s*([A-Za-z0-9._~-]{3,200})\s*$/im);
  const idp = pick(/^[ \t>*-]*(?:idp|token)[ _-]?(?:url|endpoint)\s*[:=]\s*(https:\/\/\S+)\s*$/im);
  const scope = pick(/^[ \t>*-]*scopes?\s*[:=]\s*([\x21-\x7e ]{1,200})$/im);
  if (id) out.client_id = id;
  if (idp) out.idp_url = idp;
  if (scope) out.scope = scope;
  return out;
}

/** The YAML lines that would bring the credential's config in line with what the reply names. */
export function detailLines(cred: CredentialConfig, d: ReplyDetails): string[] {
  const lines: string[] = [];
  if (d.client_id && d.client_id !== cred.client_id) lines.push(`client_id: ${d.client_id}`);
  if (d.idp_url && cred.oauth && d.idp_url !== cred.oauth.token_url) lines.push(`oauth.token_url: ${d.idp_url}`);
  if (d.scope && cred.oauth && d.scope !== cred.oauth.scope) lines.push(`oauth.scope: "${d.scope}"`);
  return lines;
}
