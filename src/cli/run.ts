// `credd run`: the daemon in the foreground, logging JSON to stdout (what systemd starts).
import { parseArgs } from "node:util";
import { startDaemon, type DaemonOptions } from "../daemon/run.js";
import { CreddError } from "../errors.js";
import { createLogger } from "../log.js";
import { buildCtx } from "./context.js";
import type { Globals, Io } from "./io.js";

export const RUN_HELP = `usage: credd run

Runs the daemon in the foreground: checks every credential at start and on
check_schedule, starts renewals when due, reminds the contact, and sends the
queued emails (retrying with backoff). Logs are JSON lines on stdout.
SIGTERM or SIGINT finishes the step in flight and stops.

exit: 0 clean stop, 1 could not start (config, database, another credd run)`;

export async function cmdRun(argv: string[], g: Globals, io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { help: { type: "boolean", short: "h" } },
    allowPositionals: true,
  });
  if (values.help) {
    io.out(RUN_HELP);
    return 0;
  }
  if (positionals.length) throw new CreddError("USAGE", `run takes no arguments\n\n${RUN_HELP}`);
  const log = createLogger({ stream: "stdout" });
  const ctx = buildCtx(g.configPath, { log });
  const daemon = startDaemon(ctx, daemonOptionsFromEnv());
  const onSignal = (sig: NodeJS.Signals) => void daemon.stop(sig);
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  await daemon.done;
  return 0;
}

/** Test and demo knobs (not for production): faster outbox and inbox polling. */
function daemonOptionsFromEnv(env = process.env): DaemonOptions {
  const num = (k: string) => {
    const v = Number(env[k] ?? "");
    return Number.isFinite(v) && env[k] !== undefined && env[k] !== "" ? v : undefined;
  };
  const o: DaemonOptions = {};
  const tick = num("CREDD_OUTBOX_TICK_MS");
  const poll = num("CREDD_INBOX_POLL_MS");
  const age = num("CREDD_INBOX_MIN_AGE_MS");
  const tok = num("CREDD_TOKEN_TICK_MS");
  if (tok !== undefined) o.tokenTickMs = tok;
  if (tick !== undefined) o.outboxTickMs = tick;
  if (poll !== undefined) o.inboxPollMs = poll;
  if (age !== undefined) o.inboxMinAgeMs = age;
  return o;
}
