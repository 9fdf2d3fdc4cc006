// The outbox table: emails queued in SQLite before they leave, claimed by one sender at a time.
import type { OutgoingMail } from "../mail/message.js";
import { prep, type Db } from "./db.js";

export interface OutboxRow {
  id: number;
  message_id: string;
  kind: string;
  credential: string | null;
  renewal_id: number | null;
  mail_json: string;
  created_at: string;
  attempts: number;
  next_attempt_at: string;
  claimed_until: string | null;
  last_error: string | null;
  /** 1 when the last failure cannot cure itself (see src/mail/smtp.ts SmtpError.permanent). */
  last_error_permanent: number;
  sent_at: string | null;
}

export interface QueuedMail {
  row: OutboxRow;
  mail: OutgoingMail;
}

export function enqueueMail(db: Db, m: { mail: OutgoingMail; kind: string; credential?: string; renewalId?: number; now: Date }): number {
  const at = m.now.toISOString();
  const r = prep(
    db,
    `INSERT INTO outbox (message_id, kind, credential, renewal_id, mail_json, created_at, next_attempt_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
  ).run(m.mail.messageId, m.kind, m.credential ?? null, m.renewalId ?? null, JSON.stringify(m.mail), at, at);
  return Number(r.lastInsertRowid);
}

/**
 * Claims due, unsent mails for `holdMs` so that a second process (the CLI beside the daemon) does not
 * send them too. The UPDATE ... RETURNING is atomic in SQLite.
 */
export function claimDue(db: Db, now: Date, holdMs: number, limit = 20, onlyId?: number): QueuedMail[] {
  const at = now.toISOString();
  const until = new Date(now.getTime() + holdMs).toISOString();
  const rows = prep(
    db,
    `UPDATE outbox SET claimed_until = @until
       WHERE id IN (
         SELECT id FROM outbox
         WHERE sent_at IS NULL AND next_attempt_at <= @at
           AND (claimed_until IS NULL OR claimed_until <= @at)
           AND (@onlyId IS NULL OR id = @onlyId)
         ORDER BY id LIMIT @limit)
       RETURNING *`,
  ).all({ at, until, limit, onlyId: onlyId ?? null }) as OutboxRow[];
  return rows.sort((a, b) => a.id - b.id).map((row) => ({ row, mail: JSON.parse(row.mail_json) as OutgoingMail }));
}

/** Gives a claimed row back unsent, so that the next run picks it up at once. */
export function releaseClaim(db: Db, id: number): void {
  prep(db, "UPDATE outbox SET claimed_until = NULL WHERE id = ?").run(id);
}

/**
 * Gives back every claim still running at `now` on unsent rows; the number released. A host that
 * takes the lead calls it: a claim then belongs to a leader that died mid-send, and waiting it out
 * would hold a CSR email back for the claim's length (src/core/deliver.ts, CLAIM_MS).
 */
export function releaseLiveClaims(db: Db, now: Date): number {
  return prep(db, "UPDATE outbox SET claimed_until = NULL WHERE sent_at IS NULL AND claimed_until > ?").run(now.toISOString()).changes;
}

/** `note` records a partial refusal: sent to some recipients, refused for others (not resent). */
export function markMailSent(db: Db, id: number, now: Date, note: string | null = null): void {
  prep(db, "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, claimed_until = NULL, last_error = ? WHERE id = ?").run(
    now.toISOString(),
    note,
    id,
  );
}

/** `permanent`: retrying cannot help until a person fixes something; it is still retried, with backoff. */
export function markMailFailed(db: Db, id: number, error: string, nextAttemptAt: Date, permanent = false): void {
  prep(
    db,
    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, last_error_permanent = ?, next_attempt_at = ?, claimed_until = NULL WHERE id = ?",
  ).run(error, permanent ? 1 : 0, nextAttemptAt.toISOString(), id);
}

export function queuedMails(db: Db, credential?: string): OutboxRow[] {
  return prep(db, `SELECT * FROM outbox WHERE sent_at IS NULL AND (@c IS NULL OR credential = @c) ORDER BY id`).all({
    c: credential ?? null,
  }) as OutboxRow[];
}

/** The next time any queued mail becomes due, for the worker's timer. */
export function nextDueAt(db: Db): Date | undefined {
  const r = prep(db, "SELECT MIN(next_attempt_at) AS t FROM outbox WHERE sent_at IS NULL").get() as {
    t: string | null;
  };
  return r.t ? new Date(r.t) : undefined;
}

export function mailsForRenewal(db: Db, renewalId: number): OutboxRow[] {
  return prep(db, "SELECT * FROM outbox WHERE renewal_id = ? ORDER BY id").all(renewalId) as OutboxRow[];
}
