// `credd enroll NAME` / `credd renew NAME [--force]`: a new key and CSR now, emailed to the contact.
import { startRenewal } from "../core/renewal.js";
import { CreddError } from "../errors.js";
import type { Parsed } from "./args.js";
import { buildCtx, requireCredential } from "./context.js";
import { when } from "./format.js";
import type { Globals, Io } from "./io.js";
import { sendNow } from "./send-now.js";

const BOTH = `Writes archive/key-N.pem (0600) and archive/csr-N.pem under
state_dir/credentials/NAME/, queues the CSR email to stellantis.contact (ops in
copy) and tries to send it at once. If SMTP is down or slow it stays queued for
\`credd run\`, which retries it. If the server refuses it for good (login
refused, its certificate not trusted, a 5xx reply, smtp.ca_file or
smtp.password_file unusable) the command fails with the reason and the fix;
the renewal and the email are kept, and the email goes out once that is fixed.`;

export const ENROLL_HELP = `Makes the first key and CSR for a credential that has no certificate yet.
${BOTH}

  --no-send   queue the email but do not try SMTP now

exit: 0 started (email sent, or queued after a temporary SMTP failure), 1 refused
(state does not allow it) or the email refused for good by SMTP (it stays
queued), 2 usage`;

export const RENEW_HELP = `Starts a renewal now, even if it is not due (a person asked, so the
one-new-CSR-a-day limit does not apply).
${BOTH}

  --force     a renewal is already pending: set it aside (its key stays in
              archive/) and start over with a new key. Not the fix for a
              certificate awaiting IDP registration: that one is signed and
              waits for Stellantis to bind it; a new key needs a new signature
              and a new binding
  --no-send   queue the email but do not try SMTP now

exit: 0 started (email sent or queued), 1 refused (state does not allow it, or
the mail server refused the email for good), 2 usage`;

export async function cmdEnroll(kind: "enroll" | "renew", p: Parsed, g: Globals, io: Io): Promise<number> {
  const force = p.flags.has("force");
  const ctx = await buildCtx(g.configPath);
  try {
    const cred = requireCredential(ctx.config, p.args[0]);
    const live = await ctx.store.liveCertificate(cred.name);
    if (kind === "enroll" && live) {
      throw new CreddError(
        "STATE",
        `${cred.name} already has a live certificate (serial ${live.serial}, expires ${when(live.not_after)}); use \`credd renew ${cred.name}\``,
      );
    }
    if (kind === "renew" && !live) {
      throw new CreddError("STATE", `${cred.name} has no certificate to renew yet; use \`credd enroll ${cred.name}\``);
    }
    const pending = await ctx.store.pendingRenewal(cred.name);
    if (pending) {
      if (!force) {
        // A signed certificate waiting for Stellantis to bind it needs their action, not a new key.
        const awaiting = pending.state === "signed" && !!cred.oauth;
        const next = awaiting
          ? `Its certificate is signed and waits for Stellantis to bind it to the OAuth2 client (it was emailed to ` +
            `${ctx.config.stellantis.contact}); \`credd status ${cred.name}\` shows when credd probes again. A new key would need a new signature and a new binding.`
          : kind === "renew"
            ? `To give up on it and start over with a new key: credd renew ${cred.name} --force`
            : `\`credd status ${cred.name}\` shows where it stands.`;
        throw new CreddError(
          "STATE",
          `${cred.name}: renewal #${pending.id} is already ${awaiting ? "awaiting IDP registration" : pending.state} since ${when(pending.state_since)} ` +
            `(CSR archive/csr-${pending.version}.pem); credd does not make a second key while one is pending. ${next}`,
        );
      }
      await ctx.store.setRenewalState(pending.id, "superseded", ctx.clock.now().toISOString());
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
    if (!p.flags.has("no-send") && (await sendNow(ctx, r.outboxId, io, "the CSR email")) === "refused") return 1;
    return 0;
  } finally {
    await ctx.store.close();
  }
}
