// Sends due outbox emails through SMTP, marks them sent, or reschedules them with backoff.
import { mailBackoffMs } from "../domain/timing.js";
import { errorMessage } from "../errors.js";
import { SmtpRejectedError } from "../mail/smtp.js";
import { claimDue, markMailFailed, markMailSent } from "../store/outbox.js";
import { markCsrSent } from "../store/renewals.js";
import type { Ctx } from "./context.js";
import { crashPoint } from "./crash.js";

export interface DeliveryReport {
  sent: number;
  failed: number;
  errors: string[];
}

/** How long a sender holds a claimed row: longer than one SMTP attempt can take. */
const CLAIM_MS = 5 * 60_000;

/**
 * Delivers every due email once. A failure leaves the row queued with the next attempt 1 min, 2 min,
 * ... up to 1 h later; the Message-ID never changes, so a resend after a crash is recognisable.
 */
export async function deliverDue(ctx: Ctx, opts: { onlyId?: number; shouldStop?: () => boolean } = {}): Promise<DeliveryReport> {
  const report: DeliveryReport = { sent: 0, failed: 0, errors: [] };
  const batch = claimDue(ctx.db, ctx.clock.now(), CLAIM_MS, 50, opts.onlyId);
  if (batch.length > 0) crashPoint("deliver-after-claim");
  for (const { row, mail } of batch) {
    if (opts.shouldStop?.()) {
      // Give the claim back so the next run picks it up at once.
      ctx.db.prepare("UPDATE outbox SET claimed_until = NULL WHERE id = ?").run(row.id);
      continue;
    }
    try {
      let note: string | null = null;
      try {
        await ctx.mailer().send(mail);
      } catch (err) {
        // Some recipients have it already: a resend would duplicate it for them, so record and move on.
        if (!(err instanceof SmtpRejectedError) || err.accepted.length === 0) throw err;
        note = errorMessage(err);
        ctx.log.error({ outbox: row.id, accepted: err.accepted, rejected: err.rejected, err: note }, "email refused for some recipients");
      }
      crashPoint("deliver-after-smtp");
      const now = ctx.clock.now();
      ctx.db.transaction(() => {
        markMailSent(ctx.db, row.id, now, note);
        if (row.renewal_id !== null && (row.kind === "csr" || row.kind === "csr-reminder")) {
          markCsrSent(ctx.db, row.renewal_id, now.toISOString());
        }
      })();
      crashPoint("deliver-after-mark");
      report.sent++;
      ctx.log.info(
        { outbox: row.id, kind: row.kind, credential: row.credential, messageId: mail.messageId, to: mail.to, cc: mail.cc },
        "email sent",
      );
    } catch (err) {
      const attempts = row.attempts + 1;
      const next = new Date(ctx.clock.now().getTime() + mailBackoffMs(attempts));
      const msg = errorMessage(err);
      markMailFailed(ctx.db, row.id, msg, next);
      report.failed++;
      report.errors.push(msg);
      ctx.log.error(
        { outbox: row.id, kind: row.kind, credential: row.credential, attempts, retryAt: next.toISOString(), err: msg },
        "email not sent, will retry",
      );
    }
  }
  return report;
}
