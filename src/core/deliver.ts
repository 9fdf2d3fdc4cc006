// Sends due outbox emails through SMTP, marks them sent, or reschedules them with backoff.
import { mailBackoffMs } from "../domain/timing.js";
import { ConfigError, CreddError, errorMessage } from "../errors.js";
import { SmtpError, SmtpRejectedError } from "../mail/smtp.js";
import type { Ctx } from "./context.js";
import { crashPoint } from "./crash.js";
import type { OutboxRow, Store } from "../store/store.js";

export interface DeliveryReport {
  /** Emails the SMTP server accepted (including those in `unrecorded`). */
  sent: number;
  failed: number;
  errors: string[];
  /**
   * The failures that cannot cure themselves (login refused, certificate not trusted, 5xx, the CA
   * or password file unusable), each with what a person must fix. They stay queued all the same.
   */
  permanent: { outbox: number; error: string; fix: string }[];
  /** Accepted by SMTP but not recorded as sent (the database write failed): what happened and what comes next. */
  unrecorded: string[];
}

/** How long a sender holds a claimed row: longer than one SMTP attempt can take. */
const CLAIM_MS = 5 * 60_000;

/** An email SMTP accepted whose row could not be marked sent; kept to record it at the next run. */
interface Unrecorded {
  row: OutboxRow;
  messageId: string;
  sentAt: Date;
  note: string | null;
}

/** Per store (one per process): emails sent but not yet recorded, by outbox id. */
const unrecordedByStore = new WeakMap<Store, Map<number, Unrecorded>>();

function unrecordedOf(store: Store): Map<number, Unrecorded> {
  let m = unrecordedByStore.get(store);
  if (!m) {
    m = new Map();
    unrecordedByStore.set(store, m);
  }
  return m;
}

/**
 * What a person must fix when `err` cannot cure itself by retrying, else undefined: a permanent
 * SMTP refusal, or the SMTP settings' files unusable (a CONFIG error from the mailer factory).
 */
export function permanentFix(err: unknown): string | undefined {
  if (err instanceof SmtpError) return err.permanent ? err.fix : undefined;
  if (err instanceof ConfigError) return err.fix || "correct the config (credd check-config checks it)";
  if (err instanceof CreddError && err.code === "CONFIG") return "correct the config (credd check-config checks it)";
  return undefined;
}

/** Marks the row sent (and its renewal's CSR sent), in one transaction; throws if the database refuses. */
async function recordSent(store: Store, row: OutboxRow, sentAt: Date, note: string | null): Promise<void> {
  await store.tx(async (s) => {
    await s.markMailSent(row.id, sentAt, note);
    if (row.renewal_id !== null && (row.kind === "csr" || row.kind === "csr-reminder")) {
      await s.markCsrSent(row.renewal_id, sentAt.toISOString());
    }
  });
}

/**
 * Delivers every due email once. A failure leaves the row queued with the next attempt 1 min, 2 min,
 * ... up to 1 h later; the Message-ID never changes, so a resend after a crash is recognisable.
 * An email SMTP accepted but the database could not record is never sent again by this process:
 * recording it is retried first at every run. Only if the process ends before that succeeds does
 * the row come due again (once its claim runs out), and it goes out again with the same Message-ID.
 */
export async function deliverDue(ctx: Ctx, opts: { onlyId?: number; shouldStop?: () => boolean } = {}): Promise<DeliveryReport> {
  const report: DeliveryReport = { sent: 0, failed: 0, errors: [], permanent: [], unrecorded: [] };
  const unrecorded = unrecordedOf(ctx.store);
  for (const u of [...unrecorded.values()]) {
    try {
      await recordSent(ctx.store, u.row, u.sentAt, u.note);
    } catch {
      continue; // still failing: logged when it first failed; tried again at the next run
    }
    unrecorded.delete(u.row.id);
    ctx.log.info(
      { outbox: u.row.id, kind: u.row.kind, credential: u.row.credential, messageId: u.messageId, sentAt: u.sentAt.toISOString() },
      "email recorded as sent (it went out earlier, when the database could not record it)",
    );
  }
  const batch = (await ctx.store.claimDue(ctx.clock.now(), CLAIM_MS, 50, opts.onlyId)).filter(({ row }) => !unrecorded.has(row.id));
  if (batch.length > 0) crashPoint("deliver-after-claim");
  let fenced = false;
  for (const { row, mail } of batch) {
    if (!fenced && ctx.fence) {
      // A shared store: send only while this host still leads (docs/shared-store.md).
      try {
        await ctx.fence();
      } catch (err) {
        fenced = true;
        ctx.log.warn({ err: errorMessage(err) }, "emails not sent: this host no longer leads; the leader sends them");
      }
    }
    if (fenced || opts.shouldStop?.()) {
      // Give the claim back so the next run picks it up at once.
      await ctx.store.releaseClaim(row.id);
      continue;
    }
    const what = { outbox: row.id, kind: row.kind, credential: row.credential, messageId: mail.messageId };
    let note: string | null = null;
    try {
      try {
        await ctx.mailer().send(mail);
      } catch (err) {
        // Some recipients have it already: a resend would duplicate it for them, so record and move on.
        if (!(err instanceof SmtpRejectedError) || err.accepted.length === 0) throw err;
        note = errorMessage(err);
        ctx.log.error({ outbox: row.id, accepted: err.accepted, rejected: err.rejected, err: note }, "email refused for some recipients");
      }
    } catch (err) {
      const attempts = row.attempts + 1;
      const next = new Date(ctx.clock.now().getTime() + mailBackoffMs(attempts));
      const msg = errorMessage(err);
      const fix = permanentFix(err);
      report.failed++;
      report.errors.push(msg);
      if (fix !== undefined) report.permanent.push({ outbox: row.id, error: msg, fix });
      try {
        await ctx.store.markMailFailed(row.id, msg, next, fix !== undefined);
      } catch (dbErr) {
        ctx.log.error(
          { ...what, attempts, err: msg, dbErr: errorMessage(dbErr), retryAt: new Date(ctx.clock.now().getTime() + CLAIM_MS).toISOString() },
          "email not sent, and the database could not record the attempt; it stays queued and is retried once its claim runs out",
        );
        continue;
      }
      if (fix !== undefined) {
        ctx.log.error(
          { ...what, attempts, permanent: true, retryAt: next.toISOString(), err: msg, fix },
          "email refused for good by SMTP: a person must fix it; it stays queued and is retried with backoff",
        );
      } else ctx.log.error({ ...what, attempts, retryAt: next.toISOString(), err: msg }, "email not sent, will retry");
      continue;
    }
    crashPoint("deliver-after-smtp");
    const sentAt = ctx.clock.now();
    report.sent++;
    try {
      await recordSent(ctx.store, row, sentAt, note);
    } catch (err) {
      const msg = errorMessage(err);
      unrecorded.set(row.id, { row, messageId: mail.messageId, sentAt, note });
      report.unrecorded.push(`the SMTP server accepted it (Message-ID ${mail.messageId}), but the database could not record it as sent: ${msg}`);
      ctx.log.error(
        { ...what, to: mail.to, cc: mail.cc, sentAt: sentAt.toISOString(), err: msg },
        "email sent, but the database could not record it: it stays queued; recording is retried at the next delivery, " +
          "and if credd stops before that succeeds the email is sent again with the same Message-ID",
      );
      continue;
    }
    crashPoint("deliver-after-mark");
    ctx.log.info({ ...what, to: mail.to, cc: mail.cc }, "email sent");
  }
  return report;
}
