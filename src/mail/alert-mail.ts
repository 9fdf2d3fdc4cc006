// The alert digest: one email for every alert due in a check, grouped by credential, worst first.
import type { Config } from "../config/types.js";
import { worstSeverity, type Situation } from "../domain/alerts.js";
import { visible } from "../domain/untrusted.js";
import { newMessageId, type OutgoingMail } from "./message.js";

export interface ResolvedAlert {
  credential: string | null;
  title: string;
  opened_at: string;
}

const GROUP = (c: string | null) => c ?? "credd (all credentials)";

export function composeAlertDigest(config: Config, fire: Situation[], resolved: ResolvedAlert[], now: Date): OutgoingMail {
  const worst = worstSeverity(fire);
  const ordered = [...fire].sort((a, b) => (a.severity === b.severity ? 0 : a.severity === "critical" ? -1 : 1));
  const head = ordered[0];
  const total = fire.length + resolved.length;
  const label = worst ? worst.toUpperCase() : "RESOLVED";
  const first = head ? `${head.credential ?? "credd"}: ${head.title}` : `${resolved[0]!.credential ?? "credd"}: ${resolved[0]!.title}`;
  const subject = `[credd] ${label} ${visible(first)}${total > 1 ? ` (+${total - 1} more)` : ""}`;

  const lines: string[] = [`credd on ${config.file}, ${now.toISOString()}`, ""];
  const names = [...new Set([...fire.map((f) => f.credential), ...resolved.map((r) => r.credential)])];
  for (const name of names) {
    lines.push(`== ${GROUP(name)} ==`);
    for (const a of ordered.filter((f) => f.credential === name)) {
      // Details carry names someone else chose (an inbox file, a certificate's subject): never a raw control character.
      lines.push(`${a.severity.toUpperCase()}: ${visible(a.title)}`, `  ${visible(a.detail)}`, `  what to do: ${visible(a.action)}`, "");
    }
    for (const r of resolved.filter((x) => x.credential === name)) {
      lines.push(`RESOLVED: ${visible(r.title)} (open since ${r.opened_at})`, "");
    }
  }
  lines.push("-- ", "credd status shows every credential; this email is sent once per threshold and situation.");
  const to = worst === "critical" ? [...new Set([...config.alerts.to, ...config.alerts.critical_to])] : config.alerts.to;
  return {
    messageId: newMessageId(config.smtp.from),
    from: config.smtp.from,
    to,
    cc: [],
    subject,
    text: lines.join("\n") + "\n",
    attachments: [],
  };
}

export function composeTestAlert(config: Config, now: Date): OutgoingMail {
  return {
    messageId: newMessageId(config.smtp.from),
    from: config.smtp.from,
    to: [...new Set([...config.alerts.to, ...config.alerts.critical_to])],
    cc: [],
    subject: "[credd] TEST: the alert path works",
    text: `This is a test alert sent by \`credd alerts test\` at ${now.toISOString()} with ${config.file}.\nIf you read this, credd can reach ops by email.\n`,
    attachments: [],
  };
}

/**
 * A shared store unreachable for minutes (daemon/store-outage.ts): sent straight over SMTP by the
 * host that cannot reach it, since the outbox lives in the store. Critical: this host does nothing
 * but serve tokens it already has. No secret: the error is describePgError's (server, file, fix).
 */
export function composeStoreDownMail(config: Config, o: { host: string; since: string; error: string; now: Date }): OutgoingMail {
  return {
    messageId: newMessageId(config.smtp.from),
    from: config.smtp.from,
    to: [...new Set([...config.alerts.to, ...config.alerts.critical_to])],
    cc: [],
    subject: visible(`[credd] CRITICAL ${o.host}: the shared store has been unreachable since ${o.since}`),
    text:
      [
        `credd on ${o.host} (${config.file}), ${o.now.toISOString()}`,
        "",
        `CRITICAL: the shared store (PostgreSQL) has been unreachable from ${o.host} since ${o.since}.`,
        `  last error: ${visible(o.error)}`,
        "  Tokens already in runtime_dir are still served; nothing else is done (no check, no email, no go-live) until it is back.",
        "  what to do: check the PostgreSQL server and the network from this host (`credd status` names the server);",
        "  credd resumes by itself when it can reach it, and sends a second email then.",
        "",
        "-- ",
        "Sent directly over SMTP (the outbox is in the store): once per host and outage.",
      ].join("\n") + "\n",
    attachments: [],
  };
}

/** The end of that outage: queued in the outbox again (durable, retried), once per host and outage. */
export function composeStoreBackMail(
  config: Config,
  o: { host: string; since: string; until: string; downMailSent: boolean; now: Date },
): OutgoingMail {
  return {
    messageId: newMessageId(config.smtp.from),
    from: config.smtp.from,
    to: [...new Set([...config.alerts.to, ...config.alerts.critical_to])],
    cc: [],
    subject: visible(`[credd] RESOLVED ${o.host}: the shared store can be reached again`),
    text:
      [
        `credd on ${o.host} (${config.file}), ${o.now.toISOString()}`,
        "",
        `RESOLVED: the shared store (PostgreSQL) was unreachable from ${o.host} from ${o.since} to ${o.until}; credd works again.`,
        o.downMailSent
          ? "  (the email saying it was down went out then)"
          : "  (the email saying it was down could not be sent then: SMTP failed too; this is the first word of it)",
        "",
        "-- ",
        "credd status shows every credential and host.",
      ].join("\n") + "\n",
    attachments: [],
  };
}
