// Pure: how healthy one credential is, in the monitoring-plugin scale that `credd status` exits with.
import { daysLeft, describeCa, type EarlierCa } from "./timing.js";

export type Severity = "ok" | "warning" | "critical" | "unknown";
export const SEVERITY_EXIT: Record<Severity, number> = { ok: 0, warning: 1, critical: 2, unknown: 3 };
const RANK: Record<Severity, number> = { ok: 0, warning: 1, unknown: 2, critical: 3 };

export function worst(a: Severity, b: Severity): Severity {
  return RANK[a] >= RANK[b] ? a : b;
}

export interface HealthInput {
  liveNotAfter?: Date;
  /** A CA certificate of the live certificate's path that expires before it (domain/timing.ts earlierCa). */
  caFirst?: EarlierCa;
  pendingState?: string;
  renewAt?: Date;
  lastCheckAt?: Date;
  lastError?: string;
  /** Queued emails for this credential that have failed at least once. */
  failingMails: number;
  /** The error of a queued email refused for good (login, certificate, 5xx): it needs a person. */
  refusedMail?: string;
  /** Expected time between checks, from check_schedule. */
  checkPeriodMs: number;
  /** The last deploy's failed hooks, as "argv: what happened". */
  failedHooks?: string[];
  /** A certificate file refused since the live one was installed. */
  refusedIngest?: string;
  /** For OAuth2 credentials with a live certificate: the token's state and whether refreshing fails. */
  token?: { state: "none" | "valid" | "refresh-due" | "expiring" | "expired"; failures: number; lastError?: string };
}

export interface Health {
  severity: Severity;
  problems: string[];
}

export const CRITICAL_DAYS = 7;

/** Critical: expired or under 7 days left. Warning: renewal pending or overdue, errors, stale check. */
export function assessHealth(h: HealthInput, now: Date): Health {
  let severity: Severity = "ok";
  const problems: string[] = [];
  const raise = (s: Severity, msg: string) => {
    severity = worst(severity, s);
    problems.push(msg);
  };

  if (!h.liveNotAfter) {
    raise("warning", h.pendingState ? `no certificate yet (enrollment ${h.pendingState})` : "no certificate yet");
  } else {
    const left = daysLeft(h.liveNotAfter, now);
    if (h.liveNotAfter.getTime() <= now.getTime()) raise("critical", `certificate expired ${-left} days ago`);
    else if (left < CRITICAL_DAYS) raise("critical", `certificate expires in ${left} days`);
    else if (h.caFirst) {
      // The leaf has time left but its path does not: the API refuses it once the CA runs out.
      const caLeft = daysLeft(h.caFirst.notAfter, now);
      if (h.caFirst.notAfter.getTime() <= now.getTime()) raise("critical", `${describeCa(h.caFirst)} expired ${-caLeft} days ago`);
      else if (caLeft < CRITICAL_DAYS) raise("critical", `${describeCa(h.caFirst)} expires in ${caLeft} days`);
    }
    if (h.pendingState) raise("warning", `renewal ${h.pendingState}`);
    else if (h.renewAt && h.renewAt.getTime() <= now.getTime()) raise("warning", "renewal due but not started");
  }
  if (h.lastError) raise("warning", `last check failed: ${h.lastError}`);
  for (const f of h.failedHooks ?? []) raise("warning", `deploy hook failed: ${f}`);
  if (h.refusedIngest) raise("warning", `signed certificate refused: ${h.refusedIngest}`);
  if (h.token) {
    const t = h.token;
    const why = t.lastError ? `: ${t.lastError}` : "";
    if (t.state === "expired" || t.state === "none") raise(t.failures > 0 ? "critical" : "warning", `no valid token${why}`);
    else if (t.state === "expiring" && t.failures > 0) raise("critical", `the last valid token lapses within 10 minutes and refreshing fails${why}`);
    else if (t.failures > 0) raise("warning", `token refresh failing (${t.failures}x), the current token is still valid${why}`);
  }
  if (h.refusedMail) raise("warning", `an email was refused for good by SMTP (it stays queued until that is fixed): ${h.refusedMail}`);
  else if (h.failingMails > 0) raise("warning", `${h.failingMails} email(s) not delivered yet`);
  if (!h.lastCheckAt) raise("warning", "never checked by the daemon (is `credd run` running?)");
  else if (now.getTime() - h.lastCheckAt.getTime() > 2 * h.checkPeriodMs) {
    const mins = Math.round((now.getTime() - h.lastCheckAt.getTime()) / 60_000);
    raise("warning", `last check ${mins} min ago: the daemon may be stopped`);
  }
  return { severity, problems };
}
