// `credd token NAME [--json]`: print a valid access token for scripts, fetching one if none is valid.
import { parseArgs } from "node:util";
import { errorMessage, CreddError } from "../errors.js";
import { tokensOf } from "../oauth/tokens-of.js";
import { getToken } from "../store/tokens.js";
import { buildCtx, requireCredential } from "./context.js";
import type { Globals, Io } from "./io.js";

export const TOKEN_HELP = `usage: credd token NAME [--json]

Prints the current OAuth2 access token of NAME (the bare token, or with --json
the token, type, scope, obtained_at and expires_at), for scripts:

  curl -H "Authorization: Bearer $(credd token fleet-prod)" ...

When the token in runtime_dir is missing or expires within 30 s, credd asks the
token endpoint with the live certificate; concurrent callers share one request.

exit: 0 printed, 1 no valid token (the reason is on stderr), 2 usage`;

/** A token this close to expiry is not handed out: the caller would get a 401 mid-request. */
const MIN_LEFT_MS = 30_000;

export async function cmdToken(argv: string[], g: Globals, io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
  });
  if (values.help) {
    io.out(TOKEN_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CreddError("USAGE", `token takes one credential NAME\n\n${TOKEN_HELP}`);
  const ctx = buildCtx(g.configPath);
  try {
    const cred = requireCredential(ctx.config, positionals[0]);
    if (!cred.oauth) {
      throw new CreddError("STATE", `${cred.name} has no oauth settings${cred.basic_auth ? " (it uses Basic auth: no token)" : ""}`);
    }
    const tokens = tokensOf(ctx);
    let t = tokens.current(cred);
    const seen = { obtainedAt: t?.obtained_at ?? null };
    if (!t || Date.parse(t.expires_at) - ctx.clock.now().getTime() < MIN_LEFT_MS) {
      try {
        t = await tokens.fetch(cred, "asked by credd token", { reuseOtherThan: seen });
      } catch (err) {
        const row = getToken(ctx.db, cred.name);
        io.err(`credd: no valid token for ${cred.name}: ${errorMessage(err)}`);
        if (row?.next_attempt_at) io.err(`the daemon retries at ${row.next_attempt_at}`);
        return 1;
      }
    }
    io.out(values.json ? JSON.stringify(t, null, 2) : t.token);
    return 0;
  } finally {
    ctx.db.close();
  }
}
