// The daemon: check at start and on check_schedule, deliver the outbox on a short tick, re-read the
// config on reload, tell systemd where it stands, write the metrics file, stop cleanly.
import { chmodSync, mkdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import cron, { type ScheduledTask } from "node-cron";
import { ConfigInvalidError } from "../config/load.js";
import { loadCheckedConfig } from "../config/load-checked.js";
import type { Config } from "../config/types.js";
import { evaluateAlerts } from "../core/alerts.js";
import { checkAll } from "../core/check.js";
import type { Ctx } from "../core/context.js";
import { deliverDue } from "../core/deliver.js";
import { followStore } from "../core/follow.js";
import { buildStatus } from "../core/status.js";
import { ConfigError, CreddError, errorMessage } from "../errors.js";
import { fsFound } from "../files/file-errors.js";
import { ownedWriteDirs, removeStaleTemps } from "../files/leftovers.js";
import { makeMailerFactory } from "../mail/factory.js";
import type { Mailer } from "../mail/smtp.js";
import { runsAfter, schedulePeriodMs } from "../core/schedule.js";
import type { MailboxService } from "../mailbox/service.js";
import { tokensOf } from "../core/tokens-of.js";
import { createInbox } from "./inbox.js";
import { NO_LISTEN_FDS, type ListenFds } from "./listen-fds.js";
import { acquireLock } from "./lock.js";
import { storeOutageMail } from "./store-outage.js";
import { renderMetrics, writeMetricsFile } from "./metrics.js";
import { createNotifier, statusSummary, type Notifier } from "./notify.js";
import type { LeaderHandle } from "../store/open.js";
import { hostNameOf } from "../host.js";

/** credd's version, for the hosts table. */
function creddVersion(): string {
  return (createRequire(import.meta.url)("../../package.json") as { version: string }).version;
}

export { hostNameOf } from "../host.js";

/** How long the store may stay unreachable before it is said at error level and in systemd's STATUS=. */
export const STORE_DOWN_WARN_MS = 3 * 60_000;
/**
 * The store a config names, for comparing two configs and for messages (no secret: paths only).
 * Every key of store.postgres is in it: the store, its key ring (current and previous key files)
 * are opened at start only, so a reload that changes any of them is refused (restart credd).
 */
function describeStore(store: Config["store"]): string {
  if (store === "sqlite") return "sqlite";
  const p = store.postgres;
  const previous = p.previous_key_encryption_key_files ?? [];
  return (
    `postgres (url_file ${p.url_file}, key_encryption_key_file ${p.key_encryption_key_file}` +
    `${previous.length ? `, previous_key_encryption_key_files [${previous.join(", ")}]` : ""}${p.ca_file ? `, ca_file ${p.ca_file}` : ""})`
  );
}

/** The serial steps on a short tick: the same failure at each tick is logged once. */
const REPEATING_STEPS = new Set(["outbox", "inbox", "mailbox"]);

export interface DaemonOptions {
  /** How often queued emails are looked at (ms). Long waits live in SQLite, not in timers. */
  outboxTickMs?: number;
  /** How often the inbox folder is looked at (ms), and how old a file must be to be taken. */
  inboxPollMs?: number;
  inboxMinAgeMs?: number;
  /** How often token refresh times are looked at (ms); the times themselves live in SQLite. */
  tokenTickMs?: number;
  /** systemd notifications (READY=1, STATUS=, WATCHDOG=1, STOPPING=1); none by default. */
  notifier?: Notifier;
  /**
   * A step (check, delivery, inbox) running longer than this is taken as hung: WATCHDOG=1 is
   * withheld so systemd restarts credd (everything that matters is in SQLite). Default 30 min.
   */
  stuckStepMs?: number;
  /** Test switches set (src/test-switches.ts): logged at warning level once the daemon has its lock. */
  testSwitches?: readonly { name: string; value: string }[];
  /** The mailbox's poll interval (ms); see src/mailbox/service.ts. */
  mailbox?: { pollMs?: number };
  /** Sockets systemd handed over (socket activation), for proxy listen addresses `systemd:NAME`. */
  listenFds?: ListenFds;
}

export interface Daemon {
  /** Resolves when the daemon has stopped. */
  done: Promise<void>;
  stop(reason: string): Promise<void>;
  /** Runs one check now (tests). */
  checkNow(): Promise<void>;
  /** Re-reads the config file (SIGHUP); resolves true when the new config took effect. */
  reload(): Promise<boolean>;
}

/** The mailer factory, remembering the mailer it made so a reload can close it. */
function mailerOf(config: Config): { get: () => Mailer; close: () => void } {
  const make = makeMailerFactory(config);
  let made: Mailer | undefined;
  return {
    get: () => (made ??= make()),
    close: () => made?.close(),
  };
}

/**
 * People and apps in credd's group (systemd Group=credd) read live/cert.pem, chain.pem and
 * fullchain.pem: credentials/ and credentials/NAME/ need group r-x, which the 0700 the file
 * layout creates them with does not give. archive/ (every key) stays 0700, key.pem 0600.
 */
export function shareLiveWithGroup(config: Config, log: Ctx["log"]): void {
  const root = join(config.state_dir, "credentials");
  for (const dir of [root, ...config.credentials.map((c) => join(root, c.name))]) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o750 });
      const st = statSync(dir);
      if ((st.mode & 0o050) !== 0o050 && st.uid === process.getuid?.()) chmodSync(dir, (st.mode & 0o7777) | 0o050);
    } catch (err) {
      log.warn({ err: errorMessage(err), dir }, "cannot give credd's group access to live/");
    }
  }
}

