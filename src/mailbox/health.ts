// Whether the mailbox can be read: each failure logged when it starts or changes, one ops email when
// it cannot cure itself (a refused login, an untrusted certificate) or has lasted, one when it ends.
import type { Ctx } from "../core/context.js";
import { enqueueMail } from "../store/outbox.js";
import { markSourceAlerted, recordSourceFailure, recordSourceOk, type MailboxSourceRow } from "../store/mailbox.js";
import { composeSourceAlert } from "./ops-mail.js";

/** A failure that retrying may cure becomes an ops email after this long (credd's clock). */
export const ALERT_AFTER_MS = 15 * 60_000;

export interface SourceFailure {
  /** What failed, in words; never a secret. */
  message: string;
  fix: string;
  /** Retrying cannot cure it until a person acts (wrong password, untrusted certificate). */
  permanent: boolean;
}

/** Pure: is an ops email owed for this failure now? */
export function alertDue(
  row: Pick<MailboxSourceRow, "failing_since" | "alerted_at">,
  f: Pick<SourceFailure, "permanent">,
  now: Date,
  afterMs = ALERT_AFTER_MS,
): boolean {
  if (row.alerted_at || !row.failing_since) return false;
  return f.permanent || now.getTime() - Date.parse(row.failing_since) >= afterMs;
}

export function sourceFailed(ctx: Ctx, source: string, f: SourceFailure, afterMs = ALERT_AFTER_MS): void {
  const now = ctx.clock.now();
  const at = now.toISOString();
  const row = recordSourceFailure(ctx.db, source, f.message, at);
  if (row.failures === 1 || row.last_error !== f.message) {
    ctx.log.error(
      { source, err: f.message, fix: f.fix },
      "mailbox: cannot read the mailbox; retried with backoff (logged again only when the error changes)",
    );
  }
  if (!alertDue(row, f, now, afterMs)) return;
  ctx.db.transaction(() => {
    enqueueMail(ctx.db, {
      mail: composeSourceAlert(ctx.config, { source, since: row.failing_since!, error: f.message, fix: f.fix, now }),
      kind: "mailbox-alert",
      now,
    });
    markSourceAlerted(ctx.db, source, at);
  })();
}

export function sourceOk(ctx: Ctx, source: string): void {
  const now = ctx.clock.now();
  const was = recordSourceOk(ctx.db, source, now.toISOString());
  if (!was?.failing_since) return;
  ctx.log.info(
    { source, previousErr: was.last_error, failingSince: was.failing_since, attempts: was.failures },
    "mailbox: the mailbox can be read again",
  );
  if (was.alerted_at) {
    enqueueMail(ctx.db, {
      mail: composeSourceAlert(ctx.config, { source, since: was.failing_since, resolved: true, now }),
      kind: "mailbox-alert",
      now,
    });
  }
}
