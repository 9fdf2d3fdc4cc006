// Staged go-live for OAuth2 credentials: a new certificate goes live once the IDP accepts it (seed step 5).
import type { CredentialConfig } from "../config/types.js";
import { credentialPaths } from "../files/layout.js";
import { probeBackoffMs } from "../domain/token-timing.js";
import { CreddError, errorMessage } from "../errors.js";
import { composeRegistrationMail } from "../mail/compose.js";
import { tokensOf } from "./tokens-of.js";
import { requestToken, TokenError } from "../oauth/token-client.js";
import { tlsForVersion } from "../oauth/tls-material.js";
import type { Ctx } from "./context.js";
import { goLive, type GoLiveResult } from "./golive.js";
import { readFileFor } from "../files/file-errors.js";
import type { RenewalRow } from "../store/store.js";

export type ProbeOutcome =
  | { state: "live"; live: GoLiveResult }
  | { state: "awaiting-registration"; reason: string; mailed: boolean }
  | { state: "forced-live"; live: GoLiveResult; reason: string };

/**
 * Asks the token endpoint for a token with the new certificate. Accepted: go live and keep that token.
 * Refused (invalid_client): email the certificate to the contact once, keep the old certificate live
 * while it is valid, and probe again with backoff. With no valid old certificate, go live anyway.
 */
export async function probeRegistration(ctx: Ctx, cred: CredentialConfig, renewal: RenewalRow): Promise<ProbeOutcome> {
  if (!cred.oauth) throw new CreddError("INTERNAL", `${cred.name}: no oauth, nothing to register`);
  const row = await ctx.store.certificateByVersion(cred.name, renewal.version);
  if (!row) throw new CreddError("STATE", `${cred.name}: renewal #${renewal.id} has no installed certificate`);
  // A shared store: call the IDP only while this host still leads (docs/shared-store.md).
  await ctx.fence?.();
  const started = ctx.clock.now();
  try {
    const resp = await requestToken(cred.oauth, tlsForVersion(ctx.config, cred, renewal.version), {
      timeoutMs: 30_000,
      now: () => ctx.clock.now(),
    });
    await ctx.store.setRenewalState(renewal.id, "registered", ctx.clock.now().toISOString());
    const live = await goLive(ctx, cred, renewal.version, "the IDP accepted the new certificate", async () => {
      // The old token may be bound to the old certificate (RFC 8705): replace it before the hooks run.
      await tokensOf(ctx).store(cred, renewal.version, resp, started);
    });
    return { state: "live", live };
  } catch (err) {
    const now = ctx.clock.now();
    const msg = errorMessage(err);
    const refused = err instanceof TokenError && !err.retryable;
    const fields = await ctx.store.probeFields(renewal.id);
    await ctx.store.recordProbeFailure(renewal.id, msg, new Date(now.getTime() + probeBackoffMs(fields.probe_attempts + 1)).toISOString());
    let mailed = false;
    if (refused && !fields.registration_mail_at) {
      const mail = composeRegistrationMail({
        config: ctx.config,
        cred,
        certPem: readFileFor(
          credentialPaths(ctx.config.state_dir, cred.name).cert(renewal.version),
          {
            what: `the new certificate of renewal #${renewal.id} (to email it for IDP registration)`,
            fix: "restore archive/ from a backup of state_dir, or ingest the signed certificate again",
          },
          "utf8",
        ),
        serial: row.serial,
        notBefore: row.not_before,
        notAfter: row.not_after,
        sha256: row.sha256,
      });
      await ctx.store.tx(async (s) => {
        await s.enqueueMail({ mail, kind: "registration", credential: cred.name, renewalId: renewal.id, now });
        await s.markRegistrationMailed(renewal.id, now.toISOString());
      });
      mailed = true;
      ctx.log.warn(
        { credential: cred.name, event: "idp-refused", renewal: renewal.id, serial: row.serial },
        "IDP refused the new certificate: emailed it to the contact for registration",
      );
    }
    const old = await ctx.store.liveCertificate(cred.name);
    if (!old || Date.parse(old.not_after) <= now.getTime()) {
      const reason = old
        ? `the old certificate ${old.serial} expired on ${old.not_after} before the IDP accepted the new one: going live anyway`
        : "no previous certificate: going live before the IDP accepts it";
      ctx.log.error({ credential: cred.name, renewal: renewal.id, err: msg }, reason);
      await ctx.store.setRenewalState(renewal.id, "registered", now.toISOString());
      const live = await goLive(ctx, cred, renewal.version, reason);
      return { state: "forced-live", live, reason };
    }
    const reason = refused ? `awaiting IDP registration: ${msg}` : `token endpoint unreachable while probing the new certificate: ${msg}`;
    ctx.log.info({ credential: cred.name, renewal: renewal.id, attempts: fields.probe_attempts + 1 }, reason);
    return { state: "awaiting-registration", reason, mailed };
  }
}

/** Is a probe due for this pending renewal now? */
export async function probeDue(ctx: Ctx, renewal: RenewalRow): Promise<boolean> {
  const f = await ctx.store.probeFields(renewal.id);
  return !f.next_probe_at || Date.parse(f.next_probe_at) <= ctx.clock.now().getTime();
}
