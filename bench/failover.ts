// Failover on a shared PostgreSQL store (issue 17, docs/shared-store.md): two `credd run` hosts on
// one throwaway cluster; the leader is killed with SIGKILL again and again (the killed host is
// started again as the new follower each time), timed from the kill to the other host's first
// "check done" as leader. Target: within one check interval + 5 s.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { postgresMissing, startPostgres } from "../test/helpers/postgres.js";
import { type RunningDaemon, startDaemon } from "./lib/daemon.js";
import { fromDist } from "./lib/dist.js";
import { credName, mzpOf, writeManyConfig } from "./lib/fixtures.js";
import type { BenchOptions } from "./lib/options.js";
import { makeCertsFor, startPartner } from "./lib/partner.js";
import { sleep } from "./lib/proc.js";
import { summarize } from "./lib/stats.js";
import { verdict, type Row } from "./lib/table.js";
import { unitNodeFlags } from "./lib/unit.js";

type CtxMod = typeof import("../src/cli/context.js");
type ImportMod = typeof import("../src/core/import.js");
type LogMod = typeof import("../src/log.js");

/** Credentials the two hosts run: OAuth2 ones, certificates imported, so each host also keeps tokens. */
const N = 10;
const FIGURE = "failover: leader killed → first check as leader";

type Line = Record<string, unknown>;
// The daemon's own log lines (src/daemon/run.ts).
const leadsNow = (l: Line) => l.msg === "this host leads now: it runs the checks, emails, inbox and mailbox";
const checkDone = (l: Line) => l.msg === "check done";
const followerTick = (l: Line) => l.msg === "follower tick: another host leads";
/** A log line's time (pino's "time"), in ms since the epoch. */
const at = (l: Line): number => (typeof l.time === "number" ? l.time : Date.parse(String(l.time)));
const s1 = (v: number) => `${(v / 1000).toFixed(1)} s`;
const s2 = (v: number) => `${(v / 1000).toFixed(2)} s`;

/** The check interval in seconds: BENCH_FAILOVER_INTERVAL (default 10), a divisor of 60 (node-cron's seconds field). */
export function failoverInterval(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.BENCH_FAILOVER_INTERVAL ?? "10";
  const s = Number(raw);
  if (!Number.isInteger(s) || s < 1 || 60 % s !== 0)
    throw new Error(`BENCH_FAILOVER_INTERVAL=${raw}: give whole seconds that divide 60 (5, 10, 15, 20, 30)`);
  return s;
}

