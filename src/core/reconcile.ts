// Brings the database and live/ back in step after a crash: finishes a go-live, or follows the disk.
import type { CredentialConfig } from "../config/types.js";
import { credentialPaths } from "../files/layout.js";
import { liveVersion } from "../files/live.js";
import type { Ctx } from "./context.js";

/** Only a crash leaves anything to do here: go-live's code (PKCS#12, hooks) is loaded then. */
const golive = () => import("./golive.js");

/**
 * live/ is switched before the database is told (goLive), so after a crash:
 * - a renewal left `signed` with live/ already on its version: record it live and run the hooks;
 * - a renewal left `signed` with live/ still on the old version: go live now;
 * - live/ on a version the database does not call live: the database follows the disk (the pair on disk is
 *   whole), on SQLite only: on a shared store the store is the truth and followStore moves live/ to it;
 * - live/ missing while the database has a live version: write live/ again from archive/.
 */
export async function reconcile(ctx: Ctx, cred: CredentialConfig): Promise<string | undefined> {
  const paths = credentialPaths(ctx.config.state_dir, cred.name);
  const onDisk = liveVersion(paths);
  const pending = await ctx.store.pendingRenewal(cred.name);
  // An OAuth2 credential's `signed` renewal waits for the IDP (registration.ts); `registered` is accepted.
  if (pending && (pending.state === "registered" || (pending.state === "signed" && !cred.oauth))) {
    const row = await ctx.store.certificateByVersion(cred.name, pending.version);
    if (row) {
      const { clearHooksPending, goLive, markLiveInDb, runDeployHooks } = await golive();
      if (onDisk === row.version) {
        await markLiveInDb(ctx, row);
        await runDeployHooks(ctx, cred, row);
        // A shared store: the interrupted go-live's marker (golive.ts) is settled, the follow tick must not run them again.
        clearHooksPending(paths, row.version);
        return logged(ctx, cred, `renewal #${pending.id}: live/ was switched before a stop; recorded it live`);
      }
      await goLive(ctx, cred, row.version, "resumed after an interrupted install");
      return logged(ctx, cred, `renewal #${pending.id}: finished its interrupted go-live`);
    }
  }
  const dbLive = await ctx.store.liveCertificate(cred.name);
  // On a shared store the store is the truth (followStore brings live/ to it): a host whose disk is
  // behind (its follow failed, or has not run yet) must not roll the store back for every host.
  if (ctx.config.store === "sqlite" && onDisk !== undefined && dbLive?.version !== onDisk) {
    const row = await ctx.store.certificateByVersion(cred.name, onDisk);
    if (row) {
      await (await golive()).markLiveInDb(ctx, row);
      return logged(ctx, cred, `live/ holds version ${onDisk}; the database now says so too`);
    }
  }
  if (onDisk === undefined && dbLive) {
    await (await golive()).switchToVersion(ctx, cred, dbLive.version);
    return logged(ctx, cred, `live/ was missing; rewrote it from archive/ version ${dbLive.version}`);
  }
  return undefined;
}

function logged(ctx: Ctx, cred: CredentialConfig, what: string): string {
  ctx.log.warn({ credential: cred.name }, what);
  return what;
}
