// The optional `mailbox:` section: where Stellantis' replies are read (IMAP or a Maildir), who may
// send them, which hosts credd may download from and where handled messages go.

import type { ImapConfig, MailboxConfig } from "./types.js";
import { addressProblem } from "./address.js";
import { describe, filePath, get, int, isUnset, mapping, quote, str } from "./checks.js";
import type { Context } from "./credential.js";
import { child, item, type At, type Issues } from "./issues.js";
import { secretPath } from "./secrets.js";

export const MAILBOX_DEFAULTS = {
  folder: "INBOX",
  done_folder: "credd/done",
  refused_folder: "credd/refused",
  imaps_port: 993,
} as const;

const SECRETS_FROM_FILES = {
  problem: "secrets only come from files: use password_file or access_token_file",
  fix: "put the password in a file (or a systemd credential) and name it with mailbox.imap.password_file",
};

const EXAMPLE = "e.g. mailbox: { imap: { host: imap.partner.example, user: credd@partner.example, password_file: /etc/credd/imap-password } }";

/** The section, or undefined when it is absent or has problems (then `ix` has them). */
export function checkMailbox(ix: Issues, at: At, v: unknown, ctx: Context, contact: string | undefined): MailboxConfig | undefined {
  if (isUnset(v)) return undefined;
  const m = mapping(ix, at, v, { known: ["imap", "maildir", "senders", "download_hosts", "done_folder", "refused_folder"] }, EXAMPLE);
  if (!m) return undefined;
  const before = ix.list.length;
  const rawImap = get(m, "imap");
  const rawMaildir = get(m, "maildir");
  if (!isUnset(rawImap) && !isUnset(rawMaildir)) {
    ix.add(child(at, "maildir"), "is set beside mailbox.imap: credd reads one source", "keep either imap: or maildir:, not both");
  } else if (isUnset(rawImap) && isUnset(rawMaildir)) {
    ix.add(
      child(at, "imap"),
      "is missing: the mailbox section needs a source",
      "add imap: { host, user, password_file } or maildir: /var/mail/credd",
    );
  }
  const imap = isUnset(rawImap) ? undefined : checkImap(ix, child(at, "imap"), rawImap, ctx);
  const maildir = isUnset(rawMaildir) ? undefined : filePath(ix, child(at, "maildir"), rawMaildir, ctx.dir, "e.g. maildir: /var/mail/credd");
  const senders = checkSenders(ix, child(at, "senders"), get(m, "senders"), contact);
  const hosts = checkHosts(ix, child(at, "download_hosts"), get(m, "download_hosts"));
  const done = folderName(ix, child(at, "done_folder"), get(m, "done_folder"), MAILBOX_DEFAULTS.done_folder);
  const refused = folderName(ix, child(at, "refused_folder"), get(m, "refused_folder"), MAILBOX_DEFAULTS.refused_folder);
  if (done !== undefined && done === refused) {
    ix.add(child(at, "refused_folder"), `is the same folder as done_folder (${quote(done)})`, "name two folders, e.g. credd/done and credd/refused");
  }
  if (ix.list.length > before || !senders || !hosts || done === undefined || refused === undefined) return undefined;
  const out: MailboxConfig = { senders, download_hosts: hosts, done_folder: done, refused_folder: refused };
  if (imap) out.imap = imap;
  if (maildir !== undefined) out.maildir = maildir;
  return out;
}

function checkImap(ix: Issues, at: At, v: unknown, ctx: Context): ImapConfig | undefined {
  const example = "e.g. imap: { host: imap.partner.example, user: credd@partner.example, password_file: /etc/credd/imap-password }";
  const m = mapping(
    ix,
    at,
    v,
    {
      known: ["host", "port", "user", "password_file", "access_token_file", "ca_file", "folder"],
      forbidden: { password: SECRETS_FROM_FILES, pass: SECRETS_FROM_FILES, access_token: SECRETS_FROM_FILES },
    },
    example,
  );
  if (!m) return undefined;
  const k = (key: string): At => child(at, key);
  const before = ix.list.length;
  const host = isUnset(get(m, "host")) ? missing(ix, k("host"), "e.g. host: imap.partner.example") : hostName(ix, k("host"), get(m, "host"));
  const port = isUnset(get(m, "port")) ? MAILBOX_DEFAULTS.imaps_port : int(ix, k("port"), get(m, "port"), 1, 65535, "port");
  const user = isUnset(get(m, "user"))
    ? missing(ix, k("user"), "e.g. user: credd@partner.example")
    : str(ix, k("user"), get(m, "user"), "e.g. user: credd@partner.example");
  const rawPw = get(m, "password_file");
  const rawTok = get(m, "access_token_file");
  if (isUnset(rawPw) && isUnset(rawTok)) {
    ix.add(
      k("password_file"),
      "is missing: credd needs a password (or an OAuth2 token) to log in",
      "add password_file: FILE, or access_token_file: FILE for XOAUTH2",
    );
  } else if (!isUnset(rawPw) && !isUnset(rawTok)) {
    ix.add(
      k("access_token_file"),
      "is set beside password_file: credd logs in one way",
      "keep password_file (LOGIN) or access_token_file (XOAUTH2), not both",
    );
  }
  const pw = isUnset(rawPw) ? undefined : secretPath(ix, k("password_file"), rawPw, ctx.dir, ctx.env);
  const tok = isUnset(rawTok) ? undefined : secretPath(ix, k("access_token_file"), rawTok, ctx.dir, ctx.env);
  const ca = isUnset(get(m, "ca_file")) ? undefined : filePath(ix, k("ca_file"), get(m, "ca_file"), ctx.dir, "e.g. ca_file: /etc/credd/imap-ca.pem");
  const folder = folderName(ix, k("folder"), get(m, "folder"), MAILBOX_DEFAULTS.folder);
  if (ix.list.length > before || host === undefined || port === undefined || user === undefined || folder === undefined) return undefined;
  const out: ImapConfig = { host, port, user, folder };
  if (pw !== undefined) out.password_file = pw;
  if (tok !== undefined) out.access_token_file = tok;
  if (ca !== undefined) out.ca_file = ca;
  return out;
}

