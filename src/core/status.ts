// Builds the `credd status` view from SQLite: the shape of `status --json`, a monitoring contract.
import type { CredentialConfig } from "../config/types.js";
import { decide } from "../domain/decide.js";
import { assessHealth, SEVERITY_EXIT, worst, type Severity } from "../domain/health.js";
import { daysLeft } from "../domain/timing.js";
import { tokenState } from "../domain/token-timing.js";
import { readProxyState } from "../proxy/state-file.js";
import { checkInputOf, earlierCaOf } from "./facts.js";
import type { Ctx } from "./context.js";
import { firstRunAtOrAfter, schedulePeriodMs } from "./schedule.js";
import { lastRepliesOf, mailboxStatusOf, type LastReply, type MailboxStatus } from "../mailbox/status.js";
import { failedHookLines, refusalSince, type LiveCertificate, type QueuedSummary, type Snapshot } from "../store/store.js";

export const STATUS_JSON_VERSION = 1;

export interface CredentialStatus {
  name: string;
  mzp: string;
  status: Severity;
  problems: string[];
  certificate: null | {
    version: number;
    serial: string;
    not_before: string;
    not_after: string;
    days_left: number;
    sha256: string;
    source: string;
    installed_at: string;
  };
  renewal: null | {
    id: number;
    kind: string;
    forced: boolean;
    state: string;
    reason: string;
    since: string;
    created_at: string;
    csr_sent_at: string | null;
    reminded_at: string | null;
    remind_count: number;
    /** OAuth2: the new certificate is installed and the IDP has not accepted it yet. */
    awaiting_registration: boolean;
    registration_mailed_at: string | null;
    probe_attempts: number;
    /**
     * When the daemon will probe the token endpoint with the new certificate: its first scheduled
     * check (check_schedule) once the probe's backoff has passed; null unless awaiting registration.
     */
    next_probe_at: string | null;
    /** The probe's backoff: no probe before this time (null: none yet). */
    probe_backoff_until: string | null;
    last_probe_error: string | null;
  };
  next_renewal_at: string | null;
  /**
   * Which certificate sets next_renewal_at: the live certificate itself, or the CA certificate of
   * its chain that expires first when that comes sooner (docs/certificate-policy.md). Null with no
   * live certificate.
   */
  next_renewal_set_by: null | { certificate: "leaf" | "intermediate" | "anchor"; subject: string; serial: string; not_after: string };
  next_step: { check: string; action: string; reason: string };
  token: {
    state: string;
    obtained_at?: string | null;
    expires_at?: string | null;
    refresh_at?: string | null;
    cert_version?: number | null;
    failures?: number;
    next_attempt_at?: string | null;
    last_error?: string | null;
  };
  /** Only for credentials with `proxy:`: the daemon's listener as it last wrote it (null: no daemon ran it yet). */
  proxy?: null | {
    listen: string;
    listening: boolean;
    /** Where it listens (the port chosen for port 0, the socket path); null when not listening. */
    address: string | null;
    updated_at: string;
    requests: number;
    outcomes: Record<string, number>;
    retried_with_new_token: number;
    last_upstream_error: { at: string; error: string; message: string } | null;
    certificate_version: number | null;
  };
  last_hook: null | {
    at: string;
    version: number;
    serial: string;
    ok: boolean;
    runs: { argv: string[]; ok: boolean; exit_code: number | null; duration_ms: number; error: string | null }[];
  };
  last_refusal: null | { at: string; file: string; check: string | null; reason: string | null };
  outbox: { queued: number; last_error: string | null };
  alerts: OpenAlertView[];
  last_check_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
  /** With a `mailbox:` section only: the last reply read for this credential (docs/mailbox.md). */
  last_reply?: LastReply | null;
}

export interface StatusView {
  version: number;
  generated_at: string;
  status: Severity;
  exit_code: number;
  config: string;
  daemon: { last_check_at: string | null; check_schedule: string; stale: boolean };
  outbox: { queued: number; oldest_queued_at: string | null; last_error: string | null };
  /** Open alerts (credential null: daemon-wide), worst first. */
  alerts: OpenAlertView[];
  credentials: CredentialStatus[];
  /**
   * The test switches set for the command that built this view (src/test-switches.ts), by name;
   * empty in production. Non-empty means the times shown may not be real time.
   */
  test_switches: string[];
  /** With a `mailbox:` section only: whether credd can read it. */
  mailbox?: MailboxStatus;
  /** Every host that ran `credd run` on this state (one on SQLite), by name (docs/status.md). */
  hosts: HostView[];
  /** With a shared PostgreSQL store: why the hosts are a warning (no standby seen recently); else null. */
  hosts_warning: string | null;
}

