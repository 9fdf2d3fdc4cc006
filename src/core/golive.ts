// Making an archived certificate version live: the atomic live/ switch, bundle.p12, the database, deploy hooks.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { readSecretFile } from "../config/load.js";
import type { CredentialConfig } from "../config/types.js";
import { CreddError } from "../errors.js";
import { runHooks, type HookResult } from "../files/hooks.js";
import { writeFileAtomic } from "../files/atomic.js";
import { credentialPaths, type CredentialPaths } from "../files/layout.js";
import { liveVersion, switchLive } from "../files/live.js";
import { splitPemCertificates } from "../pki/pem.js";
import { buildPkcs12 } from "../pki/pkcs12.js";
import { removeTokenFiles } from "../oauth/token-files.js";
import { tokensOf } from "./tokens-of.js";
import type { Ctx } from "./context.js";
import { crashPoint } from "./crash.js";
import { readFileFor } from "../files/file-errors.js";
import type { CertificateRow } from "../store/store.js";
import { hostNameOf } from "../host.js";

export interface GoLiveResult {
  version: number;
  serial: string;
  hooks: HookResult[];
}

function readArchived(path: string, what: string): string {
  return readFileFor(
    path,
    { what, fix: "archive/ under state_dir keeps every version and must not be edited by hand; restore it from a backup of state_dir" },
    "utf8",
  );
}

/** Writes live/ for `version` from archive/ (plus bundle.p12 when a PKCS#12 password is configured). */
export async function switchToVersion(ctx: Ctx, cred: CredentialConfig, version: number): Promise<void> {
  const paths = credentialPaths(ctx.config.state_dir, cred.name);
  const keyPem = readArchived(paths.key(version), "key");
  const certPem = readArchived(paths.cert(version), "certificate");
  const chainPem = readArchived(paths.chain(version), "chain");
  let p12: Buffer | undefined;
  if (cred.pkcs12_password_file) {
    const password = readSecretFile(cred.pkcs12_password_file, `credentials[${cred.name}].pkcs12_password_file`);
    p12 = await buildPkcs12({
      keyPem,
      certPem,
      chainPems: splitPemCertificates(chainPem),
      password,
      friendlyName: cred.mzp,
    });
  }
  switchLive(paths, version, { keyPem, certPem, chainPem, ...(p12 ? { pkcs12: p12 } : {}) });
}

/**
 * Puts `version` live: live/ first (one rename), then the database, then the hooks. A crash between
 * the rename and the database is finished by reconcile() at the next start: disk is the truth.
 */
export async function goLive(
  ctx: Ctx,
  cred: CredentialConfig,
  version: number,
  why: string,
  /** Runs after the switch, before the hooks; by default an OAuth2 credential gets a token with the new certificate. */
  beforeHooks?: () => void | Promise<void>,
): Promise<GoLiveResult> {
  const row = await ctx.store.certificateByVersion(cred.name, version);
  if (!row) throw new CreddError("STATE", `${cred.name}: no certificate version ${version} in the database`);
  // A shared store: install only while this host still leads (docs/shared-store.md).
  await ctx.fence?.();
  // Already switched (a resumed install): rewriting .live-N in place would leave readers a gap.
  const paths = credentialPaths(ctx.config.state_dir, cred.name);
  const switched = liveVersion(paths) !== version;
  // A shared store: the switch owes its hooks until they ran, as a follower's does (follow.ts): a
  // crash from here to the end of the hooks leaves the marker, and this host's next follow tick runs
  // them (the store may say live by then, another host having finished the go-live). SQLite: as before.
  const owesHooks = switched && ctx.config.store !== "sqlite";
  if (owesHooks) writeFileAtomic(hooksPendingFile(paths), `${version}\n`, 0o600);
  if (switched) await switchToVersion(ctx, cred, version);
  crashPoint("after-switch");
  const recorded = await markLiveInDb(ctx, row);
  crashPoint("after-db-live");
  // Another host put it live and this host's live/ was already on it (its follow ran the hooks): nothing left to do.
  if (!recorded && !switched) return { version, serial: row.serial, hooks: [] };
  ctx.log.info({ credential: cred.name, event: "certificate-live", version, serial: row.serial, notAfter: row.not_after, why }, "certificate live");
  if (beforeHooks) await beforeHooks();
  else if (cred.oauth) await freshToken(ctx, cred, version);
  const hooks = await runDeployHooks(ctx, cred, row);
  if (owesHooks) clearHooksPending(paths, version);
  return { version, serial: row.serial, hooks };
}

