// Whether the mailbox can be read: each failure logged when it starts or changes, one ops email when
// it cannot cure itself (a refused login, an untrusted certificate) or has lasted, one when it ends.
import type { Ctx } from "../core/context.js";
import { composeSourceAlert } from "./ops-mail.js";
import type { MailboxSourceRow } from "../store/store.js";

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

export async function sourceFailed(ctx: Ctx, source: string, f: SourceFailure, afterMs = ALERT_AFTER_MS): Promise<void> {
  const now = ctx.clock.now();
  const at = now.toISOString();
  const row = await ctx.store.recordSourceFailure(source, f.message, at);
  if (row.failures === 1 || row.last_error !== f.message) {
    ctx.log.error(
      { source, err: f.message, fix: f.fix },
      "mailbox: cannot read the mailbox; retried with backoff (logged again only when the error changes)",
    );
  }
  if (!alertDue(row, f, now, afterMs)) return;
  await ctx.store.tx(async (s) => {
    await s.enqueueMail({
      mail: composeSourceAlert(ctx.config, { source, since: row.failing_since!, error: f.message, fix: f.fix, now }),
      kind: "mailbox-alert",
      now,
    });
    await s.markSourceAlerted(source, at);
  });
}

export async function sourceOk(ctx: Ctx, source: string): Promise<void> {
  const now = ctx.clock.now();
  const was = await ctx.store.recordSourceOk(source, now.toISOString());
  if (!was?.failing_since) return;
  ctx.log.info(
    { source, previousErr: was.last_error, failingSince: was.failing_since, attempts: was.failures },
    "mailbox: the mailbox can be read again",
  );
  if (was.alerted_at) {
    await ctx.store.enqueueMail({
      mail: composeSourceAlert(ctx.config, { source, since: was.failing_since, resolved: true, now }),
      kind: "mailbox-alert",
      now,
    });
  }
}