function missing(ix: Issues, at: At, fix: string): undefined {
  ix.add(at, "is missing", fix);
  return undefined;
}

const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const HOST = new RegExp(`^(?:${LABEL})(?:\\.${LABEL})*$`);

/** A host name or IP address, without scheme, port or path. */
function hostName(ix: Issues, at: At, v: unknown): string | undefined {
  const s = str(ix, at, v, "e.g. imap.partner.example");
  if (s === undefined) return undefined;
  const bare = s.replace(/^\[(.*)\]$/, "$1");
  if (HOST.test(bare) || (/^[0-9a-fA-F:]+$/.test(bare) && bare.includes(":"))) return bare.toLowerCase();
  const fix =
    /^[a-z]+:\/\//i.test(s) || /[:/]/.test(s)
      ? `write the host name alone, e.g. ${quote(hostOf(s))}`
      : "write a host name, e.g. imap.partner.example";
  ix.add(at, `is not a host name, got ${quote(s)}`, fix);
  return undefined;
}

function hostOf(s: string): string {
  try {
    return new URL(/^[a-z]+:\/\//i.test(s) ? s : `https://${s}`).hostname;
  } catch {
    return "download.example";
  }
}

/** "@domain" (anyone there) or "name@domain"; default the domain of stellantis.contact. */
function checkSenders(ix: Issues, at: At, v: unknown, contact: string | undefined): string[] | undefined {
  const fix = 'a list of addresses or "@domain" entries, e.g. senders: ["@mpsa.com"]';
  if (isUnset(v)) return contact ? [contact.slice(contact.lastIndexOf("@")).toLowerCase()] : undefined;
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.length === 0) {
    ix.add(at, `must be a non-empty list, got ${Array.isArray(list) ? "an empty list" : describe(v)}`, fix);
    return undefined;
  }
  const out: string[] = [];
  list.forEach((x: unknown, i) => {
    const a = typeof v === "string" ? at : item(at, i);
    const s = str(ix, a, x, fix);
    if (s === undefined) return;
    const problem = addressProblem(s.startsWith("@") ? `any${s}` : s);
    if (problem) ix.add(a, `${problem}, got ${quote(s)}`, fix);
    else out.push(s.toLowerCase());
  });
  return out.length === list.length ? out : undefined;
}

function checkHosts(ix: Issues, at: At, v: unknown): string[] | undefined {
  if (isUnset(v)) return [];
  if (!Array.isArray(v)) {
    ix.add(at, `must be a list of host names, got ${describe(v)}`, "e.g. download_hosts: [download.stellantis.example]");
    return undefined;
  }
  const out: string[] = [];
  v.forEach((x: unknown, i) => {
    const h = hostName(ix, item(at, i), x);
    if (h !== undefined) out.push(h);
  });
  return out.length === v.length ? out : undefined;
}

/** An IMAP folder name (also a Maildir++ folder: `credd/done` is `.credd.done`). */
function folderName(ix: Issues, at: At, v: unknown, dflt: string): string | undefined {
  if (isUnset(v)) return dflt;
  const s = str(ix, at, v, `e.g. ${dflt}`);
  if (s === undefined) return undefined;
  if (/(^|\/)\.\.?(\/|$)|^\/|\/$|\/\/|\.\./.test(s) || s.includes("\\")) {
    ix.add(at, `is not a usable folder name, got ${quote(s)}`, `name a folder with / between its parts, e.g. ${dflt}`);
    return undefined;
  }
  return s;
}
