// What the last followStore (follow.ts) on a context could not follow, by credential name: checkAll
// (the leader's check, right after it) skips those, since acting on a disk behind the shared store
// could undo the store (docs/shared-store.md). Kept beside the context, so the daemon's loop need not
// pass it on; a module of its own, so check.ts does not load follow.ts's go-live code.
import type { Ctx } from "./context.js";

const notFollowed = new WeakMap<Ctx, ReadonlyMap<string, string>>();

/** Records the credentials (name: why) that this follow left behind the store; the previous follow's are forgotten. */
export function setNotFollowed(ctx: Ctx, failed: ReadonlyMap<string, string>): void {
  notFollowed.set(ctx, failed);
}

/** Why `name` was not brought in line with the store at this host's last follow, or undefined. */
export function notFollowedReason(ctx: Ctx, name: string): string | undefined {
  return notFollowed.get(ctx)?.get(name);
}
