// The daemon: check at start and on check_schedule, deliver the outbox on a short tick, stop cleanly.
import cron from "node-cron";
import { checkAll } from "../core/check.js";
import type { Ctx } from "../core/context.js";
import { deliverDue } from "../core/deliver.js";
import { errorMessage } from "../errors.js";
import { getMeta, setMeta } from "../store/checks.js";
import { tokensOf } from "../oauth/tokens-of.js";
import { scanInbox } from "./inbox.js";
import { acquireLock } from "./lock.js";

export interface DaemonOptions {
  /** How often queued emails are looked at (ms). Long waits live in SQLite, not in timers. */
  outboxTickMs?: number;
  /** How often the inbox folder is looked at (ms), and how old a file must be to be taken. */
  inboxPollMs?: number;
  inboxMinAgeMs?: number;
  /** How often token refresh times are looked at (ms); the times themselves live in SQLite. */
  tokenTickMs?: number;
}

export interface Daemon {
  /** Resolves when the daemon has stopped. */
  done: Promise<void>;
  stop(reason: string): Promise<void>;
  /** Runs one check now (tests, SIGUSR1). */
  checkNow(): Promise<void>;
}

export function startDaemon(ctx: Ctx, opts: DaemonOptions = {}): Daemon {
  const lock = acquireLock(ctx.config.state_dir);
  const { log } = ctx;
  const previousStop = getMeta(ctx.db, "clean_stop");
  if (previousStop === "0") log.warn("the previous credd run did not stop cleanly; resuming from the database");
  setMeta(ctx.db, "clean_stop", "0");
  setMeta(ctx.db, "started_at", ctx.clock.now().toISOString());

  let stopping = false;
  let busy: Promise<unknown> = Promise.resolve();
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  /** Serialises checks and deliveries so the database sees one step at a time. */
  const serial = (what: string, fn: () => Promise<unknown>) => {
    const next = busy.then(async () => {
      if (stopping) return;
      try {
        await fn();
      } catch (err) {
        log.error({ err: errorMessage(err) }, `${what} failed`);
      }
    });
    busy = next;
    return next;
  };

  const inboxOpts = { minAgeMs: opts.inboxMinAgeMs ?? 1_000 };
  const runInbox = () => serial("inbox", () => scanInbox(ctx, inboxOpts));
  const runCheck = () =>
    serial("check", async () => {
      await scanInbox(ctx, inboxOpts);
      const s = await checkAll(ctx);
      log.info({ checked: s.checked, failed: s.failed.length }, "check done");
      await deliverDue(ctx, { shouldStop: () => stopping });
    });
  const runOutbox = () => serial("outbox", () => deliverDue(ctx, { shouldStop: () => stopping }));

  const task = cron.schedule(ctx.config.check_schedule, () => void runCheck(), { noOverlap: true, name: "credd-check" });
  const tick = setInterval(() => void runOutbox(), opts.outboxTickMs ?? 5_000);
  const inboxTick = setInterval(() => void runInbox(), opts.inboxPollMs ?? 2_000);
  // Tokens run beside the serial queue: a slow token endpoint must not hold up emails or the inbox.
  let tokenBusy: Promise<void> = Promise.resolve();
  const runTokens = () => {
    tokenBusy = tokenBusy.then(async () => {
      if (stopping) return;
      try {
        await tokensOf(ctx).tick();
      } catch (err) {
        log.error({ err: errorMessage(err) }, "token tick failed");
      }
    });
  };
  const tokenTick = setInterval(runTokens, opts.tokenTickMs ?? 1_000);
  log.info(
    { config: ctx.config.file, credentials: ctx.config.credentials.length, schedule: ctx.config.check_schedule },
    "credd started",
  );
  void runCheck().then(runTokens);

  const stop = async (reason: string) => {
    if (stopping) return done;
    stopping = true;
    log.info({ reason }, "stopping: finishing the step in flight");
    clearInterval(tick);
    clearInterval(inboxTick);
    clearInterval(tokenTick);
    await task.destroy();
    await busy; // the email being sent or the file being written completes
    await tokenBusy;
    try {
      setMeta(ctx.db, "clean_stop", "1");
      setMeta(ctx.db, "stopped_at", ctx.clock.now().toISOString());
      ctx.db.close();
    } finally {
      lock.release();
    }
    log.info("stopped");
    resolveDone();
    return done;
  };
  return { done, stop, checkNow: () => runCheck() };
}