export interface HostView {
  name: string;
  pid: number;
  /** What the host last said it was: "leader" or "follower". */
  role: "leader" | "follower";
  version: string;
  started_at: string;
  last_heartbeat_at: string;
  /** No heartbeat for more than two check periods: the host is down or cut off. */
  stale: boolean;
}

export interface OpenAlertView {
  credential: string | null;
  kind: string;
  severity: "warning" | "critical";
  title: string;
  stage: string;
  opened_at: string;
  last_sent_at: string;
}

export async function buildStatus(
  ctx: Pick<Ctx, "config" | "store" | "clock">,
  only?: string,
  testSwitches: readonly string[] = [],
): Promise<StatusView> {
  const { config, store } = ctx;
  const now = ctx.clock.now();
  const creds = config.credentials.filter((c) => !only || c.name === only);
  const snap = await store.readSnapshot();
  const period = checkPeriod(snap, config.check_schedule, now);
  const alerts = openAlertViews(snap);
  const alertsOf = new Map<string, OpenAlertView[]>();
  for (const a of alerts) if (a.credential !== null) alertsOf.set(a.credential, [...(alertsOf.get(a.credential) ?? []), a]);
  const mailsOf = new Map<string, QueuedSummary[]>();
  for (const m of snap.queued) if (m.credential !== null) mailsOf.set(m.credential, [...(mailsOf.get(m.credential) ?? []), m]);
  const probeAt = probeTimes(config.check_schedule, now);
  const list = creds.map((cred) =>
    credentialStatus(cred, snap, { alerts: alertsOf.get(cred.name) ?? [], mails: mailsOf.get(cred.name) ?? [] }, now, period, probeAt),
  );
  // mailbox: (docs/mailbox.md) the last reply per credential, and whether the source can be read.
  const mailbox = await mailboxStatusOf(config, store);
  if (mailbox) {
    const replies = await lastRepliesOf(store, creds);
    for (const c of list) c.last_reply = replies.get(c.name) ?? null;
  }
  creds.forEach((cred, i) => {
    if (cred.proxy) list[i]!.proxy = proxyView(config.runtime_dir, cred.name, cred.proxy.listen);
  });
  const lastCheck = snap.lastCheckAt ?? null;
  const queued = snap.queued;
  const hosts: HostView[] = (await store.listHosts()).map((h) => ({ ...h, stale: now.getTime() - Date.parse(h.last_heartbeat_at) > 2 * period }));
  const hostsWarning = config.store === "sqlite" ? null : standbyProblem(hosts);
  let overall = list.reduce<Severity>((s, c) => worst(s, c.status), "ok");
  if (hostsWarning) overall = worst(overall, "warning");
  return {
    version: STATUS_JSON_VERSION,
    generated_at: now.toISOString(),
    status: overall,
    exit_code: SEVERITY_EXIT[overall],
    config: config.file,
    daemon: {
      last_check_at: lastCheck,
      check_schedule: config.check_schedule,
      stale: !lastCheck || now.getTime() - Date.parse(lastCheck) > 2 * period,
    },
    outbox: {
      queued: queued.length,
      oldest_queued_at: queued[0]?.created_at ?? null,
      last_error: queued.find((q) => q.last_error)?.last_error ?? null,
    },
    alerts,
    credentials: list,
    test_switches: [...testSwitches],
    ...(mailbox ? { mailbox } : {}),
    hosts,
    hosts_warning: hostsWarning,
  };
}

/** On a shared store: a warning unless one live leader and at least one live standby are seen. */
function standbyProblem(hosts: readonly HostView[]): string | null {
  const fresh = hosts.filter((h) => !h.stale);
  const leaders = fresh.filter((h) => h.role === "leader");
  if (fresh.length === 0) return "no credd host has sent a heartbeat recently: is `credd run` running on any host?";
  if (leaders.length === 0) return "no host leads: the hosts seen recently are all followers (a leader takes over at the next check)";
  if (fresh.length < 2)
    return `no standby: only ${fresh[0]!.name} was seen recently, so nothing takes over if it stops (start credd run on a second host)`;
  return null;
}

