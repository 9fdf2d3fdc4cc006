// The expiry check: gathers one credential's facts, asks the pure decision, acts, records the heartbeat.
import type { CredentialConfig } from "../config/types.js";
import { decide, type CheckInput, type Decision } from "../domain/decide.js";
import { errorMessage } from "../errors.js";
import type { Ctx } from "./context.js";
import { evaluateAlerts } from "./alerts.js";
import { checkInput, checkInputs } from "./facts.js";
import { notFollowedReason } from "./follow-state.js";
import { reconcile } from "./reconcile.js";
import type { CheckBeat } from "../store/store.js";

// Renewal (key generation, CSR, email) and the IDP probe are loaded when a decision needs them:
// an idle daemon never does, and they bring the PKI, mail and HTTPS code (memory, start-up time).
const renewal = () => import("./renewal.js");
const registration = () => import("./registration.js");

/**
 * `known`: this credential's facts as read at the start of the whole check (checkAll reads all at
 * once). They decide only "nothing to do": before any action the facts are read again, since the
 * check awaits key generation, probes and hooks, and other processes (`credd ingest`, `import`,
 * `renew`) write the database meanwhile.
 */
export async function checkCredential(ctx: Ctx, cred: CredentialConfig, known?: CheckInput): Promise<Decision> {
  let facts = (await reconcile(ctx, cred)) === undefined ? known : undefined;
  if (cred.oauth && (facts ? facts.pending?.state === "signed" : true)) {
    const signed = await ctx.store.pendingRenewal(cred.name);
    const reg = signed?.state === "signed" ? await registration() : undefined;
    if (signed && reg && (await reg.probeDue(ctx, signed))) {
      await reg.probeRegistration(ctx, cred, signed);
      facts = undefined;
    }
  }
  const now = ctx.clock.now();
  let decision = decide(facts ?? (await checkInput(ctx.store, cred)), now);
  if (facts && decision.action !== "none") decision = decide(await checkInput(ctx.store, cred), now);
  ctx.log.debug({ credential: cred.name, ...decision }, "check");
  if (decision.action === "enroll" || decision.action === "renew") {
    await (await renewal()).startRenewal(ctx, cred, { kind: decision.action, forced: false, reason: decision.reason });
  } else if (decision.action === "remind") {
    const pending = await ctx.store.pendingRenewal(cred.name);
    if (pending?.state === "sent") await (await renewal()).queueReminder(ctx, cred, pending);
  }
  return decision;
}

export interface CheckSummary {
  checked: number;
  failed: { name: string; error: string }[];
  /** Set when the check stopped because this host no longer leads (a shared store): not a failure. */
  notLeader?: true;
}

/** A NotLeaderError (src/store/pg/leader.ts) in `err` or its causes, told by name so SQLite never loads pg. */
function isNotLeader(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e !== null && typeof e === "object" && depth < 5; depth++) {
    if ((e as { name?: unknown }).name === "NotLeaderError") return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Checks every credential; one credential's failure is recorded and never stops the others. The
 * facts are read for all credentials at once, and the heartbeats written in batches (one fsync per
 * batch instead of one per credential): before a credential whose check may act (and so take long:
 * a key, a probe, a hook), every 200 ms, and at the end.
 */
export async function checkAll(ctx: Ctx, credentials = ctx.config.credentials): Promise<CheckSummary> {
  const summary: CheckSummary = { checked: 0, failed: [] };
  const known = await checkInputs(ctx.store, credentials);
  const beats: CheckBeat[] = [];
  let flushedAt = performance.now();
  const flush = async (): Promise<void> => {
    flushedAt = performance.now();
    if (beats.length === 0) return;
    try {
      await ctx.store.recordChecks(beats);
    } catch (dbErr) {
      ctx.log.error({ err: errorMessage(dbErr) }, "could not record the checks' heartbeats");
    }
    beats.length = 0;
  };
  for (const cred of credentials) {
    // Shared store: a credential this host could not follow this tick is not checked on a stale disk.
    const behind = notFollowedReason(ctx, cred.name);
    if (behind !== undefined) {
      const msg = `not checked: this host's archive/ and live/ are not in line with the shared store (${behind})`;
      summary.failed.push({ name: cred.name, error: msg });
      ctx.log.error({ credential: cred.name, event: "check-failed", err: msg }, "check failed");
      beats.push({ credential: cred.name, at: ctx.clock.now(), error: msg });
      summary.checked++;
      continue;
    }
    const k = known.get(cred.name);
    if (!k || k.pending || decide(k, ctx.clock.now()).action !== "none") await flush();
    try {
      await checkCredential(ctx, cred, known.get(cred.name));
      beats.push({ credential: cred.name, at: ctx.clock.now() });
    } catch (err) {
      if (isNotLeader(err)) {
        // Leadership lost mid-check: the new leader checks; this host stops here and records no failure.
        ctx.log.warn({ credential: cred.name, err: errorMessage(err) }, "check stopped: this host no longer leads");
        summary.notLeader = true;
        break;
      }
      const msg = errorMessage(err);
      summary.failed.push({ name: cred.name, error: msg });
      ctx.log.error({ credential: cred.name, event: "check-failed", err: msg }, "check failed");
      beats.push({ credential: cred.name, at: ctx.clock.now(), error: msg });
    }
    summary.checked++;
    if (performance.now() - flushedAt > 200) await flush();
  }
  await flush();
  if (summary.notLeader) return summary;
  await ctx.store.setMeta("last_check_at", ctx.clock.now().toISOString());
  try {
    await evaluateAlerts(ctx);
  } catch (err) {
    ctx.log.error({ err: errorMessage(err) }, "alert evaluation failed");
  }
  return summary;
}
