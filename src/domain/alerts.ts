// Pure: which situations need a person now, and what to send given what was already sent.
import { DAY_MS } from "../clock.js";
import { describeCa, type EarlierCa } from "./timing.js";
import { TOKEN_LAPSE_WARNING_MS } from "./token-timing.js";

export type AlertSeverity = "warning" | "critical";

export interface CredentialFacts {
  credential: string;
  mzp: string;
  contact: string;
  /** caFirst: a CA certificate of its path that expires before it (domain/timing.ts earlierCa). */
  live?: { serial: string; notAfter: Date; caFirst?: EarlierCa };
  pending?: { id: number; state: string; createdAt: Date; sentAt?: Date; awaitingRegistration: boolean };
  remindAfterDays: number;
  /** The latest refused file since the live certificate went live. */
  refusal?: { id: number; file: string; check: string; reason: string };
  /** OAuth2 credentials with a live certificate. */
  token?: { failures: number; expiresAt?: Date; lastError?: string };
  /** The last deploy's failed hooks. */
  failedHooks?: { at: string; lines: string[] };
  expiryDays: number[];
}

export interface DaemonFacts {
  smtpFailing?: { attempts: number; error: string };
  /** Queued emails whose last failure was permanent (see src/mail/smtp.ts): a person must act. */
  smtpRefused?: { count: number; error: string };
  uncleanRestartAt?: string;
  /** The latest refused file that matched no credential (no pending renewal had its key). */
  unmatchedRefusal?: { id: number; file: string; check: string; reason: string };
  /** The inbox is no longer used: a folder credd writes into was replaced (daemon/inbox.ts). */
  inboxUnsafe?: { at: string; reason: string };
  /** Shared store: fewer than two hosts seen within two check periods, for at least STANDBY_ALERT_MS (core/alerts.ts). */
  standbyMissing?: { since: string; seen: string[] };
}

export interface Situation {
  credential: string | null;
  kind: string;
  stage: string;
  severity: AlertSeverity;
  title: string;
  detail: string;
  action: string;
  /** A one-off: fires once, and no "resolved" follows. */
  event?: boolean;
}

export interface OpenAlert {
  id: number;
  credential: string | null;
  kind: string;
  stage: string;
  event: boolean;
}

const days = (ms: number) => Math.floor(ms / DAY_MS);

