// The checks and meta tables: when each credential was last checked, its last error, daemon facts.
import { inTransaction, prep, type Db } from "./db.js";
import { periodMs } from "./snapshot.js";

export interface CheckRow {
  credential: string;
  last_check_at: string;
  last_error: string | null;
  last_error_at: string | null;
}

export function recordCheck(db: Db, credential: string, now: Date, error?: string): void {
  const at = now.toISOString();
  prep(
    db,
    `INSERT INTO checks (credential, last_check_at, last_error, last_error_at) VALUES (@c, @at, @e, @eat)
     ON CONFLICT (credential) DO UPDATE SET last_check_at = @at, last_error = @e,
       last_error_at = COALESCE(@eat, last_error_at)`,
  ).run({ c: credential, at, e: error ?? null, eat: error ? at : null });
}

export interface CheckBeat {
  credential: string;
  at: Date;
  error?: string;
}

/** Many heartbeats in one transaction (the check writes one per credential). */
export function recordChecks(db: Db, beats: readonly CheckBeat[]): void {
  inTransaction(db, () => {
    for (const b of beats) recordCheck(db, b.credential, b.at, b.error);
  });
}

export function setMeta(db: Db, key: string, value: string): void {
  prep(db, "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(key, value);
}

export function getMeta(db: Db, key: string): string | undefined {
  const r = prep(db, "SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
  return r?.value;
}

/**
 * The time between checks that `credd run` expects from the schedule it runs (core/schedule.ts,
 * schedulePeriodMs), stored at start and at each reload: `credd status` judges a stale daemon by
 * it, not by a schedule it would have to work out again (or one edited but not yet reloaded).
 */
export function setCheckPeriodMs(db: Db, ms: number): void {
  setMeta(db, "check_period_ms", String(Math.round(ms)));
}

export function getCheckPeriodMs(db: Db): number | undefined {
  return periodMs(getMeta(db, "check_period_ms"));
}
