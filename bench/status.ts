// `credd status` over 1,000 credentials against `certbot certificates` over 1,000 lineages, whole
// processes: on SQLite (benchStatus) and on a throwaway PostgreSQL shared store (benchStatusPg).
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { postgresMissing, startPostgres } from "../test/helpers/postgres.js";
import { makeCertbotLineages } from "./certbot-lineages.js";
import { creddMain, distDir, fromDist, ROOT } from "./lib/dist.js";
import { populateDb, populateStore, writeManyConfig } from "./lib/fixtures.js";
import type { BenchOptions } from "./lib/options.js";
import { childEnv, mustRun, timeProcess, which } from "./lib/proc.js";
import { ms, spread, summarize } from "./lib/stats.js";
import { verdict, type Row } from "./lib/table.js";

type ConfigMod = typeof import("../src/config/load.js");
type OpenMod = typeof import("../src/store/open.js");

const N = 1000;

export async function benchStatus(o: BenchOptions): Promise<Row[]> {
  const dir = o.tempDir("status-");
  o.progress(`status: config + database with ${N} credentials`);
  const config = writeManyConfig(dir, N);
  await populateDb(join(dir, "state"), N);
  return [await statusRow(o, dir, config, { store: "SQLite", figure: `\`credd status\`, ${N.toLocaleString("en")} credentials`, times: 20 })];
}

/**
 * The same 1,000 credentials (the same rows, written through the Store API) in a PostgreSQL store on
 * a throwaway local cluster (test/helpers/postgres.ts), with the two hosts of a shared store
 * heartbeating: `credd status` reads it over loopback TCP.
 */
export async function benchStatusPg(o: BenchOptions): Promise<Row[]> {
  const figure = `\`credd status\`, ${N.toLocaleString("en")} credentials, PostgreSQL`;
  const why = postgresMissing();
  if (why) {
    o.progress(`status-pg: skipped: ${why}`);
    return [{ figure, credd: "—", reference: "—", target: "≥ 10× faster than certbot", verdict: "skip", detail: `not measured: ${why}.` }];
  }
  const dir = o.tempDir("status-pg-");
  o.progress(`status-pg: a throwaway PostgreSQL cluster, config + store with ${N} credentials`);
  const cluster = await startPostgres();
  try {
    const urlFile = join(dir, "store-url");
    writeFileSync(urlFile, `${cluster.url}\n`, { mode: 0o640 });
    const kekFile = join(dir, "store-kek");
    writeFileSync(kekFile, `${Buffer.alloc(32, 7).toString("base64")}\n`, { mode: 0o600 });
    const config = writeManyConfig(dir, N, { postgres: { urlFile, kekFile } });
    const { loadConfig } = await fromDist<ConfigMod>("config/load.js");
    const { openStore } = await fromDist<OpenMod>("store/open.js");
    const opened = await openStore(loadConfig(config)); // migrates, as `credd run` does at its start
    try {
      await populateStore(opened.store, N, { hosts: ["host-a", "host-b"] });
    } finally {
      await opened.store.close();
    }
    const admin = await cluster.admin();
    const version = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? "";
    await admin.end();
    return [await statusRow(o, dir, config, { store: `PostgreSQL ${version} (local cluster, TCP on 127.0.0.1)`, figure, times: 10 })];
  } finally {
    await cluster.destroy();
  }
}

