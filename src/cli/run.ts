// `credd run`: the daemon in the foreground, logging JSON to stdout (what systemd starts).
import { listenFdsFrom } from "../daemon/listen-fds.js";
import { createNotifier, notifyEnvFrom } from "../daemon/notify.js";
import { startDaemon } from "../daemon/run.js";
import type { RunSignals } from "../daemon/signals.js";
import { errorMessage } from "../errors.js";
import { createLogger } from "../log.js";
import { activeTestSwitches, daemonTicksFromEnv, refuseTestSwitchesUnderSystemd } from "../test-switches.js";
import type { Parsed } from "./args.js";
import { buildCtx } from "./context.js";
import type { Globals, Io } from "./io.js";

export const RUN_HELP = `Runs the daemon in the foreground: checks every credential at start and on
check_schedule, starts renewals when due, reminds the contact, and sends the
queued emails (retrying with backoff). Logs are JSON lines on stdout; under
systemd each goes to the journal with fields such as CREDD_CREDENTIAL (or,
when it cannot, to stdout prefixed with its syslog priority, e.g. <3>). SIGTERM or SIGINT, also during the start, finishes the step in
flight and stops (exit 0); a second one stops at once, as a crash would
(everything resumes from the database). SIGHUP re-reads the config (an
invalid one is refused and the running one kept). At the start and at each
reload every file and folder the config names is checked as \`credd
check-config\` does; a broken one stops the start (or the reload).
Under systemd (Type=notify) it reports READY=1, STATUS=, WATCHDOG=1 and
STOPPING=1 on $NOTIFY_SOCKET. With metrics_file set, it writes Prometheus
metrics there after each check.

Test switches (CREDD_FAKE_NOW, CREDD_CLOCK_FILE, CREDD_CRASH_AT, the tick knobs)
are logged at warning level, and refused under systemd ($INVOCATION_ID) unless
CREDD_ALLOW_TEST_SWITCHES=1 (docs/operations.md).

exit: 0 clean stop, 1 could not start (config, database, another credd run,
test switches under systemd) or stopped on an unexpected error (logged at
fatal level; systemd restarts it)`;

export async function cmdRun(_p: Parsed, g: Globals, io: Io, signals: RunSignals): Promise<number> {
  // `signals` has trapped SIGTERM/SIGINT since main() saw `run`. A stop that came while the modules
  // loaded: nothing is open or taken yet, so nothing to undo.
  const stoppedEarly = () => {
    if (!signals.stop) return false;
    io.err(`credd: ${signals.stop} before the daemon started; stopping`);
    return true;
  };
  if (stoppedEarly()) return 0;
  // A test aid left in a unit's environment is refused before anything opens (src/test-switches.ts).
  refuseTestSwitchesUnderSystemd(process.env);
  // Read (and removed from the environment, so deploy hooks do not inherit them) before anything runs.
  const notifyEnv = notifyEnvFrom(process.env);
  const listenFds = listenFdsFrom(process.env);
  const log = createLogger({ stream: "stdout" });
  // Last resort: a promise rejected with no handler (a bug: every loop catches its own errors) is
  // logged at fatal level and credd exits 1 ("could not run"), with no stack trace; systemd restarts
  // it and everything resumes from the store.
  process.on("unhandledRejection", (reason) => {
    log.fatal({ err: errorMessage(reason) }, "unexpected error: credd stops so that systemd restarts it");
    io.err(`credd: unexpected error: ${errorMessage(reason)}; stopping (systemd restarts credd)`);
    process.exit(1);
  });
  // Every file and folder the config names is checked before the database is opened (and its
  // folder created): a typo is a refusal to start now, not an error at the renewal a year later.
  const ctx = await buildCtx(g.configPath, { log, checkReferences: true });
  // A stop signal that comes before onStop below is kept by `signals` and handed on there; this
  // check spares starting a daemon only to stop it.
  if (stoppedEarly()) {
    await ctx.store.close();
    return 0;
  }
  const daemon = await startDaemon(ctx, {
    ...daemonTicksFromEnv(process.env),
    testSwitches: activeTestSwitches(process.env),
    notifier: createNotifier(notifyEnv, log),
    listenFds,
  });
  // The daemon takes over: a stop signal that came meanwhile is handed on at once, a SIGHUP reloads.
  signals.onStop((sig) => void daemon.stop(sig));
  signals.onReload(() => {
    log.info({ config: ctx.config.file }, "SIGHUP: reloading the config");
    void daemon.reload();
  });
  await daemon.done;
  // Everything is closed; should a stray handle keep the event loop alive, do not hang the stop.
  setTimeout(() => process.exit(process.exitCode ?? 0), 3_000).unref();
  return 0;
}
