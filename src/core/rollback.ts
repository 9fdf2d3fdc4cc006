// `rollback`: the previous live version back, from archive/, refusing an expired one.
import type { CredentialConfig } from "../config/types.js";
import { CreddError } from "../errors.js";
import type { Ctx } from "./context.js";
import { goLive, type GoLiveResult } from "./golive.js";

export async function rollback(ctx: Ctx, cred: CredentialConfig): Promise<GoLiveResult & { from: string }> {
  const live = await ctx.store.liveCertificate(cred.name);
  if (!live) throw new CreddError("STATE", `${cred.name} has no live certificate, so there is nothing to roll back from`);
  const prev = await ctx.store.previousCertificate(cred.name);
  if (!prev) {
    throw new CreddError("STATE", `${cred.name}: certificate ${live.serial} is the only one that has been live; there is no previous version`);
  }
  const now = ctx.clock.now();
  if (new Date(prev.not_after).getTime() <= now.getTime()) {
    throw new CreddError(
      "REFUSED",
      `${cred.name}: the previous certificate ${prev.serial} (version ${prev.version}) expired on ${prev.not_after}; rolling back to it would break the API access`,
    );
  }
  const r = await goLive(ctx, cred, prev.version, `rollback from ${live.serial}`);
  return { ...r, from: live.serial };
}
