// One TokenManager per context, made on first use, so single-flight holds across the daemon's callers.
import type { Ctx } from "./context.js";
import { TokenManager } from "./tokens.js";

const managers = new WeakMap<Ctx, TokenManager>();

export function tokensOf(ctx: Ctx): TokenManager {
  let m = managers.get(ctx);
  if (!m) {
    m = new TokenManager(ctx);
    managers.set(ctx, m);
  }
  return m;
}
