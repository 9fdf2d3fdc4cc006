// The config as `run`, a SIGHUP reload and `check-config` take it: loaded and validated, then every
// file and folder it names checked (src/config/references.ts), each problem on its line of the file.
import path from "node:path";
import { byLine, configOfBytes, lineLocator, readConfigBytes } from "./load.js";
import { ConfigInvalidError, Issues } from "./issues.js";
import { checkReferences, type ReferenceOptions, type ReferenceReport } from "./references.js";
import type { Config } from "./types.js";

export interface CheckedConfig {
  config: Config;
  /** The references that passed, for `check-config` to show. */
  report: ReferenceReport;
}

/**
 * Loads `file` and checks its references; throws a ConfigError (a ConfigInvalidError listing every
 * broken reference as `FILE:LINE: KEY: PROBLEM (fix: FIX)`) when anything is wrong.
 */
export function loadCheckedConfig(file: string, env: NodeJS.ProcessEnv = process.env, opts: ReferenceOptions = {}): CheckedConfig {
  const abs = path.resolve(file);
  const bytes = readConfigBytes(abs);
  // From the cache or freshly parsed: the files and folders it names are checked either way.
  const config = configOfBytes(bytes, abs, env);
  const report = checkReferences(config, { env, ...opts });
  if (report.problems.length > 0) {
    // Lines are found only now: a good file is never parsed a second time.
    const ix = new Issues(lineLocator(bytes.toString("utf8")));
    for (const p of report.problems) ix.add(p.at, p.problem, p.fix);
    throw new ConfigInvalidError(abs, byLine(ix.list));
  }
  return { config, report };
}
