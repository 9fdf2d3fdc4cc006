// `credd status [NAME] [--json]`: where every credential stands; exits 0/1/2/3 like a monitoring plugin.
import { activeTestSwitches, clockFromEnv, testSwitchBanner } from "../test-switches.js";
import { requireCredential } from "../config/lookup.js";
import { loadConfig } from "../config/load.js";
import { buildStatus, STATUS_JSON_VERSION, type StatusView } from "../core/status.js";
import { errorMessage } from "../errors.js";
import { openStoreForReading } from "../store/open.js";
import type { Parsed } from "./args.js";
import type { Globals, Io } from "./io.js";
import { statusText } from "./status-text.js";

export const STATUS_HELP = `Shows every credential (or just NAME): the live certificate's serial, expiry
and days left, the renewal in progress with its reason and age, when the CSR
was sent and reminded, when a new certificate awaiting IDP registration is
probed next, the token, queued emails, the last error and when the daemon last
checked. Times are UTC, written 2027-08-02 08:59 UTC (ISO 8601 in --json).
Reads the database only, and creates nothing: safe to run beside \`credd run\`,
and a state_dir with no database yet is UNKNOWN, not an empty report.

  --json   machine-readable output (its shape: docs/status.md)

exit (monitoring-plugin convention):
  0 OK        every credential is fine
  1 WARNING   a renewal is pending or overdue, an email is failing, a check
              failed, or the daemon has not checked for two schedule periods
  2 CRITICAL  a certificate expires in under 7 days or has expired
  3 UNKNOWN   the config or the database cannot be read (or there is none
              yet), or the command line is wrong`;

export async function cmdStatus(p: Parsed, g: Globals, io: Io): Promise<number> {
  const json = p.flags.has("json");
  const only = p.args[0];
  let view: StatusView;
  // Shown first (text) and in `test_switches` (json): the times below may not be real time.
  const switches = activeTestSwitches(process.env).map((s) => s.name);
  try {
    const config = loadConfig(g.configPath);
    if (only) requireCredential(config, only);
    const store = (await openStoreForReading(config)).store;
    try {
      view = await buildStatus({ config, store, clock: clockFromEnv() }, only, switches);
    } finally {
      await store.close();
    }
  } catch (err) {
    const msg = errorMessage(err);
    if (json) io.out(JSON.stringify({ version: STATUS_JSON_VERSION, status: "unknown", exit_code: 3, error: msg, test_switches: switches }, null, 2));
    else {
      const banner = testSwitchBanner(switches);
      if (banner) io.out(banner);
      io.err(`credd status: UNKNOWN: ${msg}`);
    }
    return 3;
  }
  if (json) io.out(JSON.stringify(view, null, 2));
  else {
    // One write, not one per line: 1,000 credentials are some 15,000 lines.
    const lines: string[] = [];
    statusText(view, (l) => lines.push(l));
    io.out(lines.join("\n"));
  }
  return view.exit_code;
}
