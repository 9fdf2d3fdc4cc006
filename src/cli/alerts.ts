// `credd alerts [test]`: list open alerts, or send one test email so an operator can see the path works.
import { loadConfig } from "../config/load.js";
import { composeTestAlert } from "../mail/alert-mail.js";
import { openStoreForReading } from "../store/open.js";
import type { Parsed } from "./args.js";
import { buildCtx } from "./context.js";
import { when } from "./format.js";
import type { Globals, Io } from "./io.js";
import { sendNow } from "./send-now.js";

export const ALERTS_HELP = `credd alerts        lists the open alerts and when each was last sent (it only
                    reads the database, and creates nothing)
credd alerts test   sends one test email to alerts.to (and alerts.critical_to)

Alerts are emails to ops when something needs a person: certificate expiry
approaching (alerts.expiry_days, default 30/14/7/3/1 days, then daily once
expired), a CSR unanswered after remind_after_days, a signed certificate
refused, a new certificate awaiting IDP registration, token refresh failing,
a deploy hook failed, SMTP failing, a restart after a crash. Each fires once
per threshold; a "resolved" email follows when the situation ends. Alerts due
in the same check go out as one digest.

exit: 0 listed / test sent, 1 the test email could not be sent (it stays queued), 2 usage`;

export async function cmdAlerts(p: Parsed, g: Globals, io: Io): Promise<number> {
  if (p.args[0] === "test") {
    const ctx = await buildCtx(g.configPath);
    try {
      const now = ctx.clock.now();
      const mail = composeTestAlert(ctx.config, now);
      const id = await ctx.store.enqueueMail({ mail, kind: "alert-test", now });
      return (await sendNow(ctx, id, io, `a test alert to ${mail.to.join(", ")}`)) === "sent" ? 0 : 1;
    } finally {
      await ctx.store.close();
    }
  }
  const config = loadConfig(g.configPath);
  const store = (await openStoreForReading(config)).store;
  try {
    const open = await store.openAlerts();
    if (open.length === 0) io.out("no open alerts");
    for (const a of open) {
      io.out(
        `${a.severity.toUpperCase().padEnd(8)} ${(a.credential ?? "credd").padEnd(16)} ${a.title} (since ${when(a.opened_at)}, last sent ${when(a.last_sent_at)})`,
      );
    }
    return 0;
  } finally {
    await store.close();
  }
}
