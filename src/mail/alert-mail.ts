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
