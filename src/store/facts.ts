// What the renewal decision reads about each credential: its live certificate, its pending renewal
// and its latest CSR, at most one row per credential in each (core/facts.ts turns them into input).
import { inTransaction, prep, type Db } from "./db.js";

/** The columns the decision reads, per table. */
export interface LiveFacts {
  credential: string;
  serial: string;
  not_before: string;
  not_after: string;
  /** The earliest notAfter of the CAs above it (migration 0007); null for rows from before. */
  ca_not_after: string | null;
}
export interface PendingFacts {
  credential: string;
  id: number;
  /** One of the pending states: the queries select no other. */
  state: string;
  created_at: string;
  sent_at: string | null;
  reminded_at: string | null;
}
export interface LatestFacts {
  credential: string;
  created_at: string;
}

export interface DecisionFacts {
  live?: LiveFacts;
  pending?: PendingFacts;
  latest?: LatestFacts;
}

const LIVE = "SELECT credential, serial, not_before, not_after, ca_not_after FROM certificates WHERE live = 1";
const PENDING = `SELECT credential, id, state, created_at, sent_at, reminded_at FROM renewals
  WHERE state IN ('created','sent','signed','registered')`;
// renewals.id grows with time, so a credential's highest id is its latest CSR.
const LATEST = `SELECT r.credential, r.created_at FROM renewals r
  JOIN (SELECT MAX(id) AS id FROM renewals GROUP BY credential) m ON m.id = r.id`;

/** One credential's facts. */
export function decisionFacts(db: Db, credential: string): DecisionFacts {
  const facts: DecisionFacts = {};
  const live = prep(db, `${LIVE} AND credential = ?`).get(credential) as LiveFacts | undefined;
  const pending = prep(db, `${PENDING} AND credential = ?`).get(credential) as PendingFacts | undefined;
  const latest = prep(db, "SELECT credential, created_at FROM renewals WHERE credential = ? ORDER BY id DESC LIMIT 1").get(credential) as
    | LatestFacts
    | undefined;
  if (live) facts.live = live;
  if (pending) facts.pending = pending;
  if (latest) facts.latest = latest;
  return facts;
}

/**
 * Every credential's facts with one query per table instead of three per credential, in one read
 * transaction so that the three tables are seen at the same moment.
 */
export function allDecisionFacts(db: Db): {
  live: Map<string, LiveFacts>;
  pending: Map<string, PendingFacts>;
  latest: Map<string, LatestFacts>;
} {
  const byName = <T extends { credential: string }>(rows: unknown[]) => new Map((rows as T[]).map((r) => [r.credential, r]));
  return inTransaction(db, () => ({
    live: byName<LiveFacts>(prep(db, LIVE).all()),
    pending: byName<PendingFacts>(prep(db, PENDING).all()),
    latest: byName<LatestFacts>(prep(db, LATEST).all()),
  }));
}
