// The tokens table: token metadata per credential (never the token), failures and backoff.
import { prep, type Db } from "./db.js";

export interface TokenRow {
  credential: string;
  token_type: string | null;
  scope: string | null;
  obtained_at: string | null;
  expires_at: string | null;
  refresh_at: string | null;
  cert_version: number | null;
  cert_sha256: string | null;
  failures: number;
  next_attempt_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
  last_success_at: string | null;
}

export function getToken(db: Db, credential: string): TokenRow | undefined {
  return prep(db, "SELECT * FROM tokens WHERE credential = ?").get(credential) as TokenRow | undefined;
}

export function recordTokenSuccess(
  db: Db,
  r: {
    credential: string;
    token_type: string;
    scope: string;
    obtained_at: string;
    expires_at: string;
    refresh_at: string;
    cert_version: number;
    cert_sha256: string;
  },
): void {
  prep(
    db,
    `INSERT INTO tokens (credential, token_type, scope, obtained_at, expires_at, refresh_at, cert_version, cert_sha256,
       failures, next_attempt_at, last_error, last_error_at, last_success_at)
     VALUES (@credential, @token_type, @scope, @obtained_at, @expires_at, @refresh_at, @cert_version, @cert_sha256,
       0, NULL, NULL, NULL, @obtained_at)
     ON CONFLICT (credential) DO UPDATE SET token_type = @token_type, scope = @scope, obtained_at = @obtained_at,
       expires_at = @expires_at, refresh_at = @refresh_at, cert_version = @cert_version, cert_sha256 = @cert_sha256,
       failures = 0, next_attempt_at = NULL, last_success_at = @obtained_at`,
  ).run(r);
}

export function recordTokenFailure(db: Db, credential: string, error: string, at: string, nextAttemptAt: string): number {
  prep(
    db,
    `INSERT INTO tokens (credential, failures, next_attempt_at, last_error, last_error_at) VALUES (@c, 1, @next, @e, @at)
     ON CONFLICT (credential) DO UPDATE SET failures = failures + 1, next_attempt_at = @next, last_error = @e, last_error_at = @at`,
  ).run({ c: credential, next: nextAttemptAt, e: error, at });
  return getToken(db, credential)!.failures;
}

/** A credential with a live certificate: its version and its token row's timing fields (none yet: null). */
export interface TokenTiming {
  credential: string;
  version: number;
  next_attempt_at: string | null;
  expires_at: string | null;
  refresh_at: string | null;
  cert_version: number | null;
}

/** Every credential with a live certificate, with its token timing, in one query (the token tick runs every second). */
export function tokenTimings(db: Db): TokenTiming[] {
  return prep(
    db,
    `SELECT c.credential, c.version, t.next_attempt_at, t.expires_at, t.refresh_at, t.cert_version
       FROM certificates c LEFT JOIN tokens t ON t.credential = c.credential WHERE c.live = 1`,
  ).all() as TokenTiming[];
}

/** The token now on disk no longer counts (certificate changed): keep the error history, drop validity. */
export function forgetToken(db: Db, credential: string): void {
  prep(
    db,
    "UPDATE tokens SET obtained_at = NULL, expires_at = NULL, refresh_at = NULL, cert_version = NULL, cert_sha256 = NULL WHERE credential = ?",
  ).run(credential);
}
