// The one email ops get about a reply credd could not finish by itself (or that names client
// details the config lacks): what arrived, from whom, the links, why credd stopped, what finishes it.
import type { Config, CredentialConfig } from "../config/types.js";
import { newMessageId, type OutgoingMail } from "../mail/message.js";
import type { Reply } from "./reply.js";

export interface StopReason {
  /** One line: why credd stopped. */
  why: string;
  /** One line: the command or config line that finishes the job. */
  fix: string;
}

export interface OpsMailInput {
  config: Config;
  cred: CredentialConfig;
  reply: Pick<Reply, "fromText" | "subject" | "date" | "messageId">;
  /** Where the message now is, e.g. "IMAP folder credd/refused". */
  where: string;
  /** Attachment names with sizes, as found. */
  attachments: string[];
  links: string[];
  matchedBy: string;
  stops: StopReason[];
  /** Config lines the reply implies (client ID, IDP URL, scope); credd never changes the config. */
  configLines: string[];
  /** What went live, when something did. */
  installed?: string;
  now: Date;
}

export function composeOpsMail(i: OpsMailInput): OutgoingMail {
  const { cred } = i;
  const needsYou = i.stops.length > 0;
  const subject = needsYou
    ? `[credd] ${cred.name}: a reply from Stellantis needs you (${i.stops[0]!.why.slice(0, 80)})`
    : `[credd] ${cred.name}: the reply from Stellantis names settings your config lacks`;
  const lines = [
    `credd on ${i.config.file}, ${i.now.toISOString()}`,
    "",
    needsYou
      ? `A reply for credential ${cred.name} (MZP ${cred.mzp}) arrived and credd could not finish by itself.`
      : `A reply for credential ${cred.name} (MZP ${cred.mzp}) arrived${i.installed ? ` and ${i.installed}` : ""}.`,
    "",
    "What arrived:",
    `  From:        ${i.reply.fromText || "(no From header)"}`,
    `  Subject:     ${i.reply.subject || "(none)"}`,
    `  Date:        ${i.reply.date ? i.reply.date.toISOString() : "(none)"}`,
    `  Message-ID:  ${i.reply.messageId ?? "(none)"}`,
    `  Matched by:  ${i.matchedBy}`,
    `  Attachments: ${i.attachments.length ? i.attachments.join(", ") : "none"}`,
    `  Links:       ${i.links.length ? i.links[0] : "none"}`,
    ...i.links.slice(1).map((l) => `               ${l}`),
    `  Now in:      ${i.where}`,
    "",
  ];
  if (needsYou) {
    lines.push("Why credd stopped, and what finishes the job:");
    for (const s of i.stops) lines.push(`  - ${s.why}`, `    do: ${s.fix}`);
    lines.push("", `A refused certificate changed nothing in live/; \`credd status ${cred.name}\` shows where the renewal stands.`, "");
  }
  if (i.configLines.length > 0) {
    lines.push(
      `The reply names settings that ${cred.name}'s config lacks or has otherwise. credd does not change the config;`,
      `add these lines under the entry "- name: ${cred.name}" in ${i.config.file}, then reload (systemctl reload credd):`,
      "",
      ...yamlLines(i.configLines).map((l) => `    ${l}`),
      "",
    );
  }
  lines.push("-- ", "credd reads Stellantis' replies from the mailbox (docs/mailbox.md); this email is sent once per message.");
  return {
    messageId: newMessageId(i.config.smtp.from),
    from: i.config.smtp.from,
    to: i.config.alerts.to,
    cc: [],
    subject,
    text: lines.join("\n") + "\n",
    attachments: [],
  };
}

/** "oauth.scope: x" → nested YAML lines, as they go under the credential. */
function yamlLines(flat: string[]): string[] {
  const out: string[] = [];
  const nested = flat.filter((l) => l.startsWith("oauth."));
  out.push(...flat.filter((l) => !l.startsWith("oauth.")));
  if (nested.length) out.push("oauth:", ...nested.map((l) => `  ${l.slice("oauth.".length)}`));
  return out;
}

/** The mailbox cannot be read (a refused login, a TLS problem, or a failure that lasts), or reads again. */
export function composeSourceAlert(
  config: Config,
  a: { source: string; since: string; error?: string; fix?: string; resolved?: boolean; now: Date },
): OutgoingMail {
  const subject = a.resolved ? `[credd] RESOLVED mailbox: ${a.source} can be read again` : `[credd] WARNING mailbox: credd cannot read ${a.source}`;
  const lines = [
    `credd on ${config.file}, ${a.now.toISOString()}`,
    "",
    a.resolved
      ? `credd reads ${a.source} again (it could not since ${a.since}). Replies that arrived meanwhile are handled now.`
      : `credd cannot read ${a.source} since ${a.since}, so Stellantis' replies are not taken in by themselves.`,
    "",
  ];
  if (!a.resolved) {
    lines.push(
      `What fails: ${a.error ?? "(unknown)"}`,
      `What to do: ${a.fix ?? "check the mailbox section of the config"}`,
      "",
      "credd keeps trying, with backoff; until it reads the mailbox again, take replies in by hand: `credd ingest NAME FILE`.",
      "",
    );
  }
  lines.push("-- ", "credd reads Stellantis' replies from the mailbox (docs/mailbox.md); this email is sent once per failure.");
  return {
    messageId: newMessageId(config.smtp.from),
    from: config.smtp.from,
    to: config.alerts.to,
    cc: [],
    subject,
    text: lines.join("\n") + "\n",
    attachments: [],
  };
}
