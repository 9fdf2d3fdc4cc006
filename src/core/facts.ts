// What the expiry decision needs about one credential, read from SQLite (kept apart from check.ts so
// `credd status` does not load the PKI and mail code that starting a renewal needs).
import type { CredentialConfig } from "../config/types.js";
import type { CheckInput } from "../domain/decide.js";
import { liveCertificate } from "../store/certificates.js";
import type { Db } from "../store/db.js";
import { latestRenewal, pendingRenewal } from "../store/renewals.js";

const d = (s: string | null | undefined) => (s ? new Date(s) : undefined);

/** Reads what the decision needs from SQLite: no I/O happens inside decide(). */
export function checkInput(db: Db, cred: CredentialConfig): CheckInput {
  const live = liveCertificate(db, cred.name);
  const pending = pendingRenewal(db, cred.name);
  const latest = latestRenewal(db, cred.name);
  const input: CheckInput = {
    autoEnroll: cred.auto_enroll,
    renewBeforeDays: cred.renew_before_days,
    remindAfterDays: cred.remind_after_days,
  };
  if (live) input.live = { serial: live.serial, notBefore: new Date(live.not_before), notAfter: new Date(live.not_after) };
  if (pending) {
    input.pending = {
      id: pending.id,
      state: pending.state as "created" | "sent" | "signed" | "registered",
      createdAt: new Date(pending.created_at),
      ...(pending.sent_at ? { sentAt: d(pending.sent_at)! } : {}),
      ...(pending.reminded_at ? { remindedAt: d(pending.reminded_at)! } : {}),
    };
  }
  if (latest) input.lastCsrCreatedAt = new Date(latest.created_at);
  return input;
}

