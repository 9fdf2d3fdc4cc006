// `credd check-config`: load the config and check every file and folder it names, changing nothing.
import { loadCheckedConfig } from "../config/load-checked.js";
import { ConfigInvalidError } from "../config/load.js";
import { ConfigError } from "../errors.js";
import { runningUser } from "../files/file-errors.js";
import type { Parsed } from "./args.js";
import type { Globals, Io } from "./io.js";

export const CHECK_CONFIG_HELP = `Loads the config (--config FILE, $CREDD_CONFIG, then /etc/credd/credd.yaml)
as \`credd run\` and a SIGHUP reload do, and checks every file and folder it
names, as the user running the command:
  stellantis.ca_file, smtp.ca_file   readable PEM holding a CA certificate
                                     that has not expired
  *password_file                     a readable regular file, not empty
  deploy_hooks (each program)        found (in PATH for a bare name) and
                                     executable
  state_dir, runtime_dir, inbox_dir  a writable folder, or one credd can
                                     create below a writable folder
  metrics_file                       its folder exists and is writable
Run it as credd's user to see what the daemon will see:
  runuser -u credd -- credd check-config
Nothing is created or written: no folder, no database.

Each problem is one line: FILE:LINE: KEY: PROBLEM (fix: FIX).

exit: 0 the config and everything it names is usable, 2 problems found (or
a usage error)`;

export async function cmdCheckConfig(_p: Parsed, g: Globals, io: Io): Promise<number> {
  let checked;
  try {
    checked = loadCheckedConfig(g.configPath);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err(err.message);
    const n = err instanceof ConfigInvalidError ? err.issues.length : 1;
    io.err(`credd check-config: ${n} problem${n === 1 ? "" : "s"} in ${err.file} (checked as ${runningUser()})`);
    return 2;
  }
  const { config, report } = checked;
  const width = Math.max(0, ...report.checked.map((c) => c.key.length));
  for (const c of report.checked) io.out(`ok  ${c.key.padEnd(width)}  ${c.path}: ${c.found}`);
  const n = config.credentials.length;
  io.out(`${config.file}: ok (${n} credential${n === 1 ? "" : "s"}, ${report.checked.length} files and folders checked as ${runningUser()})`);
  return 0;
}
