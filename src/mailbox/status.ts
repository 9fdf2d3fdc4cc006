// What `credd status` shows about the mailbox: whether the source can be read, and per credential
// the last reply handled, with the client details it named and the config lines they imply.
import type { Config, CredentialConfig, MailboxConfig } from "../config/types.js";
import { detailLines, type ReplyDetails } from "./reply.js";
import type { Store } from "../store/store.js";

export interface MailboxStatus {
  source: string;
  /** false while the source fails (since failing_since). */
  reading: boolean;
  failing_since: string | null;
  last_error: string | null;
  last_ok_at: string | null;
}

export interface LastReply {
  at: string;
  /** installed, already-live, needs-person, auto-reply, duplicate */
  outcome: string;
  matched_by: string | null;
  subject: string | null;
  sender: string | null;
  /** Why credd stopped (needs-person), null otherwise. */
  reason: string | null;
  /** Client ID, IDP URL, scope the reply named; null when none. */
  details: ReplyDetails | null;
  /** YAML lines the config lacks for those details (empty once the config has them). */
  config_lines: string[];
}

/** The name a source is recorded under in SQLite. */
export function sourceNameOf(mb: MailboxConfig): string {
  if (mb.imap) return `imap:${mb.imap.user}@${mb.imap.host}:${mb.imap.port}/${mb.imap.folder}`;
  return `maildir:${mb.maildir ?? ""}`;
}

export async function mailboxStatusOf(config: Config, store: Store): Promise<MailboxStatus | undefined> {
  if (!config.mailbox) return undefined;
  const source = sourceNameOf(config.mailbox);
  const row = await store.mailboxSource(source);
  return {
    source,
    reading: !row?.failing_since,
    failing_since: row?.failing_since ?? null,
    last_error: row?.last_error ?? null,
    last_ok_at: row?.last_ok_at ?? null,
  };
}

/** The last reply handled per credential (by name), for the credentials in `creds`. */
export async function lastRepliesOf(store: Store, creds: readonly CredentialConfig[]): Promise<Map<string, LastReply>> {
  const out = new Map<string, LastReply>();
  for (const r of await store.lastMailboxMessages()) {
    const cred = creds.find((c) => c.name === r.credential);
    if (!cred) continue;
    const details = r.details_json ? (JSON.parse(r.details_json) as ReplyDetails) : null;
    out.set(cred.name, {
      at: r.handled_at,
      outcome: r.outcome,
      matched_by: r.matched_by,
      subject: r.subject,
      sender: r.sender,
      reason: r.outcome === "needs-person" ? r.reason : null,
      details,
      config_lines: details ? detailLines(cred, details) : [],
    });
  }
  return out;
}
