// `credd status` over 1,000 credentials against `certbot certificates` over 1,000 lineages, whole processes.
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { makeCertbotLineages } from "./certbot-lineages.js";
import { creddMain, distDir, ROOT } from "./lib/dist.js";
import { populateDb, writeManyConfig } from "./lib/fixtures.js";
import type { BenchOptions } from "./lib/options.js";
import { childEnv, mustRun, timeProcess, which } from "./lib/proc.js";
import { ms, spread, summarize } from "./lib/stats.js";
import { verdict, type Row } from "./lib/table.js";

const N = 1000;

export async function benchStatus(o: BenchOptions): Promise<Row[]> {
  const dir = o.tempDir("status-");
  o.progress(`status: config + database with ${N} credentials`);
  const config = writeManyConfig(dir, N);
  await populateDb(join(dir, "state"), N);
  // The validated-config cache (src/config/cache.ts) in a folder of ours, as CacheDirectory=credd
  // gives the daemon's user; the first run fills it. Without it: every run parses the YAML.
  const cacheDir = join(dir, "cache");
  mkdirSync(cacheDir, { mode: 0o750 });
  const env = childEnv({ CREDD_CACHE_DIR: cacheDir });
  const uncachedEnv = childEnv({ CREDD_CACHE_DIR: join(dir, "no-cache-folder") });
  const args = [creddMain(), "--config", config, "status"];
  const runs = o.runs(15, 5);
  o.progress(`status: ${runs} runs of \`credd status\`, with and without the config cache`);
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

  const certbotMs = await timeCertbot(o, dir);
  const c = summarize(creddMs);
  const u = summarize(uncachedMs);
  const cc = summarize(creddCpu).median;
  const uc = summarize(uncachedCpu).median;
  const j = summarize(jsonMs);
  const imp = summarize(importMs);
  const nd = summarize(nodeMs);
  const detailCredd =
    `\`credd status\` (text) over ${N.toLocaleString("en")} credentials, config from the cache, ${spread(c)}; \`status --json\` ${ms(j.median)}; ` +
    `without the cache (every load parses the YAML: a reader with no cache folder, the first load after a change) ${spread(u)}, ` +
    `loadConfig ${ms(uncachedPhases.loadConfig)} of it. With the cache: node starting ${ms(nd.median)}; ` +
    `node + importing the status command's modules ${ms(imp.median)}; then, first call in a fresh process, loadConfig ${ms(phases.loadConfig)}, ` +
    `openDb ${ms(phases.openDb)}, buildStatus ${ms(phases.buildStatus)} (medians of ${phases.n} processes); the rest (printing ${N.toLocaleString("en")} ` +
    `credentials as text, exit) ${ms(c.median - imp.median - phases.loadConfig - phases.openDb - phases.buildStatus)}. ` +
    `Database filled through src/store (live certificate, check heartbeat; tokens on half, a pending renewal on 1 in 10).`;
  if (!certbotMs) {
    return [
      {
        figure: `\`credd status\`, ${N.toLocaleString("en")} credentials`,
        credd: ms(c.median),
        reference: "certbot: skipped",
        target: "≥ 20× faster than certbot",
        verdict: "skip",
        detail: `${detailCredd} certbot is not installed (the bench apt-gets it only when run as root), so the ratio is not measured.`,
      },
    ];
  }
  const cb = summarize(certbotMs.times);
  const ratio = cb.median / c.median;
  return [
    {
      figure: `\`credd status\`, ${N.toLocaleString("en")} credentials`,
      credd: ms(c.median),
      reference: `certbot certificates ${ms(cb.median)}`,
      target: "≥ 20× faster than certbot",
      verdict: verdict(ratio >= 20),
      detail:
        `${ratio.toFixed(1)}× faster than certbot (${(cb.median / u.median).toFixed(1)}× without the config cache). ` +
        `In CPU time (user + system, which other load on the machine moves far less than wall time): credd ${ms(cc)} with the cache, ` +
        `${ms(uc)} without, certbot ${ms(certbotMs.cpu)}: ${(certbotMs.cpu / cc).toFixed(1)}× and ${(certbotMs.cpu / uc).toFixed(1)}×. ${detailCredd} certbot ${certbotMs.version}: \`certbot certificates --config-dir --work-dir --logs-dir\` over ${N} ` +
        `lineages (ECDSA P-256, certbot's default; made with openssl, renewal/*.conf + live/ symlinks + archive/) ${spread(cb)}.`,
    },
  ];
}

async function timeCertbot(o: BenchOptions, dir: string): Promise<{ times: number[]; cpu: number; version: string } | undefined> {
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
): Promise<{ n: number; loadConfig: number; openDb: number; buildStatus: number }> {
  const script = fileURLToPath(new URL("./status-phases.mjs", import.meta.url));
  const got: Record<string, number[]> = { loadConfig: [], openDb: [], buildStatus: [] };
  const n = 5;
  for (let i = 0; i < n; i++) {
    const r = await timeProcess(process.execPath, [script, distDir(), config], { env, cwd: ROOT });
    if (r.code !== 0) throw new Error(`status-phases.mjs failed: ${r.stderr}`);
    const t = JSON.parse(r.stderr.trim().split("\n").at(-1)!) as Record<string, number>;
    for (const k of Object.keys(got)) got[k]!.push(t[k]!);
  }
  const m = (k: string) => summarize(got[k]!).median;
  return { n, loadConfig: m("loadConfig"), openDb: m("openDb"), buildStatus: m("buildStatus") };
}
