// What the expiry decision needs about each credential, read from SQLite (kept apart from check.ts so
// `credd status` does not load the PKI and mail code that starting a renewal needs).
import type { CredentialConfig } from "../config/types.js";
import type { CheckInput } from "../domain/decide.js";
import { prep, type Db } from "../store/db.js";
import type { Snapshot } from "../store/snapshot.js";

/** The columns the decision reads, per table: a row per credential at most in each. */
interface LiveFacts {
  credential: string;
  serial: string;
  not_before: string;
  not_after: string;
  ca_not_after: string | null;
}
interface PendingFacts {
  credential: string;
  id: number;
  /** One of the pending states: the queries select no other. */
  state: string;
  created_at: string;
  sent_at: string | null;
  reminded_at: string | null;
}
interface LatestFacts {
  credential: string;
  created_at: string;
}

const LIVE = "SELECT credential, serial, not_before, not_after, ca_not_after FROM certificates WHERE live = 1";
const PENDING = `SELECT credential, id, state, created_at, sent_at, reminded_at FROM renewals
  WHERE state IN ('created','sent','signed','registered')`;
// renewals.id grows with time, so a credential's highest id is its latest CSR.
const LATEST = `SELECT r.credential, r.created_at FROM renewals r
  JOIN (SELECT MAX(id) AS id FROM renewals GROUP BY credential) m ON m.id = r.id`;

/** The same from a snapshot (status and the alert rules read one for all credentials). */
export function checkInputOf(cred: CredentialConfig, snap: Snapshot): CheckInput {
  const latest = snap.latestCsrAt.get(cred.name);
  return toInput(cred, snap.live.get(cred.name), snap.pending.get(cred.name), latest ? { credential: cred.name, created_at: latest } : undefined);
}

function toInput(cred: CredentialConfig, live?: LiveFacts, pending?: PendingFacts, latest?: LatestFacts): CheckInput {
  const input: CheckInput = {
    name: cred.name,
    oauth: !!cred.oauth,
    autoEnroll: cred.auto_enroll,
    renewBeforeDays: cred.renew_before_days,
    remindAfterDays: cred.remind_after_days,
  };
  if (live) {
    input.live = {
      serial: live.serial,
      notBefore: new Date(live.not_before),
      notAfter: new Date(live.not_after),
      ...(live.ca_not_after ? { caNotAfter: new Date(live.ca_not_after) } : {}),
    };
  }
  if (pending) {
    input.pending = {
      id: pending.id,
      state: pending.state as NonNullable<CheckInput["pending"]>["state"],
      createdAt: new Date(pending.created_at),
      ...(pending.sent_at ? { sentAt: new Date(pending.sent_at) } : {}),
      ...(pending.reminded_at ? { remindedAt: new Date(pending.reminded_at) } : {}),
    };
  }
  if (latest) input.lastCsrCreatedAt = new Date(latest.created_at);
  return input;
}

/** Reads what the decision needs about one credential: no I/O happens inside decide(). */
export function checkInput(db: Db, cred: CredentialConfig): CheckInput {
  const live = prep(db, `${LIVE} AND credential = ?`).get(cred.name) as LiveFacts | undefined;
  const pending = prep(db, `${PENDING} AND credential = ?`).get(cred.name) as PendingFacts | undefined;
  const latest = prep(
    db,
    "SELECT credential, created_at FROM renewals WHERE credential = ? ORDER BY id DESC LIMIT 1",
  ).get(cred.name) as LatestFacts | undefined;
  return toInput(cred, live, pending, latest);
}

/**
 * The same for many credentials with one query per table instead of three per credential: the
 * check and `status` read every credential at once (10,000 point queries cost more than decide()).
 */
export function checkInputs(db: Db, creds: readonly CredentialConfig[]): Map<string, CheckInput> {
  const byName = <T extends { credential: string }>(rows: unknown[]) =>
    new Map((rows as T[]).map((r) => [r.credential, r]));
  const read = db.transaction(() => ({
    live: byName<LiveFacts>(prep(db, LIVE).all()),
    pending: byName<PendingFacts>(prep(db, PENDING).all()),
    latest: byName<LatestFacts>(prep(db, LATEST).all()),
  }));
  // One read transaction: the three tables are seen at the same moment.
  const { live, pending, latest } = read();
  const out = new Map<string, CheckInput>();
  for (const c of creds) out.set(c.name, toInput(c, live.get(c.name), pending.get(c.name), latest.get(c.name)));
  return out;
}
