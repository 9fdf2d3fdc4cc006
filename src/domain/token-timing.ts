// Pure token timing: when to refresh, how long to back off, how soon the last valid token lapses.

/** Refresh at about two thirds of the token's life; `jitter` in [0, 1) moves it by up to ±5 % of the life. */
export function tokenRefreshAt(obtainedAt: Date, expiresInSec: number, jitter: number): Date {
  const life = expiresInSec * 1000;
  const offset = life * (2 / 3) + life * 0.1 * (jitter - 0.5);
  return new Date(obtainedAt.getTime() + offset);
}

/** Token retry delay after `failures` failures: about 1 s doubling to 5 min; a server's Retry-After wins if longer. */
export function tokenBackoffMs(failures: number, retryAfterMs?: number): number {
  const backoff = Math.min(300_000, 1_000 * 2 ** Math.max(0, failures - 1));
  return Math.max(backoff, retryAfterMs ?? 0);
}

/** Registration probes (is the new certificate bound to the OAuth2 client yet?): 1 min doubling to 1 h. */
export function probeBackoffMs(attempts: number): number {
  return Math.min(3_600_000, 60_000 * 2 ** Math.max(0, attempts - 1));
}

/** Ops are told when no valid token will be left within this long. */
export const TOKEN_LAPSE_WARNING_MS = 10 * 60_000;

export type TokenState = "none" | "valid" | "refresh-due" | "expiring" | "expired";

export function tokenState(t: { expiresAt?: Date; refreshAt?: Date }, now: Date): TokenState {
  if (!t.expiresAt) return "none";
  const left = t.expiresAt.getTime() - now.getTime();
  if (left <= 0) return "expired";
  if (left <= TOKEN_LAPSE_WARNING_MS) return "expiring";
  if (t.refreshAt && t.refreshAt.getTime() <= now.getTime()) return "refresh-due";
  return "valid";
}
