// Everything `status` and the alert rules read, for all credentials at once: one query per table
// in one read transaction, instead of a dozen point queries per credential (1,000 credentials:
// ~12,000 queries). The maps are keyed by credential name; one transaction means one moment.
import type { AlertRow } from "./alerts.js";
import type { CertificateRow } from "./certificates.js";
import type { CheckRow } from "./checks.js";
import { inTransaction, prep, type Db } from "./db.js";
import type { HookRunRow, IngestRow } from "./history.js";
import type { ProbeFields, RenewalRow } from "./renewals.js";
import type { TokenRow } from "./tokens.js";

/** A queued email without its body (status and the alert rules never need the message itself). */
export interface QueuedSummary {
  id: number;
  kind: string;
  credential: string | null;
  created_at: string;
  attempts: number;
  last_error: string | null;
  /** 1: the last failure was permanent (a person must fix something). */
  last_error_permanent: number;
}

/** What status and the alert rules use of a live certificate (not its subject, issuer or key hash). */
export type LiveCertificate = Pick<
  CertificateRow,
  | "credential"
  | "version"
  | "serial"
  | "not_before"
  | "not_after"
  | "sha256"
  | "source"
  | "installed_at"
  | "went_live_at"
  | "subject"
  | "ca_not_after"
  | "ca_not_after_role"
  | "ca_not_after_subject"
  | "ca_not_after_serial"
>;

export interface Snapshot {
  live: Map<string, LiveCertificate>;
  pending: Map<string, RenewalRow & ProbeFields>;
  /** created_at of each credential's latest renewal (its last CSR). */
  latestCsrAt: Map<string, string>;
  checks: Map<string, CheckRow>;
  tokens: Map<string, TokenRow>;
  /** The runs of each credential's most recent deploy (as lastHookRuns). */
  hooks: Map<string, HookRunRow[]>;
  /** Each credential's last refused ingest, except a previously-live certificate taken in again. */
  refusals: Map<string, IngestRow & { id: number }>;
  /** Unsent emails, oldest first. */
  queued: QueuedSummary[];
  /** Open alerts, by id. */
  alerts: AlertRow[];
  lastCheckAt: string | undefined;
  /** The check period `credd run` last stored (store/checks.ts, setCheckPeriodMs); undefined: none yet. */
  checkPeriodMs: number | undefined;
}

const SQL = {
  live: `SELECT credential, version, serial, not_before, not_after, sha256, source, installed_at, went_live_at, subject,
      ca_not_after, ca_not_after_role, ca_not_after_subject, ca_not_after_serial
    FROM certificates WHERE live = 1`,
  pending: "SELECT * FROM renewals WHERE state IN ('created','sent','signed','registered')",
  latest: `SELECT r.credential, r.created_at FROM renewals r
    JOIN (SELECT MAX(id) AS id FROM renewals GROUP BY credential) m ON m.id = r.id`,
  checks: "SELECT * FROM checks",
  tokens: "SELECT * FROM tokens",
  hooks: `SELECT h.* FROM hook_runs h JOIN hook_runs l ON l.id IN (SELECT MAX(id) FROM hook_runs GROUP BY credential)
    AND h.credential = l.credential AND h.started_at = l.started_at ORDER BY h.id`,
  // A certificate that was live before, taken in again, is not news: the person was told at once.
  refusals: `SELECT * FROM ingests WHERE id IN
    (SELECT MAX(id) FROM ingests WHERE outcome = 'refused' AND credential IS NOT NULL
       AND COALESCE(check_name, '') <> 'previously-live' GROUP BY credential)`,
  queued: "SELECT id, kind, credential, created_at, attempts, last_error, last_error_permanent FROM outbox WHERE sent_at IS NULL ORDER BY id",
  alerts: "SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY id",
  lastCheck: "SELECT value FROM meta WHERE key = 'last_check_at'",
  checkPeriod: "SELECT value FROM meta WHERE key = 'check_period_ms'",
} as const;

function byCredential<T extends { credential: string | null }>(rows: unknown[]): Map<string, T> {
  const m = new Map<string, T>();
  for (const r of rows as T[]) if (r.credential !== null) m.set(r.credential, r);
  return m;
}

export function readSnapshot(db: Db): Snapshot {
  return inTransaction(db, (): Snapshot => {
    const hooks = new Map<string, HookRunRow[]>();
    for (const h of prep(db, SQL.hooks).all() as HookRunRow[]) {
      const runs = hooks.get(h.credential);
      if (runs) runs.push(h);
      else hooks.set(h.credential, [h]);
    }
    const latestCsrAt = new Map<string, string>();
    for (const r of prep(db, SQL.latest).all() as { credential: string; created_at: string }[]) {
      latestCsrAt.set(r.credential, r.created_at);
    }
    return {
      live: byCredential(prep(db, SQL.live).all()),
      pending: byCredential(prep(db, SQL.pending).all()),
      latestCsrAt,
      checks: byCredential(prep(db, SQL.checks).all()),
      tokens: byCredential(prep(db, SQL.tokens).all()),
      hooks,
      refusals: byCredential(prep(db, SQL.refusals).all()),
      queued: prep(db, SQL.queued).all() as QueuedSummary[],
      alerts: prep(db, SQL.alerts).all() as AlertRow[],
      lastCheckAt: (prep(db, SQL.lastCheck).get() as { value: string } | undefined)?.value,
      checkPeriodMs: periodMs((prep(db, SQL.checkPeriod).get() as { value: string } | undefined)?.value),
    };
  });
}

/** A stored period in ms, or undefined when there is none or it is not a positive number. */
export function periodMs(value: string | undefined): number | undefined {
  const n = Number(value);
  return value !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}
