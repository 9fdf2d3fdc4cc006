// `credd doctor NAME`: live check of TLS, token and one API call; each step reported with its time.
import { clockFromEnv } from "../test-switches.js";
import { loadConfig } from "../config/load.js";
import { requireCredential } from "../config/lookup.js";
import { doctor } from "../core/doctor.js";
import { openStoreForReading } from "../store/open.js";
import { openSqliteStoreIfAny } from "../store/sqlite-store.js";
import type { Parsed } from "./args.js";
import { humanTimes } from "./format.js";
import type { Globals, Io } from "./io.js";

export const DOCTOR_HELP = `Runs the chain a person would run with curl, and reports each step with the
time it took and a verdict:
  config valid; key matches the live certificate; certificate valid for N more
  days and chains to stellantis.ca_file; TLS handshake with the token endpoint
  and with the API host (server certificates verified); token obtained (scope,
  expires_in); one API request (GET api.base_url + api.probe_path with
  client_id, Accept: application/hal+json, Bearer or Basic) and its status.
After a failed step the steps that need it are skipped. Nothing is changed or
created: doctor reads the config, the live files and the database (read-only,
when there is one), and the token it gets is not stored.

exit: 0 every step passed, 1 a step failed, 2 usage`;

export async function cmdDoctor(p: Parsed, g: Globals, io: Io): Promise<number> {
  const config = loadConfig(g.configPath);
  const cred = requireCredential(config, p.args[0]);
  // The database, only if there is one, and read-only: doctor never creates or writes anything.
  // On PostgreSQL (store.postgres) the shared database, not migrated: doctor changes nothing.
  const store = config.store === "sqlite" ? openSqliteStoreIfAny(config.state_dir, config.file) : (await openStoreForReading(config)).store;
  let steps;
  try {
    steps = await doctor({ config, clock: clockFromEnv(), ...(store ? { store } : {}) }, cred);
  } finally {
    await store?.close();
  }
  const passed = steps.every((s) => s.ok !== false);
  if (p.flags.has("json")) io.out(JSON.stringify({ credential: cred.name, ok: passed, steps }, null, 2));
  else {
    for (const s of steps) {
      const mark = s.ok === true ? "PASS" : s.ok === false ? "FAIL" : "skip";
      io.out(`${mark}  ${s.name.padEnd(50)} ${String(s.ms).padStart(5)} ms  ${humanTimes(s.detail)}`);
    }
    io.out(passed ? `${cred.name}: all steps passed` : `${cred.name}: FAILED at "${steps.find((s) => s.ok === false)!.name}"`);
  }
  return passed ? 0 : 1;
}
