// On a shared store (docs/shared-store.md), every host keeps its own disk in step with the store at
// each check tick: the archive/ files of the live version and of a pending renewal (key unsealed
// with the key-encryption key, 0600), and live/ switched to the store's live version with the same
// code a go-live uses (switchToVersion: one writer of live/). The leader does it too, before it
// acts, so a host that takes over has the keys the renewal it continues needs. A switch runs the
// credential's deploy hooks on this host, as the go-live did on the host that made the version live.
import { createPrivateKey } from "node:crypto";
import { existsSync, readFileSync, renameSync, rmSync } from "node:fs";
import type { CredentialConfig } from "../config/types.js";
import { CreddError, errorMessage } from "../errors.js";
import { writeFileAtomic } from "../files/atomic.js";
import { credentialPaths, ensureCredentialDirs, type CredentialPaths } from "../files/layout.js";
import { liveVersion } from "../files/live.js";
import type { CertificateRow } from "../store/store.js";
import type { Ctx } from "./context.js";
import { setNotFollowed } from "./follow-state.js";
import { freshToken, hooksPendingFile, pendingHooksVersion, runDeployHooks, switchToVersion } from "./golive.js";
import { hostNameOf } from "../host.js";
import { spkiSha256 } from "../pki/keys.js";

export interface FollowResult {
  /** Credentials whose live/ was switched to the store's live version, as "NAME vN". */
  switched: string[];
  /** Credentials this host could not bring in line with the store, by name: why. */
  failed: Map<string, string>;
}

/**
 * Brings this host's archive/ and live/ in line with the store, for every configured credential.
 * One credential's failure (a key the store lacks, a wrong key-encryption key, a full disk) is
 * logged and reported in `failed`, and never stops the others.
 */
export async function followStore(ctx: Ctx): Promise<FollowResult> {
  const out: FollowResult = { switched: [], failed: new Map() };
  setNotFollowed(ctx, out.failed);
  for (const cred of ctx.config.credentials) {
    try {
      const switched = await followOne(ctx, cred);
      if (switched !== undefined) out.switched.push(`${cred.name} v${switched}`);
    } catch (err) {
      const msg = errorMessage(err);
      out.failed.set(cred.name, msg);
      ctx.log.error({ credential: cred.name, event: "follow-failed", err: msg }, "cannot bring archive/ and live/ in line with the shared store");
    }
  }
  return out;
}

/** One credential: the archive files the store's state needs, and live/ on its live version (returned when switched). */
async function followOne(ctx: Ctx, cred: CredentialConfig): Promise<number | undefined> {
  const paths = credentialPaths(ctx.config.state_dir, cred.name);
  const pending = await ctx.store.pendingRenewal(cred.name);
  // Once signed, the renewal's certificate and chain too: the next leader probes with them and puts them live.
  if (pending) {
    const parts: Part[] = pending.state === "signed" || pending.state === "registered" ? ["key", "csr", "cert", "chain"] : ["key", "csr"];
    await fetchArchive(ctx, cred, paths, pending.version, parts, pending.spki_sha256);
  }
  const live = await ctx.store.liveCertificate(cred.name);
  if (!live) return undefined;
  const marker = hooksPendingFile(paths);
  if (liveVersion(paths) === live.version) {
    // Switched before a crash or stop, hooks not (all) run: run them now, once.
    if (pendingHooksVersion(marker) === live.version) await afterSwitch(ctx, cred, live, marker);
    return undefined;
  }
  await fetchArchive(ctx, cred, paths, live.version, ["key", "cert", "chain"], live.spki_sha256);
  // Written before the switch, removed once the hooks ran: a crash in between runs them at the next tick.
  writeFileAtomic(marker, `${live.version}\n`, 0o600);
  await switchToVersion(ctx, cred, live.version);
  ctx.log.info(
    { credential: cred.name, event: "live-materialised", version: live.version, host: hostNameOf() },
    "live/ switched to the store's live version",
  );
  await afterSwitch(ctx, cred, live, marker);
  return live.version;
}

