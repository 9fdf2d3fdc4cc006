// Starting a renewal (key + CSR, stored, email queued) and queueing its reminders.
import type { CredentialConfig } from "../config/types.js";
import { CreddError, errorMessage } from "../errors.js";
import { writeFileAtomic } from "../files/atomic.js";
import { credentialPaths, ensureCredentialDirs, maxArchiveVersion } from "../files/layout.js";
import { composeCsrMail } from "../mail/compose.js";
import { createCsr } from "../pki/csr.js";
import { exportPrivateKeyPem, generateKeyPair } from "../pki/keys.js";
import type { Ctx } from "./context.js";
import { crashPoint } from "./crash.js";
import { readFileFor } from "../files/file-errors.js";
import type { RenewalRow } from "../store/store.js";

export interface StartedRenewal {
  renewalId: number;
  version: number;
  keyPath: string;
  csrPath: string;
  outboxId: number;
  messageId: string;
}

export interface StartOptions {
  kind: "enroll" | "renew";
  forced: boolean;
  reason: string;
}

/**
 * Makes the key and CSR, writes both to archive/ (key 0600, fsync'd) and only then records the
 * renewal and queues the email in one transaction: nothing leaves the host before the key is safe.
 */
export async function startRenewal(ctx: Ctx, cred: CredentialConfig, opts: StartOptions): Promise<StartedRenewal> {
  const existing = await ctx.store.pendingRenewal(cred.name);
  if (existing) {
    throw new CreddError(
      "STATE",
      `${cred.name}: renewal #${existing.id} is already ${existing.state} since ${existing.state_since}; ` +
        "credd never makes a second key while one is pending (its CSR is re-sent as a reminder)",
    );
  }
  // A shared store: make a key and queue its CSR only while this host still leads.
  await ctx.fence?.();
  const paths = credentialPaths(ctx.config.state_dir, cred.name);
  ensureCredentialDirs(paths);

  const keys = await generateKeyPair(cred.key);
  const keyPem = exportPrivateKeyPem(keys);
  const csr = await createCsr(keys, cred.key, cred.dn);

  // The key file claims its version: created exclusively, so a second process starting a renewal
  // at the same moment takes the next number instead of overwriting this key.
  let version = Math.max(await ctx.store.maxVersion(cred.name), maxArchiveVersion(paths)) + 1;
  for (;;) {
    try {
      writeFileAtomic(paths.key(version), keyPem, 0o600, { exclusive: true });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      version++;
    }
  }
  const keyPath = paths.key(version);
  const csrPath = paths.csr(version);
  crashPoint("renewal-after-key");
  writeFileAtomic(csrPath, csr.pem, 0o644);
  crashPoint("renewal-after-csr");

  const now = ctx.clock.now();
  const live = await ctx.store.liveCertificate(cred.name);
  const mail = composeCsrMail({
    config: ctx.config,
    cred,
    csrPem: csr.pem,
    kind: opts.kind,
    ...(live ? { current: { serial: live.serial, notAfter: live.not_after } } : {}),
    reminder: 0,
  });
  const record = () =>
    ctx.store.tx(async (s) => {
      // A shared store keeps the key (sealed) and CSR with the renewal row, so another host can
      // take over this renewal (docs/shared-store.md); nothing on SQLite, where archive/ is the copy.
      await s.putArchive(cred.name, version, { key: keyPem, csr: csr.pem });
      const renewalId = await s.insertRenewal({
        credential: cred.name,
        version,
        kind: opts.kind,
        forced: opts.forced ? 1 : 0,
        reason: opts.reason,
        spki_sha256: csr.spkiSha256,
        key_type: cred.key.type === "rsa" ? `rsa-${cred.key.bits}` : `ec-${cred.key.curve}`,
        created_at: now.toISOString(),
      });
      const outboxId = await s.enqueueMail({ mail, kind: "csr", credential: cred.name, renewalId, now });
      return { renewalId, outboxId };
    });
  let ids: { renewalId: number; outboxId: number };
  try {
    ids = await record();
  } catch (err) {
    // Another process recorded a renewal between our check and our insert; its key stands, ours stays archived.
    if (/UNIQUE constraint failed: renewals\.credential/.test(errorMessage(err))) {
      const other = await ctx.store.pendingRenewal(cred.name);
      throw new CreddError(
        "STATE",
        `${cred.name}: another process started renewal #${other?.id ?? "?"} at the same moment; credd never makes a second key while one is pending (this one's unused key stays in ${keyPath})`,
        { cause: err },
      );
    }
    throw err;
  }
  crashPoint("renewal-after-db");
  ctx.log.info(
    { credential: cred.name, event: "renewal-started", renewal: ids.renewalId, version, kind: opts.kind, reason: opts.reason, csr: csrPath },
    "renewal started: key and CSR stored, CSR email queued",
  );
  return { ...ids, version, keyPath, csrPath, messageId: mail.messageId };
}

/** Queues the same CSR again to the contact, with a reminder subject and a new Message-ID. */
export async function queueReminder(ctx: Ctx, cred: CredentialConfig, renewal: RenewalRow): Promise<number> {
  const paths = credentialPaths(ctx.config.state_dir, cred.name);
  const csrPem = readFileFor(
    paths.csr(renewal.version),
    {
      what: `the CSR of renewal #${renewal.id} (to send the reminder)`,
      fix: `restore archive/ from a backup of state_dir, or start over with credd renew ${cred.name} --force`,
    },
    "utf8",
  );
  const live = await ctx.store.liveCertificate(cred.name);
  const now = ctx.clock.now();
  const n = renewal.remind_count + 1;
  const mail = composeCsrMail({
    config: ctx.config,
    cred,
    csrPem,
    kind: renewal.kind,
    ...(live && renewal.kind === "renew" ? { current: { serial: live.serial, notAfter: live.not_after } } : {}),
    reminder: n,
    ...(renewal.sent_at ? { firstSentAt: renewal.sent_at } : {}),
  });
  const id = await ctx.store.tx(async (s) => {
    await s.markReminded(renewal.id, now.toISOString());
    return await s.enqueueMail({ mail, kind: "csr-reminder", credential: cred.name, renewalId: renewal.id, now });
  });
  ctx.log.info({ credential: cred.name, event: "csr-reminder", renewal: renewal.id, reminder: n }, "CSR reminder queued");
  return id;
}