/** Every situation that holds at `now`, one per (credential, kind). */
export function situations(creds: CredentialFacts[], daemon: DaemonFacts, now: Date): Situation[] {
  const out: Situation[] = [];
  for (const c of creds) out.push(...credentialSituations(c, now));
  if (daemon.smtpFailing) {
    out.push({
      credential: null,
      kind: "smtp-failing",
      stage: "1",
      severity: "warning",
      title: "emails are not going out",
      detail: `SMTP failed ${daemon.smtpFailing.attempts} times: ${daemon.smtpFailing.error}`,
      action: "check smtp.url, the SMTP server and smtp.password_file; queued emails go out by themselves once it works",
    });
  }
  if (daemon.smtpRefused) {
    const r = daemon.smtpRefused;
    out.push({
      credential: null,
      kind: "smtp-refused",
      // One stage while it lasts: the digest saying so may itself be refused, and must not fire another.
      stage: "1",
      severity: "warning",
      title: "the SMTP server refuses credd's emails",
      detail: `${r.count} queued email${r.count === 1 ? " was" : "s were"} refused for good (retrying cannot help): ${r.error}`,
      action:
        "fix what the error names (smtp.user and smtp.password_file, smtp.ca_file, the sender or recipients), then `systemctl reload credd`; " +
        "the queued emails go out by themselves once it works",
    });
  }
  if (daemon.unmatchedRefusal) {
    const r = daemon.unmatchedRefusal;
    out.push({
      credential: null,
      kind: "certificate-refused",
      stage: String(r.id),
      severity: "warning",
      title: `a file was refused (${r.check})`,
      detail: `${r.file}: ${r.reason}`,
      action: "nothing was changed; check the file is the certificate Stellantis signed for a pending CSR (credd status lists them)",
      event: true,
    });
  }
  if (daemon.inboxUnsafe) {
    out.push({
      credential: null,
      kind: "inbox-unsafe",
      stage: daemon.inboxUnsafe.at,
      severity: "critical",
      title: "the inbox is no longer used: someone replaced a folder credd writes into",
      detail: `${daemon.inboxUnsafe.reason}; credd stopped reading and moving inbox files at ${daemon.inboxUnsafe.at} (everything else runs)`,
      action:
        "find out who replaced it (only the inbox's writers could), remove the link or folder, then `systemctl restart credd`: " +
        "credd makes processed/ and rejected/ again (0700); meanwhile use `credd ingest FILE`",
    });
  }
  if (daemon.standbyMissing) {
    const m = daemon.standbyMissing;
    out.push({
      credential: null,
      kind: "standby-missing",
      // One stage while it lasts: resolved (and said so) when a second host heartbeats again.
      stage: "1",
      severity: "warning",
      title: "no standby host: nothing takes over if the leader stops",
      detail:
        m.seen.length === 0
          ? `no credd host has sent a heartbeat to the shared store since ${m.since}`
          : `only ${m.seen.join(", ")} sent a heartbeat to the shared store within two check periods, since ${m.since}`,
      action: "start `credd run` again on the standby host (`systemctl status credd` there; `credd status` lists the hosts and their last heartbeat)",
    });
  }
  if (daemon.uncleanRestartAt) {
    out.push({
      credential: null,
      kind: "daemon-restart",
      stage: daemon.uncleanRestartAt,
      severity: "warning",
      title: "credd restarted after a crash",
      detail: `the previous run did not stop cleanly; credd resumed from its database at ${daemon.uncleanRestartAt}`,
      action: "look at `journalctl -u credd` around that time; nothing else is needed if `credd status` is OK",
      event: true,
    });
  }
  return out;
}

