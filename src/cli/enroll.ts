// `credd enroll NAME` / `credd renew NAME [--force]`: a new key and CSR now, emailed to the contact.
import { parseArgs } from "node:util";
import { startRenewal } from "../core/renewal.js";
import { CreddError } from "../errors.js";
import { liveCertificate } from "../store/certificates.js";
import { pendingRenewal, setRenewalState } from "../store/renewals.js";
import { buildCtx, requireCredential } from "./context.js";
import type { Globals, Io } from "./io.js";
import { sendNow } from "./send-now.js";

export const ENROLL_HELP = `usage: credd enroll NAME [--no-send]
       credd renew NAME [--force] [--no-send]

enroll  makes the first key and CSR for a credential that has no certificate yet.
renew   starts a renewal now, even if it is not due (a person asked, so the
        one-new-CSR-a-day limit does not apply).

Both write archive/key-N.pem (0600) and archive/csr-N.pem under
state_dir/credentials/NAME/, queue the CSR email to stellantis.contact (ops in
copy) and try to send it at once. If SMTP is down or slow it stays queued for
\`credd run\`, which retries it. If the server refuses it for good (login
refused, its certificate not trusted, a 5xx reply, smtp.ca_file or
smtp.password_file unusable) the command fails with the reason and the fix;
the renewal and the email are kept, and the email goes out once that is fixed.

  --force     renew only: a renewal is already pending; set it aside (its key
              stays in archive/) and start over with a new key
  --no-send   queue the email but do not try SMTP now

exit: 0 started (email sent, or queued after a temporary SMTP failure), 1 refused
(state does not allow it) or the email refused for good by SMTP (it stays
queued), 2 usage`;

export async function cmdEnroll(kind: "enroll" | "renew", argv: string[], g: Globals, io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { force: { type: "boolean" }, "no-send": { type: "boolean" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
  });
  if (values.help) {
    io.out(ENROLL_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CreddError("USAGE", `${kind} takes one credential NAME\n\n${ENROLL_HELP}`);
  if (values.force && kind === "enroll") throw new CreddError("USAGE", "--force is for `credd renew`");
  const ctx = buildCtx(g.configPath);
  try {
    const cred = requireCredential(ctx.config, positionals[0]);
    const live = liveCertificate(ctx.db, cred.name);
    if (kind === "enroll" && live) {
      throw new CreddError(
        "STATE",
        `${cred.name} already has a live certificate (serial ${live.serial}, expires ${live.not_after}); use \`credd renew ${cred.name}\``,
      );
    }
    if (kind === "renew" && !live) {
      throw new CreddError("STATE", `${cred.name} has no certificate to renew yet; use \`credd enroll ${cred.name}\``);
    }
    const pending = pendingRenewal(ctx.db, cred.name);
    if (pending) {
      if (!values.force) {
        throw new CreddError(
          "STATE",
          `${cred.name}: renewal #${pending.id} is already ${pending.state} since ${pending.state_since} ` +
            `(CSR archive/csr-${pending.version}.pem); credd does not make a second key while one is pending. ` +
            (kind === "renew" ? `To give up on it and start over with a new key: credd renew ${cred.name} --force` : ""),
        );
      }
      setRenewalState(ctx.db, pending.id, "superseded", ctx.clock.now().toISOString());
      io.err(`renewal #${pending.id} set aside (its key stays in archive/key-${pending.version}.pem)`);
    }
    io.err(`generating ${cred.key.type === "rsa" ? `RSA ${cred.key.bits}` : `EC ${cred.key.curve}`} key and CSR for ${cred.mzp}...`);
    const r = await startRenewal(ctx, cred, {
      kind,
      forced: true,
      reason: kind === "enroll" ? "enrolled by a person (credd enroll)" : "renewal asked by a person (credd renew)",
    });
    io.out(`renewal #${r.renewalId} started for ${cred.name} (${cred.mzp})`);
    io.out(`  key  ${r.keyPath} (0600)`);
    io.out(`  csr  ${r.csrPath}`);
    io.out(`  mail to ${ctx.config.stellantis.contact}, cc ${ctx.config.alerts.to.join(", ")}, Message-ID ${r.messageId}`);
    // A refusal that retrying cannot cure is not "queued, will retry": the renewal is started (its
    // key and CSR are kept, the email stays in the outbox), but the command fails with the reason.
    if (!values["no-send"] && (await sendNow(ctx, r.outboxId, io, "the CSR email")) === "refused") return 1;
    return 0;
  } finally {
    ctx.db.close();
  }
}
