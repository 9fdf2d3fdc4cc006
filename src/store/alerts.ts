// The alerts table: open situations and what was last sent about them.
import type { Situation } from "../domain/alerts.js";
import { prep, type Db } from "./db.js";

export interface AlertRow {
  id: number;
  credential: string | null;
  kind: string;
  stage: string;
  severity: "warning" | "critical";
  title: string;
  detail: string;
  action: string;
  event: 0 | 1;
  opened_at: string;
  last_sent_at: string;
  resolved_at: string | null;
}

export function openAlerts(db: Db): AlertRow[] {
  return prep(db, "SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY id").all() as AlertRow[];
}

/** Records that `s` was sent now: a new open alert, or the open one moved to its new stage. */
export function upsertAlert(db: Db, s: Situation, at: string): void {
  const open = prep(db, "SELECT id FROM alerts WHERE resolved_at IS NULL AND COALESCE(credential, '') = COALESCE(?, '') AND kind = ?").get(
    s.credential,
    s.kind,
  ) as { id: number } | undefined;
  const row = { ...s, event: s.event ? 1 : 0, at };
  if (open) {
    prep(
      db,
      "UPDATE alerts SET stage = @stage, severity = @severity, title = @title, detail = @detail, action = @action, last_sent_at = @at WHERE id = @id",
    ).run({ ...row, id: open.id });
  } else {
    prep(
      db,
      `INSERT INTO alerts (credential, kind, stage, severity, title, detail, action, event, opened_at, last_sent_at)
       VALUES (@credential, @kind, @stage, @severity, @title, @detail, @action, @event, @at, @at)`,
    ).run(row);
  }
}

export function resolveAlert(db: Db, id: number, at: string): void {
  prep(db, "UPDATE alerts SET resolved_at = ? WHERE id = ?").run(at, id);
}

/** A one-off (event) is stored closed: it was sent, and it never gets a "resolved" email. */
export function recordEvent(db: Db, s: Situation, at: string): void {
  prep(
    db,
    `INSERT INTO alerts (credential, kind, stage, severity, title, detail, action, event, opened_at, last_sent_at, resolved_at)
     VALUES (@credential, @kind, @stage, @severity, @title, @detail, @action, 1, @at, @at, @at)`,
  ).run({ ...s, at });
}

export function eventSent(db: Db, s: Situation): boolean {
  return (
    prep(db, "SELECT 1 FROM alerts WHERE event = 1 AND COALESCE(credential, '') = COALESCE(?, '') AND kind = ? AND stage = ?").get(
      s.credential,
      s.kind,
      s.stage,
    ) !== undefined
  );
}
