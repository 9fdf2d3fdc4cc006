// `credd sandbox`: runs the development sandbox (sandbox/ of a clone, with tsx from the dev
// dependencies) when this credd runs from a clone. The build and the installed credd hold none of it:
// anywhere else the command says where the sandbox lives and exits 1.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CreddError } from "../errors.js";
import type { Globals, Io } from "./io.js";

export const NO_SANDBOX = "the sandbox is a development tool: in a clone of credd run `npm ci`, then `npm run sandbox`";

/** sandbox/command.ts as this loader sees it (nothing in src/ may import sandbox/, not even its types). */
interface SandboxModule {
  sandboxCommand(argv: string[], io: Io): Promise<number>;
}

/** The checkout's sandbox entry, beside src/ and dist/ (this file runs as dist/cli/ or src/cli/). */
const ENTRY = new URL("../../sandbox/command.ts", import.meta.url);

export async function cmdSandbox(argv: string[], _g: Globals, io: Io): Promise<number> {
  if (!existsSync(fileURLToPath(ENTRY))) throw new CreddError("STATE", NO_SANDBOX);
  // tsx is a dev dependency: a clone after `npm ci` has it, a pruned install does not.
  let tsx: typeof import("tsx/esm/api");
  try {
    tsx = await import("tsx/esm/api");
  } catch (err) {
    throw new CreddError("STATE", `${NO_SANDBOX} (tsx: ${(err as Error).message.split("\n")[0]})`, { cause: err });
  }
  const sandbox = (await tsx.tsImport(ENTRY.href, import.meta.url)) as SandboxModule;
  return sandbox.sandboxCommand(argv, io);
}
