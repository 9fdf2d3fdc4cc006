// `credd run`: the daemon in the foreground, logging JSON to stdout (what systemd starts).
import { parseArgs } from "node:util";
import { createNotifier, notifyEnvFrom } from "../daemon/notify.js";
import { startDaemon, type DaemonOptions } from "../daemon/run.js";
import { CreddError } from "../errors.js";
import { createLogger } from "../log.js";
import { buildCtx } from "./context.js";
import type { Globals, Io } from "./io.js";

export const RUN_HELP = `usage: credd run

Runs the daemon in the foreground: checks every credential at start and on
check_schedule, starts renewals when due, reminds the contact, and sends the
queued emails (retrying with backoff). Logs are JSON lines on stdout (each
prefixed with its syslog priority, e.g. <3> for errors, when stdout is the
journal). SIGTERM or SIGINT finishes the step in flight and stops; SIGHUP
re-reads the config (an invalid one is refused and the running one kept).
Under systemd (Type=notify) it reports READY=1, STATUS=, WATCHDOG=1 and
STOPPING=1 on $NOTIFY_SOCKET. With metrics_file set, it writes Prometheus
metrics there after each check.

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
  // Read (and removed from the environment, so deploy hooks do not inherit them) before anything runs.
  const notifyEnv = notifyEnvFrom(process.env);
  const log = createLogger({ stream: "stdout" });
  const ctx = buildCtx(g.configPath, { log });
  const daemon = startDaemon(ctx, { ...daemonOptionsFromEnv(), notifier: createNotifier(notifyEnv, log) });
  const onSignal = (sig: NodeJS.Signals) => void daemon.stop(sig);
  const onHup = () => {
    log.info({ config: ctx.config.file }, "SIGHUP: reloading the config");
    void daemon.reload();
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  process.on("SIGHUP", onHup);
  await daemon.done;
  // Everything is closed; should a stray handle keep the event loop alive, do not hang the stop.
  setTimeout(() => process.exit(process.exitCode ?? 0), 3_000).unref();
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
