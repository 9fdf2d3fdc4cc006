// Tries to send one queued email at once from a command, so a person sees the outcome right away.
import type { Ctx } from "../core/context.js";
import { deliverDue } from "../core/deliver.js";
import type { Io } from "./io.js";

/**
 * "sent" when the SMTP server accepted it (even if the database could not record that), "queued"
 * after a temporary failure (`credd run` retries it), "refused" when the failure cannot cure itself
 * (login refused, certificate not trusted, 5xx, an unusable CA or password file): it stays queued
 * all the same, but a person must fix something first.
 */
export type SendOutcome = "sent" | "queued" | "refused";

export async function sendNow(ctx: Ctx, outboxId: number, io: Io, what: string): Promise<SendOutcome> {
  const s = ctx.config.smtp;
  io.err(`sending ${what} via ${s.host}:${s.port}...`);
  const r = await deliverDue(ctx, { onlyId: outboxId });
  if (r.unrecorded.length > 0) {
    io.err(`sent, but not recorded: ${r.unrecorded[0]}`);
    io.err(
      "it stays queued as unsent: once its claim runs out (5 min) `credd run` sends it again with the same Message-ID, " +
        "so the recipients may get it twice (the same email). Fix the database problem above; nothing else is needed.",
    );
    return "sent";
  }
  if (r.sent === 1) {
    io.err(`sent.`);
    return "sent";
  }
  const refused = r.permanent[0];
  if (refused) {
    io.err(`not sent: ${refused.error}`);
    // A config error's message carries its fix already: say it once.
    const fix = refused.error.includes(refused.fix) ? "" : `: ${refused.fix}`;
    io.err(
      `this will not fix itself${fix}. The email stays in the outbox and goes out once that is fixed ` +
        "(`credd run` retries it with backoff; `credd status` shows it).",
    );
    return "refused";
  }
  const why = r.errors[0] ?? "it is held by another sender (the daemon)";
  io.err(`not sent yet: ${why}`);
  io.err("it stays queued; `credd run` retries it with backoff (1 min doubling to 1 h). `credd status` shows it.");
  return "queued";
}
