// The mailbox_messages table: every message the mailbox source has looked at and what became of
// it, and the outbox lookup that ties a reply to the CSR or registration email it answers.
import { prep, type Db } from "./db.js";

export type MailboxOutcome = "installed" | "already-live" | "needs-person" | "auto-reply" | "duplicate" | "ignored";

export interface MailboxMessageRow {
  id: number;
  source: string;
  message_key: string;
  message_id: string | null;
  sender: string | null;
  subject: string | null;
  credential: string | null;
  matched_by: string | null;
  outcome: MailboxOutcome;
  reason: string | null;
  details_json: string | null;
  handled_at: string;
  folder: string | null;
  moved_at: string | null;
}

export type NewMailboxMessage = Omit<MailboxMessageRow, "id" | "moved_at">;

export function recordMailboxMessage(db: Db, r: NewMailboxMessage): number {
  const res = prep(
    db,
    `INSERT INTO mailbox_messages (source, message_key, message_id, sender, subject, credential, matched_by, outcome, reason, details_json, handled_at, folder)
     VALUES (@source, @message_key, @message_id, @sender, @subject, @credential, @matched_by, @outcome, @reason, @details_json, @handled_at, @folder)`,
  ).run(r);
  return Number(res.lastInsertRowid);
}

/** The keys of `source` already looked at (handled or left alone on purpose). */
export function seenMessageKeys(db: Db, source: string): Set<string> {
  const rows = prep(db, "SELECT message_key FROM mailbox_messages WHERE source = ?").all(source) as { message_key: string }[];
  return new Set(rows.map((r) => r.message_key));
}

export function mailboxMessage(db: Db, source: string, key: string): MailboxMessageRow | undefined {
  return prep(db, "SELECT * FROM mailbox_messages WHERE source = ? AND message_key = ?").get(source, key) as MailboxMessageRow | undefined;
}

/** Handled, but not moved yet (a crash between the record and the move): the move is finished first. */
export function unmovedMessages(db: Db, source: string): MailboxMessageRow[] {
  return prep(db, "SELECT * FROM mailbox_messages WHERE source = ? AND folder IS NOT NULL AND moved_at IS NULL ORDER BY id").all(
    source,
  ) as MailboxMessageRow[];
}

export function markMessageMoved(db: Db, id: number, at: string): void {
  prep(db, "UPDATE mailbox_messages SET moved_at = ? WHERE id = ?").run(at, id);
}

/** An earlier copy of the same message (same Message-ID) that credd acted on, if any. */
export function handledCopy(db: Db, messageId: string): MailboxMessageRow | undefined {
  return prep(db, "SELECT * FROM mailbox_messages WHERE message_id = ? AND outcome NOT IN ('ignored', 'duplicate') ORDER BY id LIMIT 1").get(
    messageId,
  ) as MailboxMessageRow | undefined;
}

/** The last message handled for each credential, for status. */
export function lastMailboxMessages(db: Db): MailboxMessageRow[] {
  return prep(
    db,
    `SELECT * FROM mailbox_messages WHERE id IN (SELECT MAX(id) FROM mailbox_messages WHERE credential IS NOT NULL GROUP BY credential)`,
  ).all() as MailboxMessageRow[];
}

export interface SentThread {
  message_id: string;
  credential: string;
  kind: string;
}

/** credd's own emails to the contact (CSR, reminders, registration) among `ids`, by Message-ID. */
export function sentThreads(db: Db, ids: readonly string[]): SentThread[] {
  if (ids.length === 0) return [];
  const out: SentThread[] = [];
  const st = prep(
    db,
    "SELECT message_id, credential, kind FROM outbox WHERE message_id = ? AND credential IS NOT NULL AND kind IN ('csr', 'csr-reminder', 'registration')",
  );
  for (const id of ids) {
    const r = st.get(id) as SentThread | undefined;
    if (r) out.push(r);
  }
  return out;
}

export interface MailboxSourceRow {
  source: string;
  failing_since: string | null;
  last_error: string | null;
  failures: number;
  alerted_at: string | null;
  last_ok_at: string | null;
}

export function mailboxSource(db: Db, source: string): MailboxSourceRow | undefined {
  return prep(db, "SELECT * FROM mailbox_sources WHERE source = ?").get(source) as MailboxSourceRow | undefined;
}

/** A failed attempt: the failure starts now unless it already had. */
export function recordSourceFailure(db: Db, source: string, error: string, at: string): MailboxSourceRow {
  prep(
    db,
    `INSERT INTO mailbox_sources (source, failing_since, last_error, failures) VALUES (@source, @at, @error, 1)
     ON CONFLICT (source) DO UPDATE SET failing_since = COALESCE(failing_since, @at), last_error = @error, failures = failures + 1`,
  ).run({ source, error, at });
  return mailboxSource(db, source)!;
}

export function markSourceAlerted(db: Db, source: string, at: string): void {
  prep(db, "UPDATE mailbox_sources SET alerted_at = ? WHERE source = ?").run(at, source);
}

/** It works: the failure (if any) ends; returns the row as it was, to tell ops it is over. */
export function recordSourceOk(db: Db, source: string, at: string): MailboxSourceRow | undefined {
  const before = mailboxSource(db, source);
  prep(
    db,
    `INSERT INTO mailbox_sources (source, last_ok_at) VALUES (@source, @at)
     ON CONFLICT (source) DO UPDATE SET failing_since = NULL, last_error = NULL, failures = 0, alerted_at = NULL, last_ok_at = @at`,
  ).run({ source, at });
  return before;
}
