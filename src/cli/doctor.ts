// `credd doctor NAME`: live check of TLS, token and one API call; each step reported with its time.
import { parseArgs } from "node:util";
import { doctor } from "../core/doctor.js";
import { CreddError } from "../errors.js";
import { buildCtx, requireCredential } from "./context.js";
import type { Globals, Io } from "./io.js";

export const DOCTOR_HELP = `usage: credd doctor NAME [--json]

Runs the chain a person would run with curl, and reports each step with the
time it took and a verdict:
  config valid; key matches the live certificate; certificate valid for N more
  days and chains to stellantis.ca_file; TLS handshake with the token endpoint
  and with the API host (server certificates verified); token obtained (scope,
  expires_in); one API request (GET api.base_url + api.probe_path with
  client_id, Accept: application/hal+json, Bearer or Basic) and its status.
After a failed step the steps that need it are skipped. Nothing is changed:
the token doctor gets is not stored.

exit: 0 every step passed, 1 a step failed, 2 usage`;

export async function cmdDoctor(argv: string[], g: Globals, io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
  });
  if (values.help) {
    io.out(DOCTOR_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CreddError("USAGE", `doctor takes one credential NAME\n\n${DOCTOR_HELP}`);
  const ctx = buildCtx(g.configPath, { readonly: false });
  try {
    const cred = requireCredential(ctx.config, positionals[0]);
    const steps = await doctor(ctx, cred);
    const passed = steps.every((s) => s.ok !== false);
    if (values.json) io.out(JSON.stringify({ credential: cred.name, ok: passed, steps }, null, 2));
    else {
      for (const s of steps) {
        const mark = s.ok === true ? "PASS" : s.ok === false ? "FAIL" : "skip";
        io.out(`${mark}  ${s.name.padEnd(50)} ${String(s.ms).padStart(5)} ms  ${s.detail}`);
      }
      io.out(passed ? `${cred.name}: all steps passed` : `${cred.name}: FAILED at "${steps.find((s) => s.ok === false)!.name}"`);
    }
    return passed ? 0 : 1;
  } finally {
    ctx.db.close();
  }
}