function credentialSituations(c: CredentialFacts, now: Date): Situation[] {
  const out: Situation[] = [];
  const base = { credential: c.credential };
  const p = c.pending;
  if (c.live) {
    // The credential breaks when the first certificate of its path runs out, leaf or CA.
    const ca = c.live.caFirst;
    const endsAt = ca ? ca.notAfter : c.live.notAfter;
    const leftMs = endsAt.getTime() - now.getTime();
    const left = days(leftMs);
    const expired = leftMs <= 0;
    // The smallest threshold already reached: 25 days left is the 30-day alert, 6 days the 7-day one.
    const threshold = [...c.expiryDays].sort((a, b) => a - b).find((d) => leftMs <= d * DAY_MS);
    if (expired || threshold !== undefined) {
      const stage = expired ? `expired+${days(-leftMs)}d` : `${threshold}d`;
      const critical = expired || (threshold ?? Infinity) <= 7;
      const action = !p
        ? `start a renewal: credd renew ${c.credential}`
        : p.awaitingRegistration
          ? `ask ${c.contact} to bind the new certificate to the OAuth2 client (it was emailed to them)`
          : p.state === "created"
            ? "the CSR email has not gone out yet: check SMTP (credd status shows the error)"
            : `chase ${c.contact} for the signed certificate (CSR sent ${p.sentAt?.toISOString() ?? "earlier"}), then credd ingest FILE`;
      out.push({
        ...base,
        kind: "certificate-expiry",
        stage,
        severity: critical ? "critical" : "warning",
        title: ca
          ? expired
            ? `certificate path expired ${days(-leftMs)} days ago`
            : `certificate path expires in ${left} days`
          : expired
            ? `certificate expired ${days(-leftMs)} days ago`
            : `certificate expires in ${left} days`,
        detail: ca
          ? `${c.mzp} certificate ${c.live.serial} is valid until ${c.live.notAfter.toISOString()}, but ${describeCa(ca)} ${expired ? "expired" : "expires"} ${ca.notAfter.toISOString()}: the API refuses the certificate from then on; no renewal has completed`
          : `${c.mzp} certificate ${c.live.serial} ${expired ? "expired" : "expires"} ${c.live.notAfter.toISOString()}; no renewal has completed`,
        action,
      });
    }
  }
  if (p && p.state === "sent" && p.sentAt && now.getTime() - p.sentAt.getTime() >= c.remindAfterDays * DAY_MS) {
    out.push({
      ...base,
      kind: "csr-unanswered",
      stage: "1",
      severity: "warning",
      title: `CSR sent ${days(now.getTime() - p.sentAt.getTime())} days ago, no certificate back`,
      detail: `renewal #${p.id}: the CSR went to ${c.contact} on ${p.sentAt.toISOString()}; a reminder with the same CSR was sent`,
      action: `chase ${c.contact}; when the certificate comes, drop it in the inbox or run credd ingest FILE`,
    });
  }
  if (c.refusal) {
    out.push({
      ...base,
      kind: "certificate-refused",
      stage: String(c.refusal.id),
      severity: "warning",
      title: `signed certificate refused (${c.refusal.check})`,
      detail: `${c.refusal.file}: ${c.refusal.reason}`,
      action: "nothing was changed; get the certificate made for the pending CSR (credd status shows it) and ingest it",
    });
  }
  if (p?.awaitingRegistration) {
    const soon = c.live ? c.live.notAfter.getTime() - now.getTime() <= 7 * DAY_MS : true;
    out.push({
      ...base,
      kind: "awaiting-registration",
      stage: soon ? "critical" : "warning",
      severity: soon ? "critical" : "warning",
      title: "new certificate awaiting IDP registration",
      detail: c.live
        ? `the token endpoint refuses the new certificate (invalid_client); the old one ${c.live.serial} stays live until ${c.live.notAfter.toISOString()}`
        : "the token endpoint refuses the new certificate (invalid_client)",
      action: `ask ${c.contact} to bind the new certificate to the OAuth2 client (it was emailed to them); credd keeps probing`,
    });
  }
  if (c.token && c.token.failures > 0) {
    const lapsing = !c.token.expiresAt || c.token.expiresAt.getTime() - now.getTime() <= TOKEN_LAPSE_WARNING_MS;
    out.push({
      ...base,
      kind: "token-failing",
      stage: lapsing ? "critical" : "warning",
      severity: lapsing ? "critical" : "warning",
      title: lapsing ? "no valid token left within 10 minutes" : "token refresh failing",
      detail: `${c.token.failures} failed attempts: ${c.token.lastError ?? "unknown error"}`,
      action: `run credd doctor ${c.credential} to see which step fails`,
    });
  }
  if (c.failedHooks?.lines.length) {
    out.push({
      ...base,
      kind: "hook-failed",
      stage: c.failedHooks.at,
      severity: "warning",
      title: "deploy hook failed",
      detail: c.failedHooks.lines.join("; "),
      action: "the new certificate is live; fix the hook, then reload the application by hand",
    });
  }
  return out;
}

export interface AlertPlan {
  /** New situations, or ones whose stage moved on (a new threshold, a new refusal). */
  fire: Situation[];
  /** Open alerts whose situation has ended: one "resolved" each (events close silently). */
  resolve: OpenAlert[];
}

/** What to send, given the alerts already open: each situation fires once per stage. */
export function planAlerts(open: OpenAlert[], current: Situation[]): AlertPlan {
  const key = (credential: string | null, kind: string) => `${credential ?? ""}\u0000${kind}`;
  const openBy = new Map(open.map((a) => [key(a.credential, a.kind), a]));
  const currentKeys = new Set(current.map((s) => key(s.credential, s.kind)));
  const fire = current.filter((s) => openBy.get(key(s.credential, s.kind))?.stage !== s.stage);
  const resolve = open.filter((a) => !currentKeys.has(key(a.credential, a.kind)));
  return { fire, resolve };
}

const RANK: Record<AlertSeverity, number> = { warning: 1, critical: 2 };

export function worstSeverity(list: { severity: AlertSeverity }[]): AlertSeverity | undefined {
  return list.reduce<AlertSeverity | undefined>((w, a) => (!w || RANK[a.severity] > RANK[w] ? a.severity : w), undefined);
}
