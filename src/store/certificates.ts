// The certificates table: which versions exist for a credential and which one is live.
import { prep, type Db } from "./db.js";
import type { RenewalState } from "./renewals.js";

export interface CertificateRow {
  id: number;
  credential: string;
  version: number;
  serial: string;
  not_before: string;
  not_after: string;
  subject: string;
  issuer: string;
  spki_sha256: string;
  sha256: string;
  source: "import" | "renewal";
  installed_at: string;
  live: 0 | 1;
  renewal_id: number | null;
  went_live_at: string | null;
  retired_at: string | null;
  /** The CA certificate of its path that expires first (migration 0007); NULL when not recorded. */
  ca_not_after: string | null;
  ca_not_after_role: "intermediate" | "anchor" | null;
  ca_not_after_subject: string | null;
  ca_not_after_serial: string | null;
}

type CaColumns = "ca_not_after" | "ca_not_after_role" | "ca_not_after_subject" | "ca_not_after_serial";
export type NewCertificate = Omit<CertificateRow, "id" | "live" | "renewal_id" | "went_live_at" | "retired_at" | CaColumns> &
  Partial<Pick<CertificateRow, CaColumns>>;
const NO_CA = { ca_not_after: null, ca_not_after_role: null, ca_not_after_subject: null, ca_not_after_serial: null };

export function liveCertificate(db: Db, credential: string): CertificateRow | undefined {
  return prep(db, "SELECT * FROM certificates WHERE credential = ? AND live = 1").get(credential) as CertificateRow | undefined;
}

/** The highest archive version used by any certificate or renewal of this credential. */
export function maxVersion(db: Db, credential: string): number {
  const row = prep(
    db,
    `SELECT MAX(v) AS v FROM (
         SELECT MAX(version) AS v FROM certificates WHERE credential = ?
         UNION ALL SELECT MAX(version) FROM renewals WHERE credential = ?)`,
  ).get(credential, credential) as { v: number | null };
  return row.v ?? 0;
}

/** Records an ingested certificate as installed (archive/ written) but not live yet. */
export function insertInstalledCertificate(db: Db, cert: NewCertificate & { renewal_id: number | null }): number {
  const r = prep(
    db,
    `INSERT INTO certificates (credential, version, serial, not_before, not_after, subject, issuer,
         spki_sha256, sha256, source, installed_at, live, renewal_id,
         ca_not_after, ca_not_after_role, ca_not_after_subject, ca_not_after_serial)
       VALUES (@credential, @version, @serial, @not_before, @not_after, @subject, @issuer,
         @spki_sha256, @sha256, @source, @installed_at, 0, @renewal_id,
         @ca_not_after, @ca_not_after_role, @ca_not_after_subject, @ca_not_after_serial)`,
  ).run({ ...NO_CA, ...cert });
  return Number(r.lastInsertRowid);
}

export function certificateByVersion(db: Db, credential: string, version: number): CertificateRow | undefined {
  return prep(db, "SELECT * FROM certificates WHERE credential = ? AND version = ?").get(credential, version) as CertificateRow | undefined;
}

export function certificateBySha256(db: Db, credential: string, sha256: string): CertificateRow | undefined {
  return prep(db, "SELECT * FROM certificates WHERE credential = ? AND sha256 = ?").get(credential, sha256) as CertificateRow | undefined;
}

/** Makes `version` the live one and retires the previous live one, in the caller's transaction. */
export function makeLive(db: Db, credential: string, version: number, at: string): void {
  prep(db, "UPDATE certificates SET live = 0, retired_at = @at WHERE credential = @c AND live = 1 AND version != @v").run({
    c: credential,
    v: version,
    at,
  });
  prep(
    db,
    "UPDATE certificates SET live = 1, went_live_at = COALESCE(went_live_at, @at), retired_at = NULL WHERE credential = @c AND version = @v",
  ).run({ c: credential, v: version, at });
}

/** What a go-live re-reads inside its transaction (core/golive.ts markLiveInDb): did another host already do it? */
export interface GoLiveState {
  /** The credential's live version now, or null when none is live. */
  live_version: number | null;
  /** The renewal's state now (null: no renewal given, or no such row). */
  renewal_state: RenewalState | null;
}

/**
 * The credential's live version and the renewal's state, read to decide a go-live: call it inside
 * `tx`. On SQLite the transaction holds the write lock from its BEGIN IMMEDIATE; on PostgreSQL the
 * credential's certificate rows and the renewal row are locked (FOR UPDATE) until the commit, so
 * two hosts going live with the same credential take turns, and the second sees the first's work.
 */
export function lockForGoLive(db: Db, credential: string, renewalId: number | null): GoLiveState {
  const live = prep(db, "SELECT version FROM certificates WHERE credential = ? AND live = 1").get(credential) as { version: number } | undefined;
  const renewal =
    renewalId === null ? undefined : (prep(db, "SELECT state FROM renewals WHERE id = ?").get(renewalId) as { state: RenewalState } | undefined);
  return { live_version: live?.version ?? null, renewal_state: renewal?.state ?? null };
}

/** The most recently retired certificate (the one before the live one), for rollback. */
export function previousCertificate(db: Db, credential: string): CertificateRow | undefined {
  return prep(
    db,
    `SELECT * FROM certificates WHERE credential = ? AND live = 0 AND retired_at IS NOT NULL
       ORDER BY retired_at DESC, version DESC LIMIT 1`,
  ).get(credential) as CertificateRow | undefined;
}
