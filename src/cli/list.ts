// `credd list`: the configured credential names, one per line, for shell completion and scripts.
import { loadConfig } from "../config/load.js";
import type { Parsed } from "./args.js";
import type { Globals, Io } from "./io.js";

export const LIST_HELP = `Prints the name of every credential in the config, one per line, in the
config's order. Reads the config file only (not the database, no file it
names): the bash completion uses it, and so can scripts
(for name in $(credd list); do credd status "$name"; done).

exit: 0 listed, 1 the config cannot be read or is invalid, 2 usage`;

export async function cmdList(_p: Parsed, g: Globals, io: Io): Promise<number> {
  for (const c of loadConfig(g.configPath).credentials) io.out(c.name);
  return 0;
}