/** state_dir/credentials/NAME/hooks-pending: the version whose live/ switch still owes its deploy hooks on this host (shared store). */
export function hooksPendingFile(paths: CredentialPaths): string {
  return join(paths.root, "hooks-pending");
}

export function pendingHooksVersion(file: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const n = Number(text.trim());
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** The hooks of `version`'s switch have run: the marker goes, unless it names another version. */
export function clearHooksPending(paths: CredentialPaths, version: number): void {
  const file = hooksPendingFile(paths);
  if (pendingHooksVersion(file) === version) rmSync(file, { force: true });
}

/**
 * Records `row` live (and its renewal done) in one transaction that first re-reads, locked, what it
 * is about to change (lockForGoLive): when another host already made this version live and closed
 * its renewal (two leaders in quick succession, docs/shared-store.md), it changes nothing, logs it,
 * and returns false. True when this call recorded it.
 */
export async function markLiveInDb(ctx: Ctx, row: CertificateRow): Promise<boolean> {
  const at = ctx.clock.now().toISOString();
  return await ctx.store.tx(async (s) => {
    const now = await s.lockForGoLive(row.credential, row.renewal_id);
    if (now.live_version === row.version && (row.renewal_id === null || now.renewal_state === "live")) {
      ctx.log.info(
        { credential: row.credential, event: "go-live-already-recorded", version: row.version },
        "certificate already recorded live (by another host or an earlier run): nothing changed",
      );
      return false;
    }
    await s.makeLive(row.credential, row.version, at);
    if (row.renewal_id !== null) await s.setRenewalState(row.renewal_id, "live", at);
    return true;
  });
}

/** Runs the credential's deploy hooks and records each; a failed hook never rolls back a good certificate. */
export async function runDeployHooks(ctx: Ctx, cred: CredentialConfig, row: CertificateRow): Promise<HookResult[]> {
  if (cred.deploy_hooks.length === 0) return [];
  const paths = credentialPaths(ctx.config.state_dir, cred.name);
  const startedAt = ctx.clock.now().toISOString();
  const results = await runHooks(cred.deploy_hooks, {
    credential: cred.name,
    liveDir: paths.live,
    serial: row.serial,
    version: row.version,
    notAfter: row.not_after,
  });
  for (const r of results) {
    await ctx.store.recordHookRun({
      credential: cred.name,
      version: row.version,
      serial: row.serial,
      argv_json: JSON.stringify(r.argv),
      ok: r.ok ? 1 : 0,
      exit_code: r.exitCode,
      signal: r.signal,
      duration_ms: Math.round(r.durationMs),
      error: r.error ?? null,
      output: r.output,
      started_at: startedAt,
    });
    const fields = {
      credential: cred.name,
      argv: r.argv,
      exitCode: r.exitCode,
      durationMs: Math.round(r.durationMs),
      // On a shared store every host runs the hooks when its live/ switches: say which one.
      ...(ctx.leadership ? { host: hostNameOf(), version: row.version } : {}),
    };
    if (r.ok) ctx.log.info({ ...fields, event: "deploy-hook-done" }, "deploy hook done");
    else ctx.log.error({ ...fields, event: "deploy-hook-failed", err: r.error ?? `exit ${r.exitCode ?? r.signal}` }, "deploy hook failed");
  }
  return results;
}

/** Tokens may be bound to the certificate (RFC 8705): drop the old one and fetch one with the new certificate. */
export async function freshToken(ctx: Ctx, cred: CredentialConfig, version: number): Promise<void> {
  removeTokenFiles(ctx.config.runtime_dir, cred.name);
  await ctx.store.forgetToken(cred.name);
  try {
    await tokensOf(ctx).fetchWith(cred, version, "new certificate live");
  } catch {
    /* recorded; the daemon retries with backoff */
  }
}
