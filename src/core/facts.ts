// What the expiry decision needs about each credential, as its input (the rows come from
// store/facts.ts; kept apart from check.ts so `credd status` does not load the PKI and mail code
// that starting a renewal needs).
import type { CredentialConfig } from "../config/types.js";
import type { CheckInput } from "../domain/decide.js";
import { earlierCa, type EarlierCa } from "../domain/timing.js";
import type { LatestFacts, LiveCertificate, LiveFacts, PendingFacts, Snapshot, Store } from "../store/store.js";

/** The CA certificate of a live certificate's path that expires before it, if one does (migration 0007). */
export function earlierCaOf(live: LiveCertificate): EarlierCa | undefined {
  if (!live.ca_not_after || !live.ca_not_after_role) return undefined;
  return earlierCa(new Date(live.not_after), {
    notAfter: new Date(live.ca_not_after),
    role: live.ca_not_after_role,
    subject: live.ca_not_after_subject ?? "",
  });
}

/** The same from a snapshot (status and the alert rules read one for all credentials). */
export function checkInputOf(cred: CredentialConfig, snap: Snapshot): CheckInput {
  const latest = snap.latestCsrAt.get(cred.name);
  return toInput(cred, snap.live.get(cred.name), snap.pending.get(cred.name), latest ? { credential: cred.name, created_at: latest } : undefined);
}

function toInput(cred: CredentialConfig, live?: LiveFacts, pending?: PendingFacts, latest?: LatestFacts): CheckInput {
  const input: CheckInput = {
    name: cred.name,
    oauth: !!cred.oauth,
    autoEnroll: cred.auto_enroll,
    renewBeforeDays: cred.renew_before_days,
    remindAfterDays: cred.remind_after_days,
  };
  if (live) {
    input.live = {
      serial: live.serial,
      notBefore: new Date(live.not_before),
      notAfter: new Date(live.not_after),
      ...(live.ca_not_after ? { caNotAfter: new Date(live.ca_not_after) } : {}),
    };
  }
  if (pending) {
    input.pending = {
      id: pending.id,
      state: pending.state as NonNullable<CheckInput["pending"]>["state"],
      createdAt: new Date(pending.created_at),
      ...(pending.sent_at ? { sentAt: new Date(pending.sent_at) } : {}),
      ...(pending.reminded_at ? { remindedAt: new Date(pending.reminded_at) } : {}),
    };
  }
  if (latest) input.lastCsrCreatedAt = new Date(latest.created_at);
  return input;
}

/** Reads what the decision needs about one credential: no I/O happens inside decide(). */
export async function checkInput(store: Store, cred: CredentialConfig): Promise<CheckInput> {
  const { live, pending, latest } = await store.decisionFacts(cred.name);
  return toInput(cred, live, pending, latest);
}

/**
 * The same for many credentials with one query per table instead of three per credential: the
 * check and `status` read every credential at once (10,000 point queries cost more than decide()).
 */
export async function checkInputs(store: Store, creds: readonly CredentialConfig[]): Promise<Map<string, CheckInput>> {
  const { live, pending, latest } = await store.allDecisionFacts();
  const out = new Map<string, CheckInput>();
  for (const c of creds) out.set(c.name, toInput(c, live.get(c.name), pending.get(c.name), latest.get(c.name)));
  return out;
}