/** Times `credd status` on `config` and puts it beside certbot (measured once per bench run). */
async function statusRow(o: BenchOptions, dir: string, config: string, what: { store: string; figure: string; times: number }): Promise<Row> {
  // The validated-config cache (src/config/cache.ts) in a folder of ours, as CacheDirectory=credd
  // gives the daemon's user; the first run fills it. Without it: every run parses the YAML.
  const cacheDir = join(dir, "cache");
  mkdirSync(cacheDir, { mode: 0o750 });
  const env = childEnv({ CREDD_CACHE_DIR: cacheDir });
  const uncachedEnv = childEnv({ CREDD_CACHE_DIR: join(dir, "no-cache-folder") });
  const args = [creddMain(), "--config", config, "status"];
  const runs = o.runs(15, 5);
  o.progress(`status (${what.store}): ${runs} runs of \`credd status\`, with and without the config cache`);
  const timeStatus = async (e: NodeJS.ProcessEnv): Promise<number> => {
    const r = await timeProcess(process.execPath, args, { env: e });
    if (r.code === null || r.code > 2) throw new Error(`credd status exited ${r.code}: ${r.stderr}`);
    const shown = (r.stdout.match(/^fleet-\d{5} \(MZP/gm) ?? []).length;
    if (shown !== N) throw new Error(`credd status showed ${shown} credentials, expected ${N}`);
    return r.ms;
  };
  await timeStatus(env); // warms the page cache and fills the config cache
  const creddMs: number[] = [];
  const uncachedMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    creddMs.push(await timeStatus(env));
    uncachedMs.push(await timeStatus(uncachedEnv));
  }
  const jsonMs: number[] = [];
  for (let i = 0; i < runs; i++) jsonMs.push((await timeProcess(process.execPath, [...args, "--json"], { env })).ms);
  const cpuRuns = o.runs(5, 2);
  const creddCpu: number[] = [];
  const uncachedCpu: number[] = [];
  for (let i = 0; i < cpuRuns; i++) {
    creddCpu.push(cpuMs(process.execPath, args, env));
    uncachedCpu.push(cpuMs(process.execPath, args, uncachedEnv));
  }

  // Where the time goes, in a fresh process: loading the status command's modules (what main.ts
  // imports for `status`), then loading the config and building the view (first call, cold JIT).
  const statusUrl = pathToFileURL(join(distDir(), "cli", "status.js")).href;
  const importArgs = ["--input-type=module", "-e", `await import(${JSON.stringify(statusUrl)})`];
  const importMs: number[] = [];
  const nodeMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await timeProcess(process.execPath, importArgs, { env, cwd: ROOT });
    if (r.code !== 0) throw new Error(`importing cli/status.js failed: ${r.stderr}`);
    importMs.push(r.ms);
    nodeMs.push((await timeProcess(process.execPath, ["-e", "0"], { env })).ms);
  }
  const phases = await timeStatusPhases(config, env);
  const uncachedPhases = await timeStatusPhases(config, uncachedEnv);

  const certbotMs = await timeCertbot(o);
  const c = summarize(creddMs);
  const u = summarize(uncachedMs);
  const cc = summarize(creddCpu).median;
  const uc = summarize(uncachedCpu).median;
  const j = summarize(jsonMs);
  const imp = summarize(importMs);
  const nd = summarize(nodeMs);
  const target = `≥ ${what.times}× faster than certbot`;
  const detailCredd =
    `\`credd status\` (text) over ${N.toLocaleString("en")} credentials on ${what.store}, config from the cache, ${spread(c)}; \`status --json\` ${ms(j.median)}; ` +
    `without the cache (every load parses the YAML: a reader with no cache folder, the first load after a change) ${spread(u)}, ` +
    `loadConfig ${ms(uncachedPhases.loadConfig)} of it. With the cache: node starting ${ms(nd.median)}; ` +
    `node + importing the status command's modules ${ms(imp.median)}; then, first call in a fresh process, loadConfig ${ms(phases.loadConfig)}, ` +
    `opening the store ${ms(phases.openStore)}, buildStatus ${ms(phases.buildStatus)} (medians of ${phases.n} processes); the rest (printing ${N.toLocaleString("en")} ` +
    `credentials as text, exit) ${ms(c.median - imp.median - phases.loadConfig - phases.openStore - phases.buildStatus)}. ` +
    `Store filled through the Store API (live certificate, check heartbeat; tokens on half, a pending renewal on 1 in 10).`;
  if (!certbotMs) {
    return {
      figure: what.figure,
      credd: ms(c.median),
      reference: "certbot: skipped",
      target,
      verdict: "skip",
      detail: `${detailCredd} certbot is not installed (the bench apt-gets it only when run as root), so the ratio is not measured.`,
    };
  }
  const cb = summarize(certbotMs.times);
  const ratio = cb.median / c.median;
  return {
    figure: what.figure,
    credd: ms(c.median),
    reference: `certbot certificates ${ms(cb.median)}`,
    target,
    verdict: verdict(ratio >= what.times),
    detail:
      `${ratio.toFixed(1)}× faster than certbot (${(cb.median / u.median).toFixed(1)}× without the config cache). ` +
      `In CPU time (user + system, which other load on the machine moves far less than wall time): credd ${ms(cc)} with the cache, ` +
      `${ms(uc)} without, certbot ${ms(certbotMs.cpu)}: ${(certbotMs.cpu / cc).toFixed(1)}× and ${(certbotMs.cpu / uc).toFixed(1)}×. ${detailCredd} certbot ${certbotMs.version}: \`certbot certificates --config-dir --work-dir --logs-dir\` over ${N} ` +
      `lineages (ECDSA P-256, certbot's default; made with openssl, renewal/*.conf + live/ symlinks + archive/) ${spread(cb)}.`,
  };
}

