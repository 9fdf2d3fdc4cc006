// Gathers the facts the alert rules need, plans what to send, and queues one digest in the outbox.
import type { CredentialConfig } from "../config/types.js";
import { planAlerts, situations, type CredentialFacts, type DaemonFacts } from "../domain/alerts.js";
import { earlierCaOf } from "./facts.js";
import { composeAlertDigest } from "../mail/alert-mail.js";
import type { Ctx } from "./context.js";
import { failedHookLines, refusalSince, type HostRow, type Snapshot } from "../store/store.js";
import { schedulePeriodMs } from "./schedule.js";

/**
 * How long a shared store may run without a standby (fewer than two hosts heartbeating within two
 * check periods) before the leader emails ops: long enough for a reboot or an upgrade of the
 * standby, short enough that a dead standby is known the same working day.
 */
export const STANDBY_ALERT_MS = 60 * 60_000;
/** The check period when none is stored and the schedule gives none (status.ts uses the same). */
const FALLBACK_PERIOD_MS = 10 * 60_000;

/** SMTP counts as failing once a queued email has failed this many times (one failure may be a blip). */
const SMTP_FAILING_ATTEMPTS = 3;

function credentialFacts(ctx: Ctx, cred: CredentialConfig, snap: Snapshot): CredentialFacts {
  const live = snap.live.get(cred.name);
  const pending = snap.pending.get(cred.name);
  const fresh = refusalSince(snap.refusals.get(cred.name), live);
  const hooks = snap.hooks.get(cred.name) ?? [];
  const failed = failedHookLines(hooks);
  const tok = cred.oauth && live ? snap.tokens.get(cred.name) : undefined;
  const facts: CredentialFacts = {
    credential: cred.name,
    mzp: cred.mzp,
    contact: ctx.config.stellantis.contact,
    remindAfterDays: cred.remind_after_days,
    expiryDays: ctx.config.alerts.expiry_days,
  };
  if (live) {
    const caFirst = earlierCaOf(live);
    facts.live = { serial: live.serial, notAfter: new Date(live.not_after), ...(caFirst ? { caFirst } : {}) };
  }
  if (pending) {
    facts.pending = {
      id: pending.id,
      state: pending.state,
      createdAt: new Date(pending.created_at),
      ...(pending.sent_at ? { sentAt: new Date(pending.sent_at) } : {}),
      awaitingRegistration: !!cred.oauth && pending.state === "signed",
    };
  }
  if (fresh) facts.refusal = { id: fresh.id, file: fresh.file, check: fresh.check_name ?? "", reason: fresh.reason ?? "" };
  if (failed.length) {
    facts.failedHooks = {
      at: hooks[0]!.started_at,
      lines: failed,
    };
  }
  if (tok) {
    facts.token = {
      failures: tok.failures,
      ...(tok.expires_at ? { expiresAt: new Date(tok.expires_at) } : {}),
      ...(tok.last_error ? { lastError: tok.last_error } : {}),
    };
  }
  return facts;
}

async function daemonFacts(ctx: Ctx, snap: Snapshot): Promise<DaemonFacts> {
  const facts: DaemonFacts = {};
  // A permanent refusal is its own alert, at once and for every kind of email (an alert digest
  // refused for good must be seen too); temporary failures count after a few attempts.
  const refused = snap.queued.filter((m) => m.last_error_permanent === 1);
  if (refused.length) facts.smtpRefused = { count: refused.length, error: refused[0]!.last_error ?? "" };
  const failing = snap.queued.filter((m) => m.kind !== "alert" && m.last_error_permanent !== 1 && m.attempts >= SMTP_FAILING_ATTEMPTS);
  if (failing.length) facts.smtpFailing = { attempts: Math.max(...failing.map((m) => m.attempts)), error: failing[0]!.last_error ?? "" };
  const stray = await ctx.store.lastUnmatchedRefusal();
  if (stray && ctx.clock.now().getTime() - Date.parse(stray.at) < 7 * 86_400_000) {
    facts.unmatchedRefusal = { id: stray.id, file: stray.file, check: stray.check_name ?? "", reason: stray.reason ?? "" };
  }
  const inbox = await ctx.store.getMeta("inbox_unsafe");
  if (inbox) facts.inboxUnsafe = JSON.parse(inbox) as { at: string; reason: string };
  const unclean = await ctx.store.getMeta("unclean_restart_at");
  if (unclean) facts.uncleanRestartAt = unclean;
  if (ctx.config.store !== "sqlite") {
    const missing = await standbyMissing(ctx, snap);
    if (missing) facts.standbyMissing = missing;
  }
  return facts;
}