/** When no period is stored and the schedule gives none (never, for a valid expression). */
const FALLBACK_PERIOD_MS = 10 * 60_000;

/**
 * The time between the daemon's checks: the one `credd run` stored for the schedule it runs; from
 * a database no `credd run` of this version has stored it in yet, worked out from the config.
 */
function checkPeriod(snap: Snapshot, schedule: string, now: Date): number {
  return snap.checkPeriodMs ?? schedulePeriodMs(schedule, now) ?? FALLBACK_PERIOD_MS;
}

/**
 * When a registration probe whose backoff ends at `backoffUntil` (null: none) really runs: the
 * daemon probes only inside a scheduled check (core/check.ts, probeDue), so at the first run of
 * check_schedule at or after both that time and now. Cached per time: most share "now".
 */
export function probeTimes(schedule: string, now: Date): (backoffUntil: string | null) => string | null {
  const cache = new Map<number, string | null>();
  return (backoffUntil) => {
    const from = Math.max(now.getTime(), backoffUntil ? Date.parse(backoffUntil) : 0);
    let at = cache.get(from);
    if (at === undefined) {
      at = firstRunAtOrAfter(schedule, new Date(from))?.toISOString() ?? null;
      cache.set(from, at);
    }
    return at;
  };
}

/** Worst first, then oldest first. */
function openAlertViews(snap: Snapshot): OpenAlertView[] {
  return [...snap.alerts]
    .sort((a, b) => (a.severity === b.severity ? a.id - b.id : a.severity === "critical" ? -1 : 1))
    .map((a) => ({
      credential: a.credential,
      kind: a.kind,
      severity: a.severity,
      title: a.title,
      stage: a.stage,
      opened_at: a.opened_at,
      last_sent_at: a.last_sent_at,
    }));
}

/** The proxy listener as the daemon last wrote it (src/proxy/state-file.ts); null when none has. */
function proxyView(runtimeDir: string, name: string, listen: string): CredentialStatus["proxy"] {
  const st = readProxyState(runtimeDir, name);
  if (!st) return null;
  return {
    listen,
    listening: st.listening !== null,
    address: st.listening,
    updated_at: st.updated_at,
    requests: st.requests,
    outcomes: st.outcomes,
    retried_with_new_token: st.retried_with_new_token,
    last_upstream_error: st.last_upstream_error,
    certificate_version: st.certificate_version,
  };
}

