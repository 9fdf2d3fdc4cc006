// `credd rollback NAME`: make the previous certificate version live again.
import { rollback } from "../core/rollback.js";
import type { Parsed } from "./args.js";
import { buildCtx, requireCredential } from "./context.js";
import type { Globals, Io } from "./io.js";

export const ROLLBACK_HELP = `Makes the previous live certificate of NAME live again (from archive/, with one
atomic switch of live/), then runs the deploy hooks. Refused when that
certificate has expired, or when there is no previous one.

exit: 0 rolled back, 1 refused, 2 usage`;

export async function cmdRollback(p: Parsed, g: Globals, io: Io): Promise<number> {
  const ctx = await buildCtx(g.configPath);
  try {
    const cred = requireCredential(ctx.config, p.args[0]);
    const r = await rollback(ctx, cred);
    const failed = r.hooks.filter((h) => !h.ok).length;
    io.out(`${cred.name}: certificate ${r.serial} (version ${r.version}) is live again, replacing ${r.from}`);
    if (r.hooks.length) io.out(`deploy hooks: ${r.hooks.length - failed}/${r.hooks.length} ok`);
    return 0;
  } finally {
    await ctx.store.close();
  }
}
