// The renewals table: a key pair + CSR from creation until it goes live or is superseded.
import { prep, type Db } from "./db.js";

export type RenewalState = "created" | "sent" | "signed" | "registered" | "live" | "superseded";
export const PENDING_STATES: readonly RenewalState[] = ["created", "sent", "signed", "registered"];

export interface RenewalRow {
  id: number;
  credential: string;
  version: number;
  kind: "enroll" | "renew";
  forced: 0 | 1;
  state: RenewalState;
  reason: string;
  spki_sha256: string;
  key_type: string;
  created_at: string;
  state_since: string;
  sent_at: string | null;
  reminded_at: string | null;
  remind_count: number;
  ended_at: string | null;
}

export function pendingRenewal(db: Db, credential: string): RenewalRow | undefined {
  return prep(db, `SELECT * FROM renewals WHERE credential = ? AND state IN ('created','sent','signed','registered')`).get(credential) as
    | RenewalRow
    | undefined;
}

export function latestRenewal(db: Db, credential: string): RenewalRow | undefined {
  return prep(db, "SELECT * FROM renewals WHERE credential = ? ORDER BY id DESC LIMIT 1").get(credential) as RenewalRow | undefined;
}

export function insertRenewal(
  db: Db,
  r: Pick<RenewalRow, "credential" | "version" | "kind" | "forced" | "reason" | "spki_sha256" | "key_type" | "created_at">,
): number {
  const res = prep(
    db,
    `INSERT INTO renewals (credential, version, kind, forced, state, reason, spki_sha256, key_type, created_at, state_since)
       VALUES (@credential, @version, @kind, @forced, 'created', @reason, @spki_sha256, @key_type, @created_at, @created_at)`,
  ).run(r);
  return Number(res.lastInsertRowid);
}

export function getRenewal(db: Db, id: number): RenewalRow | undefined {
  return prep(db, "SELECT * FROM renewals WHERE id = ?").get(id) as RenewalRow | undefined;
}

export function setRenewalState(db: Db, id: number, state: RenewalState, at: string): void {
  const ended = state === "live" || state === "superseded" ? at : null;
  prep(db, "UPDATE renewals SET state = ?, state_since = ?, ended_at = COALESCE(?, ended_at) WHERE id = ?").run(state, at, ended, id);
}

/** Called when the CSR email actually left: created → sent (a reminder does not change the state). */
export function markCsrSent(db: Db, id: number, at: string): void {
  prep(
    db,
    `UPDATE renewals SET sent_at = COALESCE(sent_at, @at),
       state = CASE WHEN state = 'created' THEN 'sent' ELSE state END,
       state_since = CASE WHEN state = 'created' THEN @at ELSE state_since END
     WHERE id = @id`,
  ).run({ id, at });
}

/** Recorded when a reminder is queued, so the next check does not queue another. */
export function markReminded(db: Db, id: number, at: string): void {
  prep(db, "UPDATE renewals SET reminded_at = ?, remind_count = remind_count + 1 WHERE id = ?").run(at, id);
}

export interface ProbeFields {
  probe_attempts: number;
  next_probe_at: string | null;
  last_probe_error: string | null;
  registration_mail_at: string | null;
}

export function probeFields(db: Db, id: number): ProbeFields {
  return prep(db, "SELECT probe_attempts, next_probe_at, last_probe_error, registration_mail_at FROM renewals WHERE id = ?").get(id) as ProbeFields;
}

export function recordProbeFailure(db: Db, id: number, error: string, nextProbeAt: string): void {
  prep(db, "UPDATE renewals SET probe_attempts = probe_attempts + 1, last_probe_error = ?, next_probe_at = ? WHERE id = ?").run(
    error,
    nextProbeAt,
    id,
  );
}

export function markRegistrationMailed(db: Db, id: number, at: string): void {
  prep(db, "UPDATE renewals SET registration_mail_at = ? WHERE id = ?").run(at, id);
}
