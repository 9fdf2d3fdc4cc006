// SIGTERM, SIGINT and SIGHUP for `credd run`: trapped by one object from the entry point's first
// step to the exit, consulted between the start-up steps and handed over to the daemon.
//
// Why one object held to the end: a signal that arrives while no listener is installed gets its
// default action (the process dies mid-start), and removing the last listener drops a signal that
// arrived but was not dispatched yet (libuv delivers it to the handle it was caught by). So the
// listeners are installed once, before the daemon's modules load, and never swapped.

export type StopSignal = "SIGTERM" | "SIGINT";

const STOP: readonly StopSignal[] = ["SIGTERM", "SIGINT"];

/** What the trap needs of `process` (handed in, so a test can drive it with an EventEmitter). */
export interface SignalSource {
  on(event: NodeJS.Signals, fn: (sig: NodeJS.Signals) => void): unknown;
  off(event: NodeJS.Signals, fn: (sig: NodeJS.Signals) => void): unknown;
  kill(pid: number, sig: NodeJS.Signals): unknown;
  readonly pid: number;
}

export interface RunSignals {
  /** The first SIGTERM or SIGINT, once one came. */
  readonly stop: StopSignal | undefined;
  /**
   * `fn` gets the stop signal once: in a microtask if it already came, else when it comes.
   * A second stop signal after the first is not trapped: it has its default action (an
   * impatient Ctrl-C ends credd at once, which everything in SQLite survives, as a crash).
   */
  onStop(fn: (sig: StopSignal) => void): void;
  /** `fn` runs on every SIGHUP from now on, and once at once if one came before (not lost during start-up). */
  onReload(fn: () => void): void;
  /** Stops trapping: from now on each of these signals has its default action. */
  release(): void;
}

export function trapRunSignals(source: SignalSource = process): RunSignals {
  let stop: StopSignal | undefined;
  let hupPending = false;
  const stopFns: ((sig: StopSignal) => void)[] = [];
  let reloadFn: (() => void) | undefined;

  const onStopSignal = (sig: NodeJS.Signals) => {
    if (stop === undefined) {
      stop = sig as StopSignal;
      for (const fn of stopFns.splice(0)) fn(stop);
      return;
    }
    // The second one: hand it its default action.
    release();
    source.kill(source.pid, sig);
  };
  const onHup = () => {
    if (reloadFn) reloadFn();
    else hupPending = true;
  };
  const release = () => {
    for (const s of STOP) source.off(s, onStopSignal);
    source.off("SIGHUP", onHup);
  };
  for (const s of STOP) source.on(s, onStopSignal);
  source.on("SIGHUP", onHup);

  return {
    get stop() {
      return stop;
    },
    onStop(fn) {
      if (stop !== undefined) {
        const sig = stop;
        queueMicrotask(() => fn(sig));
      } else stopFns.push(fn);
    },
    onReload(fn) {
      reloadFn = fn;
      if (hupPending) {
        hupPending = false;
        queueMicrotask(fn);
      }
    },
    release,
  };
}
