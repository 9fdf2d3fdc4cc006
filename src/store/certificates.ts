// The certificates table: which versions exist for a credential and which one is live.
import type { Db } from "./db.js";

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
}

export type NewCertificate = Omit<CertificateRow, "id" | "live">;

export function liveCertificate(db: Db, credential: string): CertificateRow | undefined {
  return db.prepare("SELECT * FROM certificates WHERE credential = ? AND live = 1").get(credential) as
    | CertificateRow
    | undefined;
}

/** Inserts a certificate and makes it the live one, in the caller's transaction. */
export function insertLiveCertificate(db: Db, cert: NewCertificate): number {
  db.prepare("UPDATE certificates SET live = 0 WHERE credential = ? AND live = 1").run(cert.credential);
  const r = db
    .prepare(
      `INSERT INTO certificates (credential, version, serial, not_before, not_after, subject, issuer,
         spki_sha256, sha256, source, installed_at, live)
       VALUES (@credential, @version, @serial, @not_before, @not_after, @subject, @issuer,
         @spki_sha256, @sha256, @source, @installed_at, 1)`,
    )
    .run(cert);
  return Number(r.lastInsertRowid);
}

/** The highest archive version used by any certificate or renewal of this credential. */
export function maxVersion(db: Db, credential: string): number {
  const row = db
    .prepare(
      `SELECT MAX(v) AS v FROM (
         SELECT MAX(version) AS v FROM certificates WHERE credential = ?
         UNION ALL SELECT MAX(version) FROM renewals WHERE credential = ?)`,
    )
    .get(credential, credential) as { v: number | null };
  return row.v ?? 0;
}
