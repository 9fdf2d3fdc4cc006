// A shared store unreachable for a while (docs/shared-store.md, "What happens when PostgreSQL is
// down"): the usual alert path cannot help, since the outbox lives in the store. So the host that
// cannot reach it emails ops straight over SMTP (the same transport and settings as the outbox),
// once per outage, retried at most once a minute until the SMTP server takes it; when the store is
// back, the "reachable again" email is queued in the outbox like any alert (durable and retried,
// and it still says so when the first email could not go out).
import type { Ctx } from "../core/context.js";
import { errorMessage } from "../errors.js";
import { composeStoreBackMail, composeStoreDownMail } from "../mail/alert-mail.js";

/** Between two attempts at the "unreachable" email when SMTP fails too. */
export const STORE_DOWN_MAIL_RETRY_MS = 60_000;

export interface StoreOutageMail {
  /** The outage has lasted past the warning threshold (called at every failing tick after it). */
  down(sinceMs: number, error: string): void;
  /** The store answered again after such an outage: the closing email goes to the outbox. */
  back(sinceMs: number): Promise<void>;
  /** The send in flight, if any (tests, stop). */
  idle(): Promise<void>;
}

export function storeOutageMail(ctx: Ctx, host: string): StoreOutageMail {
  let sent = false;
  let lastTry: number | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  let sending = false;
  return {
    down(sinceMs, error) {
      const now = ctx.clock.now();
      if (sent || sending || (lastTry !== undefined && now.getTime() - lastTry < STORE_DOWN_MAIL_RETRY_MS)) return;
      lastTry = now.getTime();
      sending = true;
      const since = new Date(sinceMs).toISOString();
      const mail = composeStoreDownMail(ctx.config, { host, since, error, now });
      inFlight = ctx
        .mailer()
        .send(mail)
        .then(
          () => {
            sent = true;
            ctx.log.warn({ host, since, to: mail.to, subject: mail.subject }, "store outage: alert email sent directly over SMTP");
          },
          (err: unknown) => {
            ctx.log.error(
              { host, since, err: errorMessage(err) },
              `store outage: the alert email could not be sent directly (tried again in ${STORE_DOWN_MAIL_RETRY_MS / 1000} s)`,
            );
          },
        )
        .finally(() => {
          sending = false;
        });
    },
    async back(sinceMs) {
      await inFlight;
      const now = ctx.clock.now();
      const mail = composeStoreBackMail(ctx.config, {
        host,
        since: new Date(sinceMs).toISOString(),
        until: now.toISOString(),
        downMailSent: sent,
        now,
      });
      sent = false;
      lastTry = undefined;
      try {
        await ctx.store.enqueueMail({ mail, kind: "alert", now });
        ctx.log.info({ host, subject: mail.subject }, "store outage over: the closing email is queued");
      } catch (err) {
        ctx.log.error({ host, err: errorMessage(err) }, "store outage over, but the closing email could not be queued");
      }
    },
    idle: () => inFlight,
  };
}
