// Pure: what the expiry check should do for one credential, as an ordered list of named checks.
import { DAY_MS } from "../clock.js";
import { daysLeft, NEW_CSR_MIN_INTERVAL_MS, pathRenewalTime } from "./timing.js";

export interface LiveCertFacts {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** The earliest notAfter of the CA certificates on its path, when recorded (migration 0007). */
  caNotAfter?: Date;
}

export interface PendingRenewalFacts {
  id: number;
  state: "created" | "sent" | "signed" | "registered";
  createdAt: Date;
  sentAt?: Date;
  remindedAt?: Date;
}

export interface CheckInput {
  /** The credential's name, for the commands a reason suggests. */
  name: string;
  /**
   * OAuth2 (RFC 8705): a signed certificate goes live only once the IDP accepts it, which may wait
   * for Stellantis to bind it to the OAuth2 client (core/registration.ts).
   */
  oauth: boolean;
  live?: LiveCertFacts;
  pending?: PendingRenewalFacts;
  /** When this credential last made a new key + CSR (any renewal, pending or ended). */
  lastCsrCreatedAt?: Date;
  autoEnroll: boolean;
  renewBeforeDays: number;
  remindAfterDays: number;
}

export type Action = "none" | "enroll" | "renew" | "remind";

export interface Decision {
  action: Action;
  /** The named check that decided, for logs and `status`. */
  check: string;
  reason: string;
  /** When renewal is (or was) due, if there is a live certificate. */
  renewAt?: Date;
  /** Which date set renewAt: the leaf's own lifetime, or a CA of its path that expires first. */
  renewAtSetBy?: "leaf" | "ca";
}

const iso = (d: Date) => d.toISOString();

/** Decides the next step; the first check that applies wins. */
export function decide(input: CheckInput, now: Date): Decision {
  const due = input.live ? pathRenewalTime(input.live, input.live.caNotAfter, input.renewBeforeDays) : undefined;
  const renewAt = due?.at;
  const setBy = due ? { renewAtSetBy: due.by } : {};
  const withRenewAt = (d: Decision): Decision => (renewAt ? { ...d, renewAt, ...setBy } : d);
  const p = input.pending;

  if (p) {
    if (p.state === "created") {
      return withRenewAt({ action: "none", check: "csr-queued", reason: "CSR made and queued for email, not sent yet" });
    }
    if (p.state === "sent") {
      const since = p.remindedAt ?? p.sentAt ?? p.createdAt;
      const waited = now.getTime() - since.getTime();
      if (waited >= input.remindAfterDays * DAY_MS) {
        const days = Math.floor((now.getTime() - (p.sentAt ?? p.createdAt).getTime()) / DAY_MS);
        return withRenewAt({
          action: "remind",
          check: "reminder-due",
          reason: `CSR sent ${days} days ago and no certificate back: reminding the contact with the same CSR`,
        });
      }
      return withRenewAt({
        action: "none",
        check: "awaiting-ca",
        reason: `waiting for the Stellantis CA to sign the CSR sent ${iso(p.sentAt ?? p.createdAt)}`,
      });
    }
    if (p.state === "signed" && input.oauth) {
      return withRenewAt({
        action: "none",
        check: "awaiting-registration",
        reason:
          "the new certificate is signed and installed but not live: waiting for Stellantis to bind it to the OAuth2 client " +
          "(it was emailed to the contact); credd probes the token endpoint and makes it live once the IDP accepts it",
      });
    }
    return withRenewAt({ action: "none", check: "renewal-in-progress", reason: `renewal ${p.state}, finishing it` });
  }

  const recentCsr = input.lastCsrCreatedAt !== undefined && now.getTime() - input.lastCsrCreatedAt.getTime() < NEW_CSR_MIN_INTERVAL_MS;

  if (!input.live) {
    if (!input.autoEnroll) {
      return {
        action: "none",
        check: "not-enrolled",
        reason: `no certificate yet: run \`credd enroll ${input.name}\` or \`credd import ${input.name} --cert FILE --key FILE\``,
      };
    }
    if (recentCsr) {
      return { action: "none", check: "csr-rate-limit", reason: "no certificate, but a CSR was already made in the last 24 h" };
    }
    return { action: "enroll", check: "no-certificate", reason: "no certificate yet (auto_enroll)" };
  }

  const left = daysLeft(input.live.notAfter, now);
  if (renewAt && now.getTime() >= renewAt.getTime()) {
    const what = left < 0 ? `expired ${-left} days ago` : `${left} days left`;
    if (recentCsr) {
      return {
        action: "none",
        check: "csr-rate-limit",
        reason: `renewal due (${what}) but a CSR was already made in the last 24 h; \`credd renew ${input.name}\` starts one now`,
        renewAt,
        ...setBy,
      };
    }
    return {
      action: "renew",
      check: "renewal-due",
      reason: `certificate ${input.live.serial}: ${what}, renewal due since ${iso(renewAt)}${due?.by === "ca" ? caNote(input.live) : ""}`,
      renewAt,
      ...setBy,
    };
  }
  return {
    action: "none",
    check: "valid",
    reason: `nothing to do until the renewal is due on ${iso(renewAt!)} (${left} days left${due?.by === "ca" ? caNote(input.live) : ""}); credd starts it then`,
    renewAt,
    ...setBy,
  };
}

/** Why the date is earlier than the certificate's own lifetime says. */
function caNote(live: LiveCertFacts): string {
  return `; set by a CA certificate of its chain that expires ${iso(live.caNotAfter!)}, before the certificate itself`;
}
