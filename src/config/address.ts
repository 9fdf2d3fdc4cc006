// Email addresses as credd uses them: plain ASCII addr-spec (RFC 5322 dot-atom@domain), and the
// `Name <addr>` mailbox form for smtp.from. Stricter than the RFCs on purpose: these addresses go
// into certificates (IA5String) and into SMTP envelopes, where quoted local parts only cause trouble.

import { quote, str } from "./checks.js";
import type { At, Issues } from "./issues.js";

const ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const ADDRESS = new RegExp(`^${ATOM}(?:\\.${ATOM})*@${LABEL}(?:\\.${LABEL})+$`);

/** Why s is not an address we accept, or undefined when it is one. */
export function addressProblem(s: string): string | undefined {
  if (/[^\x00-\x7F]/.test(s)) return "must be an ASCII email address (no accented or other non-ASCII letters)";
  if (!s.includes("@")) return "is not an email address: it has no @";
  const local = s.slice(0, s.lastIndexOf("@"));
  if (local.length > 64 || s.length > 254) return "is too long for an email address";
  if (!ADDRESS.test(s)) return "is not a valid email address (expected name@domain.example)";
  return undefined;
}

export function emailAddress(ix: Issues, at: At, v: unknown, example: string): string | undefined {
  const s = str(ix, at, v, example);
  if (s === undefined) return undefined;
  const problem = addressProblem(s);
  if (problem) {
    ix.add(at, `${problem}, got ${quote(s)}`, example);
    return undefined;
  }
  return s;
}

/** Characters that need the display name quoted (RFC 5322 specials). */
const SPECIALS = /[()<>[\]:;@\\,."]/;

/** `Name <addr>`, `"Name" <addr>`, `<addr>` or a bare addr; returned as written. */
export function mailbox(ix: Issues, at: At, v: unknown, example: string): string | undefined {
  const s = str(ix, at, v, example);
  if (s === undefined) return undefined;
  const m = /^(.*?)\s*<([^<>]*)>$/.exec(s);
  const addr = m ? (m[2] ?? "") : s;
  const problem = addressProblem(addr);
  if (problem) {
    ix.add(at, `the address ${problem}, got ${quote(addr)}`, example);
    return undefined;
  }
  const name = m?.[1] ?? "";
  const quoted = /^"([^"\\]*)"$/.exec(name);
  if (!m && /[<>]/.test(s)) {
    ix.add(at, "has unbalanced < >", example);
    return undefined;
  }
  if (name && !quoted && SPECIALS.test(name)) {
    ix.add(at, "the display name contains characters that must be quoted", `quote the name: '"${name.replace(/"/g, "")}" <${addr}>'`);
    return undefined;
  }
  return s;
}