type CertbotTimes = { times: number[]; cpu: number; version: string } | undefined;
/** certbot's figure is the same reference for both stores: measured once per bench run. */
let certbotOnce: Promise<CertbotTimes> | undefined;
const timeCertbot = (o: BenchOptions): Promise<CertbotTimes> => (certbotOnce ??= measureCertbot(o, o.tempDir("certbot-")));

async function measureCertbot(o: BenchOptions, dir: string): Promise<CertbotTimes> {
  if (!which("certbot")) {
    if (process.getuid?.() === 0 && which("apt-get")) {
      o.progress("status: certbot is absent; installing Debian's certbot (apt-get, as root)");
      try {
        mustRun("sh", ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq certbot >/dev/null"]);
      } catch (err) {
        o.progress(`status: could not install certbot: ${(err as Error).message.split("\n")[0]}`);
      }
    }
    if (!which("certbot")) return undefined;
  }
  const version = mustRun("certbot", ["--version"])
    .trim()
    .replace(/^certbot\s+/, "");
  const configDir = join(dir, "certbot", "config");
  o.progress(`status: ${N} certbot lineages with openssl (one certificate each; takes a while)`);
  await makeCertbotLineages(configDir, N, version);
  const args = ["certificates", "--config-dir", configDir, "--work-dir", join(dir, "certbot", "work"), "--logs-dir", join(dir, "certbot", "logs")];
  const runs = o.runs(3, 1);
  o.progress(`status: ${runs} run(s) of \`certbot certificates\` (about 5 s each)`);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await timeProcess("certbot", args, { timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`certbot certificates exited ${r.code}: ${r.stderr}`);
    const found = (r.stdout.match(/Certificate Name:/g) ?? []).length;
    if (found !== N) throw new Error(`certbot certificates listed ${found} lineages, expected ${N}:\n${r.stderr.slice(-2000)}`);
    times.push(r.ms);
  }
  const cpu = cpuMs("certbot", args);
  return { times, cpu, version };
}

/**
 * The CPU time (user + system, in ms) a whole process and its children used, from the shell's
 * `times` after it exits: a figure that a busy machine moves far less than the wall time.
 */
function cpuMs(cmd: string, args: string[], env?: NodeJS.ProcessEnv): number {
  const r = spawnSync("sh", ["-c", '"$@" >/dev/null 2>&1; times', "sh", cmd, ...args], { env, encoding: "utf8", timeout: 600_000 });
  // `times` prints the shell's user and system time, then its children's: "0m1.720000s 0m0.110000s".
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(r.stdout.trim().split("\n").at(-1) ?? "");
  if (!m) throw new Error(`no CPU time from \`times\` for ${cmd}: ${r.stdout}${r.stderr}`);
  return (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000;
}

/**
 * The phases of `credd status` timed inside fresh processes (cold, as the command runs them):
 * bench/status-phases.mjs does what cli/status.ts does up to printing, with a clock around each step.
 */
async function timeStatusPhases(
  config: string,
  env: NodeJS.ProcessEnv,
): Promise<{ n: number; loadConfig: number; openStore: number; buildStatus: number }> {
  const script = fileURLToPath(new URL("./status-phases.mjs", import.meta.url));
  const got: Record<string, number[]> = { loadConfig: [], openStore: [], buildStatus: [] };
  const n = 5;
  for (let i = 0; i < n; i++) {
    const r = await timeProcess(process.execPath, [script, distDir(), config], { env, cwd: ROOT });
    if (r.code !== 0) throw new Error(`status-phases.mjs failed: ${r.stderr}`);
    const t = JSON.parse(r.stderr.trim().split("\n").at(-1)!) as Record<string, number>;
    for (const k of Object.keys(got)) got[k]!.push(t[k]!);
  }
  const m = (k: string) => summarize(got[k]!).median;
  return { n, loadConfig: m("loadConfig"), openStore: m("openStore"), buildStatus: m("buildStatus") };
}