function credentialStatus(
  cred: CredentialConfig,
  snap: Snapshot,
  own: { alerts: OpenAlertView[]; mails: QueuedSummary[] },
  now: Date,
  period: number,
  probeAt: (backoffUntil: string | null) => string | null,
): CredentialStatus {
  const name = cred.name;
  const live = snap.live.get(name);
  const pending = snap.pending.get(name);
  const check = snap.checks.get(name);
  const { alerts, mails } = own;
  const decision = decide(checkInputOf(cred, snap), now);
  const hooks = snap.hooks.get(name) ?? [];
  const refusal = snap.refusals.get(name);
  const freshRefusal = refusalSince(refusal, live);
  const tok = cred.oauth ? snap.tokens.get(name) : undefined;
  const tState = cred.oauth
    ? tokenState(
        { ...(tok?.expires_at ? { expiresAt: new Date(tok.expires_at) } : {}), ...(tok?.refresh_at ? { refreshAt: new Date(tok.refresh_at) } : {}) },
        now,
      )
    : undefined;
  const probe = pending;
  const awaiting = !!cred.oauth && pending?.state === "signed";
  const failedHooks = failedHookLines(hooks);
  const health = assessHealth(
    {
      ...(live ? { liveNotAfter: new Date(live.not_after) } : {}),
      ...(live && earlierCaOf(live) ? { caFirst: earlierCaOf(live)! } : {}),
      ...(pending ? { pendingState: awaiting ? "awaiting IDP registration" : pending.state } : {}),
      ...(decision.renewAt ? { renewAt: decision.renewAt } : {}),
      ...(check ? { lastCheckAt: new Date(check.last_check_at) } : {}),
      ...(check?.last_error ? { lastError: check.last_error } : {}),
      failingMails: mails.filter((m) => m.attempts > 0).length,
      ...(mails.some((m) => m.last_error_permanent === 1) ? { refusedMail: mails.find((m) => m.last_error_permanent === 1)!.last_error ?? "" } : {}),
      checkPeriodMs: period,
      failedHooks,
      ...(tState && live
        ? { token: { state: tState, failures: tok?.failures ?? 0, ...(tok?.last_error ? { lastError: tok.last_error } : {}) } }
        : {}),
      ...(freshRefusal ? { refusedIngest: `${freshRefusal.file}: ${freshRefusal.reason}` } : {}),
    },
    now,
  );
  return {
    name,
    mzp: cred.mzp,
    status: health.severity,
    problems: health.problems,
    certificate: live
      ? {
          version: live.version,
          serial: live.serial,
          not_before: live.not_before,
          not_after: live.not_after,
          days_left: daysLeft(new Date(live.not_after), now),
          sha256: live.sha256,
          source: live.source,
          installed_at: live.installed_at,
        }
      : null,
    renewal: pending
      ? {
          id: pending.id,
          kind: pending.kind,
          forced: pending.forced === 1,
          state: pending.state,
          reason: pending.reason,
          since: pending.state_since,
          created_at: pending.created_at,
          csr_sent_at: pending.sent_at,
          reminded_at: pending.reminded_at,
          remind_count: pending.remind_count,
          awaiting_registration: awaiting,
          registration_mailed_at: probe?.registration_mail_at ?? null,
          probe_attempts: probe?.probe_attempts ?? 0,
          next_probe_at: awaiting ? probeAt(probe?.next_probe_at ?? null) : null,
          probe_backoff_until: probe?.next_probe_at ?? null,
          last_probe_error: probe?.last_probe_error ?? null,
        }
      : null,
    next_renewal_at: decision.renewAt?.toISOString() ?? null,
    next_renewal_set_by: renewalSetBy(live, decision.renewAtSetBy),
    next_step: { check: decision.check, action: decision.action, reason: decision.reason },
    token: cred.oauth
      ? {
          state: tState!,
          obtained_at: tok?.obtained_at ?? null,
          expires_at: tok?.expires_at ?? null,
          refresh_at: tok?.refresh_at ?? null,
          cert_version: tok?.cert_version ?? null,
          failures: tok?.failures ?? 0,
          next_attempt_at: tok?.next_attempt_at ?? null,
          last_error: tok?.last_error ?? null,
        }
      : { state: cred.basic_auth ? "not used (basic auth)" : "not used" },
    last_hook: hooks.length
      ? {
          at: hooks[0]!.started_at,
          version: hooks[0]!.version,
          serial: hooks[0]!.serial,
          ok: failedHooks.length === 0,
          runs: hooks.map((h) => ({
            argv: JSON.parse(h.argv_json) as string[],
            ok: h.ok === 1,
            exit_code: h.exit_code,
            duration_ms: h.duration_ms,
            error: h.error,
          })),
        }
      : null,
    last_refusal: freshRefusal ? { at: freshRefusal.at, file: freshRefusal.file, check: freshRefusal.check_name, reason: freshRefusal.reason } : null,
    outbox: { queued: mails.length, last_error: mails.find((m) => m.last_error)?.last_error ?? null },
    alerts,
    last_check_at: check?.last_check_at ?? null,
    last_error: check?.last_error ?? null,
    last_error_at: check?.last_error_at ?? null,
  };
}

/** The certificate whose expiry sets the renewal date, from the live row (migration 0007's columns). */
function renewalSetBy(live: LiveCertificate | undefined, by: "leaf" | "ca" | undefined): CredentialStatus["next_renewal_set_by"] {
  if (!live || !by) return null;
  if (by === "ca" && live.ca_not_after && live.ca_not_after_role) {
    return {
      certificate: live.ca_not_after_role,
      subject: live.ca_not_after_subject ?? "",
      serial: live.ca_not_after_serial ?? "",
      not_after: live.ca_not_after,
    };
  }
  return { certificate: "leaf", subject: live.subject, serial: live.serial, not_after: live.not_after };
}