/** What `credd status` judges a stale daemon by: the period of the schedule this daemon runs. */
async function storeCheckPeriod(ctx: Ctx): Promise<void> {
  const ms = schedulePeriodMs(ctx.config.check_schedule, ctx.clock.now());
  if (ms !== undefined) await ctx.store.setCheckPeriodMs(ms);
}

export async function startDaemon(ctx: Ctx, opts: DaemonOptions = {}): Promise<Daemon> {
  const lock = acquireLock(ctx.config.state_dir);
  const { log } = ctx;
  // Once this daemon is the one that runs (a second `credd run` refused by the lock says only that).
  const switches = opts.testSwitches ?? [];
  if (switches.length > 0) {
    log.warn(
      { test_switches: Object.fromEntries(switches.map((s) => [s.name, s.value])) },
      `test switches set: ${switches.map((s) => s.name).join(", ")} (test aids, not for production: docs/operations.md)`,
    );
  }
  shareLiveWithGroup(ctx.config, log);
  // Under the lock, no other daemon writes: temp files of an interrupted write (a SIGKILL) are removed.
  const leftovers = removeStaleTemps(
    ownedWriteDirs(
      { credentials: join(ctx.config.state_dir, "credentials"), runtime: ctx.config.runtime_dir },
      ctx.config.credentials.map((c) => c.name),
    ),
    Date.now(),
  );
  if (leftovers.length) log.info({ removed: leftovers }, "removed temp files left by an interrupted write");
  const notifier = opts.notifier ?? createNotifier({}, log);
  // On a shared store each host records its own start and stop (another host's clean stop must not
  // hide this one's crash); on SQLite the keys are as they always were.
  const own = (key: string): string => (ctx.leadership ? `${key}@${hostNameOf()}` : key);
  try {
    const previousStop = await ctx.store.getMeta(own("clean_stop"));
    if (previousStop === "0") {
      log.warn("the previous credd run did not stop cleanly; resuming from the database");
      // The alert rules turn this into one "credd restarted after a crash" email.
      await ctx.store.setMeta("unclean_restart_at", ctx.clock.now().toISOString());
    }
    await ctx.store.setMeta(own("clean_stop"), "0");
    await ctx.store.setMeta(own("started_at"), ctx.clock.now().toISOString());
    await storeCheckPeriod(ctx);
  } catch (err) {
    // Could not start (the database locked or the disk full): the lock is not left behind.
    lock.release();
    throw err;
  }

  let mail = mailerOf(ctx.config);
  ctx.mailer = mail.get;
  let stopping = false;

  // --- leadership (docs/shared-store.md): on PostgreSQL only the leader acts; on SQLite this host always leads.
  const host = { name: hostNameOf(), version: creddVersion(), started_at: ctx.clock.now().toISOString() };
  let leader: LeaderHandle | undefined;
  /** Set below, once the mailbox is: the leadership-lost event stops the mailbox source. */
  let mailboxFollowsLead: (leading: boolean) => void = () => undefined;
  if (ctx.leadership) {
    const l = ctx.leadership((message) => {
      // Called from the connection's own event: nothing acts from now on (every side effect is fenced).
      log.error({ err: message, host: host.name }, "leadership lost: this host stops acting and follows");
      mailboxFollowsLead(false);
    });
    leader = l;
    ctx.fence = () => l.confirm();
  }
  const leads = (): boolean => !leader || leader.isLeader();
  let lastLeadError = "";
  // --- store health: PostgreSQL restarting or down (docs/shared-store.md, "What happens when
  // PostgreSQL is down"). Each loop logs a store error once per distinct message and retries at its
  // next tick; when the store stays unreachable longer than STORE_DOWN_WARN_MS it is said once at
  // error level and in systemd's STATUS= (the outbox is in the store: no email can be queued).
  const outageMail = ctx.leadership ? storeOutageMail(ctx, host.name) : undefined;
  let storeDownSince: number | undefined;
  let storeDownWarned = false;
  const lastStepError = new Map<string, string>();
  const storeFailed = (what: string, err: unknown): void => {
    const msg = errorMessage(err);
    if (lastStepError.get(what) !== msg)
      log.error({ err: msg, step: what }, `${what}: the store failed; retried at the next tick (logged again only when the error changes)`);
    lastStepError.set(what, msg);
    const now = ctx.clock.now().getTime(); // credd's clock: a test moves it (CREDD_CLOCK_FILE)
    storeDownSince ??= now;
    if (!storeDownWarned && now - storeDownSince >= STORE_DOWN_WARN_MS) {
      storeDownWarned = true;
      const since = new Date(storeDownSince).toISOString();
      log.error(
        { err: msg, since },
        `the store has been unreachable since ${since}: tokens already in files are still served; nothing else is done until it is back`,
      );
      notifier.status(`store unreachable since ${since}: ${msg}`);
      lastStatusLine = "";
    }
    // A shared store: ops get an email straight over SMTP (once per outage, retried each minute until sent).
    if (storeDownWarned) outageMail?.down(storeDownSince, msg);
  };
  const storeOk = (what: string): void => {
    lastStepError.delete(what);
    if (storeDownSince === undefined) return;
    log.warn({ since: new Date(storeDownSince).toISOString(), step: what }, "the store can be reached again");
    if (storeDownWarned && outageMail) void outageMail.back(storeDownSince);
    storeDownSince = undefined;
    storeDownWarned = false;
  };
  // --- end store health
  /** At each check tick: lead if the lock is free (a dead leader's session is gone), else follow. */
  const tryLead = async (): Promise<boolean> => {
    if (!leader) return true;
    const was = leader.isLeader();
    let now: boolean;
    try {
      now = await leader.tryAcquire();
      lastLeadError = "";
    } catch (err) {
      const msg = errorMessage(err);
      if (msg !== lastLeadError) log.error({ err: msg, host: host.name }, "cannot reach PostgreSQL for leadership: this host does not act");
      lastLeadError = msg;
      storeFailed("leadership", err);
      now = false;
    }
    if (now && !was) {
      log.warn({ host: host.name, leader: true }, "this host leads now: it runs the checks, emails, inbox and mailbox");
      // A claim still running belongs to a leader that died mid-send: give it back so the queued
      // email (a CSR) goes out now, not when the claim runs out. At worst the same email, with the
      // same Message-ID, is sent twice (docs/shared-store.md).
      try {
        const released = await ctx.store.releaseLiveClaims(ctx.clock.now());
        if (released > 0) log.info({ host: host.name, released }, "released the outbox claims of the previous leader");
      } catch (err) {
        storeFailed("leadership", err);
      }
    } else if (!now && was) log.warn({ host: host.name, leader: false }, "this host no longer leads");
    return now;
  };
  const heartbeat = async (): Promise<void> => {
    try {
      await ctx.store.heartbeatHost({
        name: host.name,
        pid: process.pid,
        role: leads() ? "leader" : "follower",
        version: host.version,
        started_at: host.started_at,
        last_heartbeat_at: ctx.clock.now().toISOString(),
      });
      storeOk("heartbeat");
    } catch (err) {
      storeFailed("heartbeat", err);
    }
  };
  // --- end leadership
  let busy: Promise<unknown> = Promise.resolve();
  let stepStartedAt: number | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  /** Serialises checks, deliveries and reloads so the database sees one step at a time. */
  const serial = <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    const next = busy.then(async () => {
      if (stopping) return undefined;
      stepStartedAt = Date.now();
      try {
        const r = await fn();
        lastStepError.delete(what);
        return r;
      } catch (err) {
        // A step on a short tick (outbox, inbox, mailbox) failing the same way at each tick (the
        // store down) is logged once; a check or a reload failing is logged every time.
        const msg = errorMessage(err);
        if (!REPEATING_STEPS.has(what) || lastStepError.get(what) !== msg) log.error({ err: msg }, `${what} failed`);
        if (REPEATING_STEPS.has(what)) lastStepError.set(what, msg);
        return undefined;
      } finally {
        stepStartedAt = undefined;
      }
    });
    busy = next;
    return next;
  };

  // What systemd and Prometheus see, refreshed after each step; sent or written only on change.
  let lastStatusLine = "";
  let lastMetrics = "";
  let lastMetricsError = "";
  const publish = async (): Promise<void> => {
    const metricsFile = ctx.config.metrics_file;
    if (!notifier.enabled && !metricsFile) return;
    try {
      const view = await buildStatus(ctx);
      if (notifier.enabled) {
        // The next check by credd's clock (the one every time it shows is read from), not node-cron's.
        const [next] = runsAfter(ctx.config.check_schedule, ctx.clock.now(), 1);
        const line = statusSummary(view, next === undefined ? null : new Date(next));
        if (line !== lastStatusLine) {
          lastStatusLine = line;
          notifier.status(line);
        }
      }
      if (metricsFile) {
        const text = renderMetrics(view);
        if (text !== lastMetrics) {
          try {
            writeMetricsFile(metricsFile, text);
          } catch (err) {
            // Checked at load, but a folder can go away later: say which, in plain words, once.
            const dir = dirname(metricsFile);
            throw new CreddError(
              "IO",
              `metrics_file ${metricsFile} cannot be written: its folder ${dir} ${fsFound(err, dir, "written")} (fix: create the folder or let credd's user write it, or correct metrics_file; credd check-config checks it)`,
              { cause: err },
            );
          }
          lastMetrics = text;
          lastMetricsError = "";
        }
      }
    } catch (err) {
      const msg = errorMessage(err);
      if (msg !== lastMetricsError) log.error({ err: msg, metrics_file: metricsFile }, "cannot publish status and metrics");
      lastMetricsError = msg;
    }
  };

  // One inbox for both callers, so a failure that lasts is logged once, not at every scan.
  const inbox = createInbox(ctx, { minAgeMs: opts.inboxMinAgeMs ?? 1_000 });
  const runInbox = (): Promise<void> =>
    serial("inbox", async () => {
      if (!leads()) return;
      if ((await inbox.scan()).length > 0) await publish();
    }).then(() => {
      // More files than one scan takes: the next scan is queued now, behind any step waiting meanwhile.
      if (inbox.backlog() && !stopping) void runInbox();
    });
  // mailbox: Stellantis' replies read from IMAP or a Maildir (docs/mailbox.md). Off without the
  // section; its code is loaded only then. Each look runs in the serial queue like the inbox.
  /** The serial queue for what only the leader does: a follower skips the step. */
  const ledSerial = <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => serial(what, async () => (leads() ? await fn() : undefined));
  const startMailbox = (): Promise<MailboxService | undefined> =>
    ctx.config.mailbox
      ? import("../mailbox/service.js")
          .then((m) => m.startMailbox(ctx, { serial: ledSerial, onHandled: () => void publish(), ...opts.mailbox }))
          .catch((err: unknown) => {
            log.error({ err: errorMessage(err) }, "mailbox: cannot start; replies are not read until the next reload");
            return undefined;
          })
      : Promise.resolve(undefined);
  // On a shared store the source runs only while this host leads (a follower connecting would
  // update the one shared mailbox_sources row: alternating "cannot read"/"can read again" alerts);
  // it starts when this host takes the lead and stops when it loses it. On SQLite this host leads.
  let mailboxOn = leads() && ctx.config.mailbox !== undefined;
  let mailbox: Promise<MailboxService | undefined> = mailboxOn ? startMailbox() : Promise.resolve(undefined);
  /** Starts or stops the mailbox source to match the leadership; serialised through `mailbox` itself. */
  mailboxFollowsLead = (leading: boolean): void => {
    if (stopping || !ctx.config.mailbox || leading === mailboxOn) return;
    mailboxOn = leading;
    mailbox = mailbox.then(async (m) => {
      await m?.stop();
      if (!leading || stopping) {
        if (m) log.info({ host: host.name }, "mailbox: stopped, this host no longer leads");
        return undefined;
      }
      return await startMailbox();
    });
  };

  const runCheck = () =>
    serial("check", async () => {
      const leading = await tryLead();
      mailboxFollowsLead(leading);
      await heartbeat();
      if (leader) {
        // Every host, the leader first of all: this host's archive/ and live/ as the store says.
        try {
          await followStore(ctx);
        } catch (err) {
          log.error({ err: errorMessage(err), host: host.name }, "cannot bring archive/ and live/ in line with the shared store");
        }
      }
      if (!leading) {
        log.info({ host: host.name, leader: false }, "follower tick: another host leads");
        await publish();
        return;
      }
      try {
        await inbox.scan();
        const s = await checkAll(ctx);
        log.info({ checked: s.checked, failed: s.failed.length }, "check done");
        const r = await deliverDue(ctx, { shouldStop: () => stopping });
        if (r.permanent.length > 0) await raiseAlerts();
      } finally {
        await publish();
      }
    });
  const runOutbox = () =>
    serial("outbox", async () => {
      if (!leads()) return;
      const r = await deliverDue(ctx, { shouldStop: () => stopping });
      // A refusal that retrying cannot cure is an ops alert now (recorded for status, and a digest
      // queued for whatever path still works), not at the next scheduled check.
      if (r.permanent.length > 0) await raiseAlerts();
      if (r.sent + r.failed > 0) await publish();
    });
  const raiseAlerts = async (): Promise<void> => {
    try {
      await evaluateAlerts(ctx);
    } catch (err) {
      log.error({ err: errorMessage(err) }, "alert evaluation failed");
    }
  };

  const arm = (expr: string) => cron.schedule(expr, () => void runCheck(), { noOverlap: true, name: "credd-check" });
  let task: ScheduledTask = arm(ctx.config.check_schedule);
  const tick = setInterval(() => void runOutbox(), opts.outboxTickMs ?? 5_000);
  const inboxTick = setInterval(() => void runInbox(), opts.inboxPollMs ?? 2_000);
  // Tokens run beside the serial queue: a slow token endpoint must not hold up emails or the inbox.
  let tokenBusy: Promise<void> = Promise.resolve();
  let tokenSeen = "";
  const runTokens = () => {
    tokenBusy = tokenBusy.then(async () => {
      // Every host keeps its own token (per host on a shared store: runtime_dir is this host's).
      if (stopping) return;
      try {
        await tokensOf(ctx).tick();
      } catch (err) {
        const msg = errorMessage(err);
        if (lastStepError.get("token tick") !== msg) log.error({ err: msg }, "token tick failed");
        lastStepError.set("token tick", msg);
      }
      // One indexed read per OAuth2 credential: publish only when a token changed. The store may
      // refuse (PostgreSQL restarting): logged once, retried at the next tick; the chain never rejects.
      try {
        const expiries: string[] = [];
        for (const c of ctx.config.credentials) if (c.oauth) expiries.push((await ctx.store.getToken(c.name))?.expires_at ?? "");
        // Only a read that reached the store says it is reachable: with no OAuth2 credential there is none.
        if (expiries.length > 0) storeOk("token read");
        const seen = expiries.join(",");
        if (seen !== tokenSeen) {
          tokenSeen = seen;
          await publish();
        }
      } catch (err) {
        storeFailed("token read", err);
      }
    });
  };
  const tokenTick = setInterval(runTokens, opts.tokenTickMs ?? 1_000);

  const stuckMs = opts.stuckStepMs ?? 30 * 60_000;
  const stopWatchdog = notifier.startWatchdog(() => stepStartedAt === undefined || Date.now() - stepStartedAt < stuckMs);

  /** Waits until no token tick is running, so the config is never swapped under one. */
  const tokensIdle = async () => {
    for (;;) {
      const t = tokenBusy;
      await t;
      if (t === tokenBusy) return;
    }
  };

  const reload = () =>
    serial("reload", async () => {
      const file = ctx.config.file;
      let next: Config;
      try {
        // As at the start: every file and folder the new config names must be usable.
        next = loadCheckedConfig(file).config;
        if (next.state_dir !== ctx.config.state_dir) {
          throw new ConfigError(
            file,
            "state_dir",
            `changed from ${ctx.config.state_dir} to ${next.state_dir}, which a reload cannot apply`,
            "restart credd (systemctl restart credd) after moving the state",
          );
        }
        // The store is opened once, at the start (and leadership with it): a reload cannot switch it.
        if (describeStore(next.store) !== describeStore(ctx.config.store)) {
          throw new ConfigError(
            file,
            "store",
            `store changed from ${describeStore(ctx.config.store)} to ${describeStore(next.store)}: restart credd, a reload cannot apply it`,
            "restart credd (systemctl restart credd) to use the new store; the running one is kept until then",
          );
        }
      } catch (err) {
        // The message names the file, the key and the fix; the issues repeat them as fields.
        const detail = err instanceof ConfigInvalidError ? { issues: err.issues } : err instanceof ConfigError ? { key: err.key, fix: err.fix } : {};
        log.error({ err: errorMessage(err), file, ...detail }, "config reload refused: the running config is kept");
        return false;
      }
      await tokensIdle();
      const prev = ctx.config;
      ctx.config = next;
      shareLiveWithGroup(next, log);
      // Always a new mailer: the SMTP settings or the password file may have changed.
      const oldMail = mail;
      mail = mailerOf(next);
      ctx.mailer = mail.get;
      oldMail.close();
      if (next.check_schedule !== prev.check_schedule) {
        await task.destroy();
        task = arm(next.check_schedule);
        await storeCheckPeriod(ctx);
      }
      const before = new Set(prev.credentials.map((c) => c.name));
      const after = new Set(next.credentials.map((c) => c.name));
      log.info(
        {
          config: file,
          credentials: next.credentials.length,
          added: [...after].filter((n) => !before.has(n)),
          removed: [...before].filter((n) => !after.has(n)),
          schedule: next.check_schedule,
        },
        "config reloaded",
      );
      // The mailbox source may have changed (or appeared, or gone): start it again from the new config.
      await (await mailbox)?.stop();
      mailboxOn = leads() && next.mailbox !== undefined;
      mailbox = mailboxOn ? startMailbox() : Promise.resolve(undefined);
      // The proxy listeners follow `proxy:`: started, stopped, moved, or handed the new settings.
      const running = await proxies;
      if (running) await running.apply();
      else if (next.credentials.some((c) => c.proxy)) {
        proxies = startProxies();
        await proxies;
      }
      tokenSeen = "";
      lastMetrics = "";
      void runCheck().then(runTokens);
      return true;
    }).then((ok) => ok === true);

  log.info({ config: ctx.config.file, credentials: ctx.config.credentials.length, schedule: ctx.config.check_schedule }, "credd started");
  // The database is open and the scheduler armed: systemd may consider credd started.
  const n = ctx.config.credentials.length;
  notifier.ready(`${n} credential${n === 1 ? "" : "s"}, first check running`);
  void runCheck().then(runTokens);

  // --- proxy (issue 16): the local listeners of credentials with `proxy:`; loaded only when one has it.
  const startProxies = () =>
    import("../proxy/listeners.js")
      .then((m) => m.startProxies(ctx, opts.listenFds ?? NO_LISTEN_FDS))
      .catch((err: unknown) => {
        log.error({ err: errorMessage(err) }, "proxy listeners not started");
        return undefined;
      });
  let proxies = ctx.config.credentials.some((c) => c.proxy) ? startProxies() : undefined;
  // --- end proxy

  const stop = async (reason: string) => {
    if (stopping) return done;
    stopping = true;
    const notified = notifier.stopping("stopping: finishing the step in flight");
    log.info({ reason }, "stopping: finishing the step in flight");
    clearInterval(tick);
    clearInterval(inboxTick);
    clearInterval(tokenTick);
    await task.destroy();
    await (await proxies)?.close(); // requests in flight finish (a few seconds at most) before the database closes
    await (await mailbox)?.stop();
    await busy; // the email being sent or the file being written completes
    await outageMail?.idle();
    await tokenBusy;
    stopWatchdog();
    try {
      mail.close();
      try {
        await leader?.close();
      } catch (err) {
        log.error({ err: errorMessage(err) }, "could not close the leadership connection");
      }
      try {
        await ctx.store.setMeta(own("clean_stop"), "1");
        await ctx.store.setMeta(own("stopped_at"), ctx.clock.now().toISOString());
      } catch (err) {
        // A full disk must not turn a clean stop into a crash: the next start just reports it as unclean.
        log.error({ err: errorMessage(err) }, "could not record the clean stop");
      }
      await ctx.store.close();
    } finally {
      lock.release();
      await notified;
      notifier.close();
    }
    log.info("stopped");
    resolveDone();
    return done;
  };
  return {
    done,
    stop,
    checkNow: async () => {
      await runCheck();
    },
    reload,
  };
}
