// Idle memory of `credd run` with 100 OAuth2 credentials: VmRSS from /proc after BENCH_IDLE_SECONDS (default 60).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startDaemon } from "./lib/daemon.js";
import { fromDist } from "./lib/dist.js";
import { credName, mzpOf, writeManyConfig } from "./lib/fixtures.js";
import type { BenchOptions } from "./lib/options.js";
import { unitNodeFlags } from "./lib/unit.js";
import { makeCertsFor, startPartner } from "./lib/partner.js";
import { childEnv, procMem, sleep } from "./lib/proc.js";
import { mib } from "./lib/stats.js";
import { verdict, type Row } from "./lib/table.js";

type CtxMod = typeof import("../src/cli/context.js");
type ImportMod = typeof import("../src/core/import.js");
type LogMod = typeof import("../src/log.js");

const N = 100;
const MIB = 1048576;

/** utime + stime of a process in ms (clock ticks of 10 ms on Linux). */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

export async function benchIdle(o: BenchOptions): Promise<Row[]> {
  const seconds = Number(process.env.BENCH_IDLE_SECONDS ?? "60");
  const dir = o.tempDir("idle-");
  const partner = await startPartner(dir);
  try {
    o.progress(`idle: ${N} OAuth2 credentials, certificates made with openssl and imported (each fetches its first token)`);
    const config = writeManyConfig(dir, N, {
      smtpPort: partner.smtp.port,
      smtpCaFile: partner.smtp.caPath,
      stellantisCaFile: partner.stellantisCaFile,
      tokenUrl: partner.idp.tokenUrl,
    });
    const names = Array.from({ length: N }, (_, i) => credName(i + 1));
    const { keyPath, certPaths } = await makeCertsFor(
      join(dir, "hand"),
      partner.ca,
      names.map((_, i) => mzpOf(i + 1)),
    );
    const { buildCtx } = await fromDist<CtxMod>("cli/context.js");
    const { importCertificate } = await fromDist<ImportMod>("core/import.js");
    const { createLogger } = await fromDist<LogMod>("log.js");
    const ctx = await buildCtx(config, { log: createLogger({ level: "silent" }) });
    const keyText = readFileSync(keyPath, "utf8");
    for (const [i, cred] of ctx.config.credentials.entries()) {
      await importCertificate(ctx, cred, { certText: readFileSync(certPaths[i]!, "utf8"), certFile: certPaths[i]!, keyText, keyFile: keyPath });
    }
    await ctx.store.close();
    if (partner.idp.tokensIssued.length < N) throw new Error(`imports fetched ${partner.idp.tokensIssued.length} tokens, expected ${N}`);

    // Started as systemd/credd.service starts it: the same node flags, read from its ExecStart.
    const flags = unitNodeFlags();
    const started = ["node", ...flags, "dist/main.js", "run"].join(" ");
    o.progress(`idle: \`${started}\` started; reading VmRSS after ${seconds} s`);
    const d = startDaemon(config, {}, flags);
    let atReady: { rss: number; hwm: number };
    let cpuIdle: number;
    let mem: { rss: number; hwm: number };
    const trail: string[] = [];
    try {
      await d.waitForLog((l) => l.msg === "check done", 120_000);
      const pid = d.child.pid!;
      atReady = procMem(pid);
      const readyAt = performance.now();
      const cpu0 = cpuMs(pid);
      // Sampled along the way to tell a plateau from growth.
      const every = Math.max(1, Math.round(seconds / 6));
      for (let t = 1; t <= seconds; t++) {
        await sleep(readyAt + t * 1000 - performance.now());
        if (t === seconds || t % every === 0) trail.push(`${t} s: ${(procMem(pid).rss / MIB).toFixed(0)}`);
      }
      mem = procMem(pid);
      cpuIdle = (cpuMs(pid) - cpu0) / ((performance.now() - readyAt) / 1000);
      const errors = d.lines.filter((l) => typeof l.level === "number" && l.level >= 50);
      if (errors.length) throw new Error(`credd run logged errors while idle: ${JSON.stringify(errors[0])}`);
    } finally {
      await d.stop();
    }
    const base = await nodeBaseline();
    return [
      {
        figure: `idle RSS, \`credd run\`, ${N} credentials`,
        credd: mib(mem.rss),
        reference: `bare node ${mib(base)}`,
        target: "≤ 64 MiB",
        verdict: verdict(mem.rss <= 64 * MIB),
        detail:
          `\`${started}\` (node flags from systemd/credd.service's ExecStart: ${flags.length ? flags.join(" ") : "none"}); ` +
          `VmRSS from /proc/PID/status ${seconds} s after the daemon's first "check done" (${N} OAuth2 credentials, live certificates imported, ` +
          `tokens valid; default ticks); ${mib(atReady.rss)} at that first check, peak VmHWM ${mib(mem.hwm)}; ` +
          `VmRSS MiB along the way: ${trail.join(", ")}; CPU while idle ${cpuIdle.toFixed(0)} ms per second. Bare node: \`node -e "setInterval(...)"\` VmRSS after 2 s.`,
      },
    ];
  } finally {
    await partner.close();
  }
}

async function nodeBaseline(): Promise<number> {
  const c = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { env: childEnv(), stdio: "ignore" });
  await sleep(2000);
  const { rss } = procMem(c.pid!);
  c.kill("SIGTERM");
  return rss;
}
