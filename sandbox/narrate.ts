// How the demo tells what happens: one timeline line per sandbox event and per credd log line worth
// a person's attention (the rest stays in credd.log and sandbox.log).
import type { LogLine } from "./child.js";
import type { SandboxEvent } from "./events.js";
import type { Timeline } from "./timeline.js";

/** A serial or fingerprint cut to its first 8 characters. */
export const short = (s: unknown): string => {
  const t = String(s ?? "");
  return t.length > 12 ? `${t.slice(0, 8)}…` : t;
};
const hhmm = (iso: unknown) => (typeof iso === "string" ? iso.slice(11, 16) : "?");
const day = (iso: unknown) => (typeof iso === "string" ? iso.slice(0, 10) : "?");
const secs = (ms: unknown) => `${Math.round(Number(ms) / 100) / 10} s`;

export function narrateSandbox(tl: Timeline, e: SandboxEvent): void {
  const d = e.data;
  switch (e.kind) {
    case "mail": {
      const att = Array.isArray(d.attachments) && d.attachments.length ? `  [${(d.attachments as string[]).join(", ")}]` : "";
      tl.line("mail", `${String(d.from)} -> ${(d.to as string[]).join(", ")}: "${String(d.subject)}"${att}`);
      return;
    }
    case "csr-received":
      tl.line("CA", `got the CSR for ${String(d.cn)}; signing it takes ${secs(d.delayMs)}`);
      return;
    case "signed":
      tl.line(
        "CA",
        d.link
          ? `signed ${String(d.cn)}: serial ${short(d.serial)}, valid ${day(d.notBefore)} to ${day(d.notAfter)}; replied by email with a download link and the client ID`
          : `signed ${String(d.cn)}: serial ${short(d.serial)}, valid ${day(d.notBefore)} to ${day(d.notAfter)}; link emailed back: inbox/${String(d.inboxFile)}`,
      );
      return;
    case "registration-received":
      tl.line("IDP", `the IDP team got certificate ${short(d.serial)} by email; binding it to the OAuth2 client takes ${secs(d.delayMs)}`);
      return;
    case "bound":
      tl.line("IDP", `bound certificate ${short(d.serial)} to the OAuth2 client (${String(d.why)})`);
      return;
    case "token-refused":
      tl.line("IDP", `refused certificate ${short(d.serial)}: invalid_client (not bound to the OAuth2 client yet)`);
      return;
    case "api":
      tl.line(
        "API",
        `GET ${String(d.path)}?client_id=${String((d.query as Record<string, string>).client_id ?? "")} -> ${String(d.status)}${d.status === 200 ? " application/hal+json" : ""} (mTLS with certificate ${short(d.serial ?? d.certSha256)}, ${String(d.auth)} token bound to it)`,
      );
      return;
    case "csr-ignored":
    case "outage":
      tl.line("sandbox", e.text);
      return;
    case "mode":
      tl.line(
        "IDP",
        d.acceptAll
          ? "now accepts every certificate of its CA at once"
          : "now strict: a new certificate is refused until it arrives by email for registration (seed step 5)",
      );
      return;
    default:
      return; // started, token (credd says "token obtained"), stopped
  }
}

export function narrateCredd(tl: Timeline, l: LogLine): void {
  const msg = String(l.msg ?? "");
  switch (msg) {
    case "renewal started: key and CSR stored, CSR email queued":
      tl.line("credd", `renewal #${String(l.renewal)} (${String(l.kind)}) started: ${String(l.reason)}; key + CSR stored, CSR email queued`);
      return;
    case "email not sent, will retry":
      tl.line("credd", `${String(l.kind)} email not sent (${String(l.err)}); stays queued, retry at ${hhmm(l.retryAt)}`);
      return;
    case "signed certificate accepted and installed":
      tl.line(
        "credd",
        String(l.file).includes("/")
          ? `took ${String(l.file)} (downloaded from the reply's link): key, DN, dates, usage and chain checked; installed (renewal #${String(l.renewal)} signed)`
          : `took ${String(l.file)} from its inbox: key, DN, dates, usage and chain checked; installed (renewal #${String(l.renewal)} signed)`,
      );
      return;
    case "mailbox: a reply for a credential":
      tl.line(
        "credd",
        `read Stellantis' reply from its mailbox: "${String(l.subject)}" from ${String(l.from)}, matched by ${String(l.matchedBy)} (it answers credd's CSR email); following its link`,
      );
      return;
    case "mailbox: reply handled":
      tl.line(
        "credd",
        `the reply is handled (${(l.files as string[] | undefined)?.join(", ") ?? ""}); the message moved to credd/done, flagged seen`,
      );
      return;
    case "mailbox: a reply credd cannot finish by itself; ops emailed":
      tl.line("credd", `a reply it cannot finish by itself: ${String(l.reason)}; ops emailed`);
      return;
    case "IDP refused the new certificate: emailed it to the contact for registration":
      tl.line("credd", "the IDP refused the new certificate: it goes to the contact by email for registration; the old one stays live");
      return;
    case "certificate live":
      tl.line("credd", `certificate v${String(l.version)} (serial ${short(l.serial)}) is live: ${String(l.why)}`);
      return;
    case "token obtained":
      tl.line("credd", `token obtained with certificate v${String(l.certVersion)}: expires ${hhmm(l.expiresAt)}, refresh about ${hhmm(l.refreshAt)}`);
      return;
    case "token refresh failed; the current token is still served":
    case "token refresh failing and no valid token will be left within 10 minutes":
      tl.line("credd", `${msg} (${String(l.err)})`);
      return;
    default:
      if (/alert/.test(msg) && typeof l.subject === "string") {
        tl.line("credd", `ops alert queued: "${l.subject}"`);
        return;
      }
      if (typeof l.level === "number" && l.level >= 40 && !msg.startsWith("awaiting IDP registration")) {
        tl.line("credd", `${l.level >= 50 ? "error" : "warning"}: ${msg}${l.err ? ` (${String(l.err)})` : ""}`);
      }
  }
}
