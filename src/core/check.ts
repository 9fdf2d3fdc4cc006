// The expiry check: gathers one credential's facts, asks the pure decision, acts, records the heartbeat.
import type { CredentialConfig } from "../config/types.js";
import { decide, type Decision } from "../domain/decide.js";
import { errorMessage } from "../errors.js";
import { recordCheck, setMeta } from "../store/checks.js";
import { pendingRenewal } from "../store/renewals.js";
import type { Ctx } from "./context.js";
import { evaluateAlerts } from "./alerts.js";
import { checkInput } from "./facts.js";
import { reconcile } from "./reconcile.js";
import { probeDue, probeRegistration } from "./registration.js";
import { queueReminder, startRenewal } from "./renewal.js";

export async function checkCredential(ctx: Ctx, cred: CredentialConfig): Promise<Decision> {
  await reconcile(ctx, cred);
  const signed = pendingRenewal(ctx.db, cred.name);
  if (cred.oauth && signed?.state === "signed" && probeDue(ctx, signed)) await probeRegistration(ctx, cred, signed);
  const decision = decide(checkInput(ctx.db, cred), ctx.clock.now());
  ctx.log.debug({ credential: cred.name, ...decision }, "check");
  if (decision.action === "enroll" || decision.action === "renew") {
    await startRenewal(ctx, cred, { kind: decision.action, forced: false, reason: decision.reason });
  } else if (decision.action === "remind") {
    const pending = pendingRenewal(ctx.db, cred.name)!;
    queueReminder(ctx, cred, pending);
  }
  return decision;
}

export interface CheckSummary {
  checked: number;
  failed: { name: string; error: string }[];
}

/** Checks every credential; one credential's failure is recorded and never stops the others. */
export async function checkAll(ctx: Ctx, credentials = ctx.config.credentials): Promise<CheckSummary> {
  const summary: CheckSummary = { checked: 0, failed: [] };
  for (const cred of credentials) {
    try {
      await checkCredential(ctx, cred);
      recordCheck(ctx.db, cred.name, ctx.clock.now());
    } catch (err) {
      const msg = errorMessage(err);
      summary.failed.push({ name: cred.name, error: msg });
      ctx.log.error({ credential: cred.name, err: msg }, "check failed");
      try {
        recordCheck(ctx.db, cred.name, ctx.clock.now(), msg);
      } catch (dbErr) {
        ctx.log.error({ credential: cred.name, err: errorMessage(dbErr) }, "could not record the failed check");
      }
    }
    summary.checked++;
  }
  setMeta(ctx.db, "last_check_at", ctx.clock.now().toISOString());
  try {
    evaluateAlerts(ctx);
  } catch (err) {
    ctx.log.error({ err: errorMessage(err) }, "alert evaluation failed");
  }
  return summary;
}
