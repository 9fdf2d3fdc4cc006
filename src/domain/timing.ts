// Pure timing rules: when a certificate is due for renewal, when a reminder is owed, mail backoff.
import { DAY_MS } from "../clock.js";

/**
 * When renewal is due: a third of the lifetime left, but never later than `renewBeforeDays` before
 * expiry (a human CA answers in days, not seconds).
 */
export function renewalTime(notBefore: Date, notAfter: Date, renewBeforeDays: number): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const byThird = notAfter.getTime() - lifetime / 3;
  const byDays = notAfter.getTime() - renewBeforeDays * DAY_MS;
  return new Date(Math.min(byThird, byDays));
}

/**
 * When renewal is due for a certificate whose path (chain.pem and the anchor) ends its life at
 * `caNotAfter`: renewalTime, but never later than `renewBeforeDays` before the earliest CA expiry
 * either, since the credential breaks when any certificate of its path runs out. `by` says which
 * date set it.
 */
export function pathRenewalTime(
  leaf: { notBefore: Date; notAfter: Date },
  caNotAfter: Date | undefined,
  renewBeforeDays: number,
): { at: Date; by: "leaf" | "ca" } {
  const own = renewalTime(leaf.notBefore, leaf.notAfter, renewBeforeDays);
  if (!caNotAfter) return { at: own, by: "leaf" };
  const byCa = caNotAfter.getTime() - renewBeforeDays * DAY_MS;
  return byCa < own.getTime() ? { at: new Date(byCa), by: "ca" } : { at: own, by: "leaf" };
}

/** A CA certificate of the live certificate's path that expires before the leaf itself. */
export interface EarlierCa {
  notAfter: Date;
  role: "intermediate" | "anchor";
  subject: string;
}

/**
 * The CA certificate of the path that runs out first, when it runs out before the leaf: the
 * credential stops working then, whatever the leaf's own notAfter says.
 */
export function earlierCa(leafNotAfter: Date, ca: Partial<EarlierCa> | undefined): EarlierCa | undefined {
  if (!ca?.notAfter || !ca.role || ca.notAfter.getTime() >= leafNotAfter.getTime()) return undefined;
  return { notAfter: ca.notAfter, role: ca.role, subject: ca.subject ?? "" };
}

/** How a CA certificate that expires first is named to a person. */
export function describeCa(ca: EarlierCa): string {
  return `the ${ca.role === "anchor" ? "root (anchor)" : "intermediate"} CA certificate ${ca.subject ? `"${ca.subject}" ` : ""}of its path`;
}

/** Whole days left until `notAfter`, rounded down; negative once expired. */
export function daysLeft(notAfter: Date, now: Date): number {
  return Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
}

/** Email retry delay after `attempts` failures: 1 min doubling to at most 1 h. */
export function mailBackoffMs(attempts: number): number {
  const base = 60_000;
  const max = 3_600_000;
  return Math.min(max, base * 2 ** Math.max(0, attempts - 1));
}

/** No credential sends more than one new CSR a day unless a person forces it. */
export const NEW_CSR_MIN_INTERVAL_MS = DAY_MS;