/**
 * A shared store whose hosts heartbeat less than two (status's `hosts_warning`, core/status.ts) for
 * at least STANDBY_ALERT_MS: since when, from the hosts table alone (no state of its own, so any
 * leader, after any failover, reaches the same answer).
 */
async function standbyMissing(ctx: Ctx, snap: Snapshot): Promise<DaemonFacts["standbyMissing"]> {
  const now = ctx.clock.now();
  const period = snap.checkPeriodMs ?? schedulePeriodMs(ctx.config.check_schedule, now) ?? FALLBACK_PERIOD_MS;
  const hosts = await ctx.store.listHosts();
  const isFresh = (h: HostRow) => now.getTime() - Date.parse(h.last_heartbeat_at) <= 2 * period;
  const fresh = hosts.filter(isFresh);
  if (fresh.length >= 2) return undefined;
  // Missing since the last missing host went stale, but not before the hosts seen now started (a
  // whole group restarted after a long stop gives its standby the same grace).
  const gone = hosts.filter((h) => !isFresh(h)).map((h) => Date.parse(h.last_heartbeat_at) + 2 * period);
  const started = fresh.map((h) => Date.parse(h.started_at));
  const goneSince = gone.length > 0 ? Math.max(...gone) : -Infinity;
  const startedSince = started.length > 0 ? Math.min(...started) : -Infinity;
  // Once alerted, a restart of the host seen now (its started_at moves) neither ends the alert nor
  // gives the grace again: that would be a false RESOLVED, and the same alert an hour later.
  const alerted = (await ctx.store.openAlerts()).some((a) => a.kind === "standby-missing" && a.credential === null);
  const since = alerted && Number.isFinite(goneSince) ? goneSince : Math.max(goneSince, startedSince);
  if (!Number.isFinite(since) || (!alerted && now.getTime() - since < STANDBY_ALERT_MS)) return undefined;
  return { since: new Date(since).toISOString(), seen: fresh.map((h) => h.name) };
}

export interface AlertRun {
  fired: number;
  resolved: number;
  outboxId?: number;
}

/** Evaluates every rule and queues at most one digest email; each situation is sent once per stage. */
export async function evaluateAlerts(ctx: Ctx): Promise<AlertRun> {
  const now = ctx.clock.now();
  const at = now.toISOString();
  const snap = await ctx.store.readSnapshot();
  const current = situations(
    ctx.config.credentials.map((c) => credentialFacts(ctx, c, snap)),
    await daemonFacts(ctx, snap),
    now,
  );
  const open = snap.alerts;
  const planned = planAlerts(
    open.map((a) => ({ id: a.id, credential: a.credential, kind: a.kind, stage: a.stage, event: a.event === 1 })),
    current.filter((s) => !s.event),
  );
  const events = [];
  for (const s of current) if (s.event && !(await ctx.store.eventSent(s))) events.push(s);
  const plan = { fire: [...planned.fire, ...events], resolve: planned.resolve };
  const resolvedMail = open
    .filter((a) => plan.resolve.some((r) => r.id === a.id))
    .map((a) => ({ credential: a.credential, title: a.title, opened_at: a.opened_at }));
  if (plan.fire.length === 0 && plan.resolve.length === 0) return { fired: 0, resolved: 0 };
  return await ctx.store.tx(async (t): Promise<AlertRun> => {
    for (const s of plan.fire) await (s.event ? t.recordEvent(s, at) : t.upsertAlert(s, at));
    for (const r of plan.resolve) await t.resolveAlert(r.id, at);
    const mail = composeAlertDigest(ctx.config, plan.fire, resolvedMail, now);
    const outboxId = await t.enqueueMail({ mail, kind: "alert", now });
    ctx.log.warn(
      { alerts: plan.fire.map((s) => `${s.credential ?? "credd"}: ${s.kind} ${s.stage}`), resolved: resolvedMail.length, subject: mail.subject },
      "alert digest queued",
    );
    return { fired: plan.fire.length, resolved: plan.resolve.length, outboxId };
  });
}
