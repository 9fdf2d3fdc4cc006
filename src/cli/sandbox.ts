// `credd sandbox`: runs the development sandbox (sandbox/ of a clone, with tsx from the dev
// dependencies) when this credd runs from a clone. The build and the installed credd hold none of it:
// anywhere else the command says where the sandbox lives and exits 1.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CreddError } from "../errors.js";
import type { Parsed } from "./args.js";
import type { Globals, Io } from "./io.js";

export const LOADER_HELP = `Runs the development sandbox (a local stand-in for Stellantis: SMTP, CA, IDP
and API on 127.0.0.1) from a clone of credd, until Ctrl-C. It lives in sandbox/
of the clone and needs the dev dependencies; an installed credd has none of it.
The same as \`npm run sandbox -- [OPTIONS]\` (docs/sandbox.md).

  --dir DIR                where everything goes (default ./credd-sandbox)
  --accept-all             the IDP accepts every certificate of its CA at once
  --sign-delay SECONDS     how long the CA takes to sign a CSR (default 5)
  --bind-delay SECONDS     how long the IDP takes to bind a certificate (default 5)
  --validity-days N        validity of the certificates it signs (default 365)
  --token-lifetime SECONDS expires_in of its tokens (default 3600)

exit: 0 stopped (Ctrl-C or SIGTERM), 1 could not start (or not a clone), 2 usage`;

export const NO_SANDBOX = "the sandbox is a development tool: in a clone of credd run `npm ci`, then `npm run sandbox`";

/** sandbox/command.ts as this loader sees it (nothing in src/ may import sandbox/, not even its types). */
interface SandboxModule {
  sandboxCommand(argv: string[], io: Io): Promise<number>;
}

/** The checkout's sandbox entry, beside src/ and dist/ (this file runs as dist/cli/ or src/cli/). */
const ENTRY = new URL("../../sandbox/command.ts", import.meta.url);

export async function cmdSandbox(p: Parsed, _g: Globals, io: Io): Promise<number> {
  if (!existsSync(fileURLToPath(ENTRY))) throw new CreddError("STATE", NO_SANDBOX);
  // tsx is a dev dependency: a clone after `npm ci` has it, a pruned install does not.
  let tsx: typeof import("tsx/esm/api");
  try {
    tsx = await import("tsx/esm/api");
  } catch (err) {
    throw new CreddError("STATE", `${NO_SANDBOX} (tsx: ${(err as Error).message.split("\n")[0]})`, { cause: err });
  }
  const sandbox = (await tsx.tsImport(ENTRY.href, import.meta.url)) as SandboxModule;
  return sandbox.sandboxCommand(p.raw, io);
}
