// `credd token NAME [--json]`: print a valid access token for scripts, fetching one if none is valid.
import { clockFromEnv } from "../test-switches.js";
import { loadConfig } from "../config/load.js";
import type { Ctx } from "../core/context.js";
import { errorMessage, CreddError } from "../errors.js";
import { createLogger } from "../log.js";
import { makeMailerFactory } from "../mail/factory.js";
import { tokensOf } from "../core/tokens-of.js";
import type { TokenJson } from "../oauth/token-files.js";
import { openStoreForReading } from "../store/open.js";
import type { Parsed } from "./args.js";
import { buildCtx, requireCredential } from "./context.js";
import { when } from "./format.js";
import type { Globals, Io } from "./io.js";

export const TOKEN_HELP = `Prints the current OAuth2 access token of NAME (the bare token, or with --json
the token, type, scope, obtained_at and expires_at), for scripts:

  curl -H "Authorization: Bearer $(credd token fleet-prod)" ...

While the token in runtime_dir is valid for more than 30 s, credd only reads
(the database and the token files; nothing is created). Otherwise it asks the
token endpoint with the live certificate; concurrent callers share one request.

exit: 0 printed, 1 no valid token (the reason is on stderr), 2 usage`;

/** A token this close to expiry is not handed out: the caller would get a 401 mid-request. */
const MIN_LEFT_MS = 30_000;

export async function cmdToken(p: Parsed, g: Globals, io: Io): Promise<number> {
  const config = loadConfig(g.configPath);
  const cred = requireCredential(config, p.args[0]);
  if (!cred.oauth) {
    throw new CreddError("STATE", `${cred.name} has no oauth settings${cred.basic_auth ? " (it uses Basic auth: no token)" : ""}`);
  }
  const print = (t: TokenJson) => io.out(p.flags.has("json") ? JSON.stringify(t, null, 2) : t.token);
  const clock = clockFromEnv();
  const log = createLogger({ stream: "stderr", level: process.env.CREDD_LOG_LEVEL ?? "silent" });
  // Reading first: a valid token is printed without creating or writing anything.
  let seen: { obtainedAt: string | null };
  try {
    const ro = (await openStoreForReading(config)).store;
    try {
      const readCtx: Ctx = { config, store: ro, clock, log, mailer: makeMailerFactory(config) };
      const t = await tokensOf(readCtx).current(cred);
      if (t && Date.parse(t.expires_at) - clock.now().getTime() >= MIN_LEFT_MS) {
        print(t);
        return 0;
      }
      seen = { obtainedAt: t?.obtained_at ?? null };
    } finally {
      await ro.close();
    }
  } catch (err) {
    // No database: no live certificate to ask with, so nothing to fetch either.
    io.err(`credd: no valid token for ${cred.name}: ${errorMessage(err)}`);
    return 1;
  }
  const ctx = await buildCtx(g.configPath, { config, clock, log });
  try {
    let t: TokenJson;
    try {
      t = await tokensOf(ctx).fetch(cred, "asked by credd token", { reuseOtherThan: seen });
    } catch (err) {
      const row = await ctx.store.getToken(cred.name);
      io.err(`credd: no valid token for ${cred.name}: ${errorMessage(err)}`);
      if (row?.next_attempt_at) io.err(`the daemon retries at ${when(row.next_attempt_at)}`);
      return 1;
    }
    print(t);
    return 0;
  } finally {
    await ctx.store.close();
  }
}