export async function benchFailover(o: BenchOptions): Promise<Row[]> {
  const interval = failoverInterval();
  const periodMs = interval * 1000;
  const targetMs = periodMs + 5_000;
  const target = `≤ ${interval + 5} s (check interval + 5 s)`;
  const why = postgresMissing();
  if (why) {
    o.progress(`failover: skipped: ${why}`);
    return [{ figure: FIGURE, credd: "—", reference: "—", target, verdict: "skip", detail: `not measured: ${why}.` }];
  }
  const kills = o.runs(20, 5);
  const dir = o.tempDir("failover-");
  const cluster = await startPostgres();
  const partner = await startPartner(dir);
  const running = new Map<string, RunningDaemon>();
  const started: RunningDaemon[] = [];
  try {
    // Two hosts, each its own state_dir and runtime_dir, the same url and KEK files' contents.
    const configs: Record<string, string> = {};
    for (const host of ["host-a", "host-b"]) {
      const hostDir = join(dir, host);
      mkdirSync(hostDir);
      const urlFile = join(hostDir, "store-url");
      writeFileSync(urlFile, `${cluster.url}\n`, { mode: 0o640 });
      const kekFile = join(hostDir, "store-kek");
      writeFileSync(kekFile, `${Buffer.alloc(32, 7).toString("base64")}\n`, { mode: 0o600 });
      configs[host] = writeManyConfig(hostDir, N, {
        smtpPort: partner.smtp.port,
        smtpCaFile: partner.smtp.caPath,
        stellantisCaFile: partner.stellantisCaFile,
        tokenUrl: partner.idp.tokenUrl,
        checkSchedule: `*/${interval} * * * * *`,
        postgres: { urlFile, kekFile },
      });
    }

    o.progress(`failover: ${N} OAuth2 credentials, certificates made with openssl and imported into the shared store`);
    const { keyPath, certPaths } = await makeCertsFor(
      join(dir, "hand"),
      partner.ca,
      Array.from({ length: N }, (_, i) => mzpOf(i + 1)),
    );
    const { buildCtx } = await fromDist<CtxMod>("cli/context.js");
    const { importCertificate } = await fromDist<ImportMod>("core/import.js");
    const { createLogger } = await fromDist<LogMod>("log.js");
    const ctx = await buildCtx(configs["host-a"]!, { log: createLogger({ level: "silent" }) }); // migrates the database
    const keyText = readFileSync(keyPath, "utf8");
    for (const [i, cred] of ctx.config.credentials.entries()) {
      await importCertificate(ctx, cred, { certText: readFileSync(certPaths[i]!, "utf8"), certFile: certPaths[i]!, keyText, keyFile: keyPath });
    }
    await ctx.store.close();
    if (ctx.config.credentials.length !== N || ctx.config.credentials[0]!.name !== credName(1))
      throw new Error("unexpected credentials in the config");

    // Started as systemd/credd.service starts credd: the same node flags, read from its ExecStart.
    const flags = unitNodeFlags();
    const start = (host: string): RunningDaemon => {
      const d = startDaemon(configs[host]!, { CREDD_HOST_NAME: host }, flags);
      running.set(host, d);
      started.push(d);
      return d;
    };
    const other = (host: string) => (host === "host-a" ? "host-b" : "host-a");
    o.progress(`failover: two \`credd run\` hosts, check_schedule every ${interval} s; host-a starts first and leads`);
    const a = start("host-a");
    const aLeads = await a.waitForLog(leadsNow, periodMs + 60_000);
    await a.waitForLog(checkDone, periodMs + 60_000, a.lines.indexOf(aLeads) + 1);
    let leader = "host-a";
    const b = start("host-b");
    await b.waitForLog(followerTick, periodMs + 60_000);

    const toLead: number[] = [];
    const toCheck: number[] = [];
    const checkTook: number[] = [];
    const trail: string[] = [];
    const failedChecks: number[] = [];
    o.progress(`failover: ${kills} kills of the leader (about ${Math.ceil((kills * 1.6 * interval) / 60)} min)`);
    for (let k = 0; k < kills; k++) {
      const follower = running.get(other(leader))!;
      const victim = running.get(leader)!;
      // Kill at a spread of moments after the check tick (the ticks fall on whole multiples of the
      // interval, wall clock): the k-th kill at (k + 0.5) / kills of the interval. A kill right after
      // a tick waits almost a whole interval for the next; one just before it, almost none.
      const phase = ((k + 0.5) / kills) * periodMs;
      const now = Date.now();
      let killAt = now - (now % periodMs) + phase;
      while (killAt < now + 300) killAt += periodMs;
      await sleep(killAt - Date.now());
      const mark = follower.lines.length;
      const killedAt = Date.now();
      victim.child.kill("SIGKILL");
      const took = await follower.waitForLog(leadsNow, periodMs + 30_000, mark);
      const first = await follower.waitForLog(checkDone, periodMs + 30_000, follower.lines.indexOf(took) + 1);
      await victim.stop();
      toLead.push(at(took) - killedAt);
      toCheck.push(at(first) - killedAt);
      checkTook.push(at(first) - at(took));
      failedChecks.push(Number(first.failed ?? 0));
      trail.push(s1(at(first) - killedAt));
      o.progress(
        `failover: kill ${k + 1}/${kills} of ${leader} at ${s2(killedAt % periodMs)} after a tick: ${other(leader)} leads after ${s2(at(took) - killedAt)}, first check done after ${s2(at(first) - killedAt)}`,
      );
      // The killed host comes back as the new follower.
      const back = start(leader);
      await back.waitForLog(followerTick, periodMs + 60_000);
      leader = other(leader);
    }
    const admin = await cluster.admin();
    const version = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? "";
    await admin.end();
    const lead = summarize(toLead);
    const check = summarize(toCheck);
    const took = summarize(checkTook);
    const ok = check.max <= targetMs;
    const failed = failedChecks.reduce((x, y) => x + y, 0);
    // Errors either host logged over the whole run (level 50 and up), the first one shown.
    const errors = started.flatMap((d) => d.lines.filter((l) => typeof l.level === "number" && l.level >= 50));
    return [
      {
        figure: FIGURE,
        credd: `median ${s1(check.median)}, max ${s1(check.max)}`,
        reference: `check every ${interval} s`,
        target,
        verdict: verdict(ok),
        detail:
          `${kills} kills (SIGKILL) of the leader among two \`credd run\` hosts (node flags from systemd/credd.service: ${flags.join(" ") || "none"}) ` +
          `on one PostgreSQL ${version} (a local cluster, test/helpers/postgres.ts, TCP on 127.0.0.1), ${N} OAuth2 credentials imported, ` +
          `check_schedule "*/${interval} * * * * *"; the killed host started again as the follower each time. Kills spread evenly over the interval ` +
          `(the k-th at (k + 0.5)/${kills} of it after a tick), so the wait for the follower's next tick averages half an interval (${(interval / 2).toFixed(1)} s). ` +
          `Kill → "this host leads now": median ${s2(lead.median)}, max ${s2(lead.max)}; kill → its first "check done" as leader: ` +
          `median ${s2(check.median)}, max ${s2(check.max)} (min ${s2(check.min)}, n=${check.n}); that first check itself (follow the store, check ${N} credentials) ` +
          `median ${s2(took.median)}, max ${s2(took.max)}; ${failed} failed checks; ${errors.length} error lines logged${errors[0] ? ` (first: ${String(errors[0].msg)}: ${String(errors[0].err ?? "")})` : ""}. Every figure in order: ${trail.join(", ")}. ` +
          `Target ${interval + 5} s on the max: ${ok ? "met" : `missed by ${s1(check.max - targetMs)}`}.`,
      },
    ];
  } finally {
    for (const d of running.values()) await d.stop();
    await partner.close();
    await cluster.destroy();
  }
}