/**
 * What a go-live does after its switch (golive.ts), on this host: a token with the new certificate
 * (OAuth2), then the deploy hooks, recorded and logged the same way (a failed hook is logged and
 * alerted on, never undone). Once per switch: the marker file says which version still owes them.
 */
async function afterSwitch(ctx: Ctx, cred: CredentialConfig, live: CertificateRow, marker: string): Promise<void> {
  if (cred.oauth) await freshToken(ctx, cred, live.version);
  await runDeployHooks(ctx, cred, live);
  rmSync(marker, { force: true });
}

type Part = "key" | "csr" | "cert" | "chain";

/** Moves archive/'s key-N.pem (and csr-N.pem) to `*.unused-TIME` when it is not the key pair `spki` names. */
function setAsideOtherKey(ctx: Ctx, cred: CredentialConfig, paths: CredentialPaths, version: number, spki: string): void {
  const keyPath = paths.key(version);
  if (!existsSync(keyPath)) return;
  if (spkiSha256(createPrivateKey(readFileSync(keyPath))).toLowerCase() === spki.toLowerCase()) return;
  const suffix = `.unused-${ctx.clock.now().getTime()}`;
  renameSync(keyPath, keyPath + suffix);
  if (existsSync(paths.csr(version))) renameSync(paths.csr(version), paths.csr(version) + suffix);
  ctx.log.warn(
    { credential: cred.name, event: "unused-key-set-aside", version, file: keyPath + suffix },
    "archive/ held a key for this version that the shared store does not know (this host was stopped while making it): kept aside, the store's key is used",
  );
}
const MODE: Record<Part, number> = { key: 0o600, csr: 0o644, cert: 0o644, chain: 0o644 };

/**
 * The live version's key, certificate and chain in archive/, from the store when missing: the
 * proxy calls it when the store's live version is newer than this host's last follow, so that it
 * never reads files the next tick would only write. The same writer as the tick's (atomic renames).
 */
export async function fetchLiveArchive(ctx: Ctx, cred: CredentialConfig, version: number, spki: string): Promise<void> {
  // With the store's key fingerprint, as the tick does: a key this host made for `version` and
  // never recorded (another host made that version) is moved aside, not served with its certificate.
  await fetchArchive(ctx, cred, credentialPaths(ctx.config.state_dir, cred.name), version, ["key", "cert", "chain"], spki);
}

/**
 * Writes the parts of `version` that archive/ lacks, from the store; a part the store lacks is an
 * error. With `spki` (the store's key for that version), a key file of another key pair is moved
 * aside first, with its CSR: this host was killed after making a key for `version` and before
 * recording it, and another host then made that version with its own key (the store is the truth).
 */
async function fetchArchive(ctx: Ctx, cred: CredentialConfig, paths: CredentialPaths, version: number, parts: Part[], spki?: string): Promise<void> {
  if (spki !== undefined && parts.includes("key")) setAsideOtherKey(ctx, cred, paths, version, spki);
  const missing = parts.filter((p) => !existsSync(paths[p](version)));
  if (missing.length === 0) return;
  // A wrong key-encryption key throws here (keywrap.ts: a STATE error naming the files): loud, never a re-enrollment.
  const stored = await ctx.store.getArchive(cred.name, version);
  const lacking = missing.filter((p) => stored?.[p] === undefined);
  if (lacking.length > 0) {
    throw new CreddError(
      "STATE",
      `${cred.name}: version ${version} has no ${lacking.join(", ")} in archive/ nor in the shared store (made by a host before credd stored them there); credd does not re-enroll by itself (fix: copy ${paths.archive} from the host that made it)`,
    );
  }
  ensureCredentialDirs(paths);
  for (const p of missing) writeFileAtomic(paths[p](version), stored![p]!, MODE[p]);
}
