// 10,000 junk files dropped in the inbox at once: the longest event-loop stall of the daemon while it
// works through them (perf_hooks.monitorEventLoopDelay), in-process on the bench's build of `credd run`.
import { mkdirSync, writeFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { SUBJECT_YAML, writeConfig } from "../test/helpers/credd.js";
import { fromDist } from "./lib/dist.js";
import type { BenchOptions } from "./lib/options.js";
import { mustRunAsync, sleep } from "./lib/proc.js";
import { ms } from "./lib/stats.js";
import { verdict, type Row } from "./lib/table.js";

type LoadMod = typeof import("../src/config/load.js");
type StoreMod = typeof import("../src/store/sqlite-store.js");
type RunMod = typeof import("../src/daemon/run.js");
type LogMod = typeof import("../src/log.js");

const FILES = 10_000;
const TARGET_MS = 200;
const POLL_MS = 50;

export async function benchInboxFlood(o: BenchOptions): Promise<Row[]> {
  const dir = o.tempDir("flood-");
  const inbox = join(dir, "inbox");
  const staging = join(dir, "staging"); // same file system: the drop is renames only
  mkdirSync(staging);
  const config = writeConfig(
    dir,
    `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
inbox_dir: ${inbox}
smtp: { url: "smtp://127.0.0.1:9", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example] }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: ${SUBJECT_YAML}
`,
  );
  const files = o.quick ? FILES / 5 : FILES;
  o.progress(`inbox flood: ${files} junk files written to a staging folder`);
  for (let i = 0; i < files; i++) writeFileSync(join(staging, `junk-${String(i).padStart(5, "0")}.pem`), `not a certificate ${i}\n`);

  // As `credd run` does (src/cli/commands.ts): V8's optimizing compiler off. This section runs last.
  setFlagsFromString("--no-opt");
  const { loadConfig } = await fromDist<LoadMod>("config/load.js");
  const { openSqliteStore } = await fromDist<StoreMod>("store/sqlite-store.js");
  const { startDaemon } = await fromDist<RunMod>("daemon/run.js");
  const { createLogger } = await fromDist<LogMod>("log.js");
  const cfg = loadConfig(config);
  const ctx = {
    config: cfg,
    store: openSqliteStore(cfg.state_dir),
    clock: { now: () => new Date() },
    log: createLogger({ level: "silent" }),
    mailer: () => {
      throw new Error("the bench's flood sends no email");
    },
  };
  const daemon = await startDaemon(ctx, { inboxPollMs: POLL_MS, inboxMinAgeMs: 0, outboxTickMs: 200 });
  try {
    await sleep(1500); // the first check done, the daemon idle
    // The first inbox file loads the certificate code (lazily: an empty inbox never needs it). That
    // one-time load is its own figure, so the flood below measures the inbox work alone.
    const warm = monitorEventLoopDelay({ resolution: 10 });
    warm.enable();
    writeFileSync(join(inbox, "first.pem"), "not a certificate\n");
    for (let i = 0; (await readdir(inbox)).includes("first.pem"); i++) {
      if (i > 240) throw new Error("the first file was not taken within a minute");
      await sleep(250);
    }
    warm.disable();
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    const t0 = performance.now();
    // The drop by another process (mv), so that this process's event loop measures only credd.
    o.progress(`inbox flood: ${files} files moved into the inbox at once (mv), the daemon running`);
    // Not spawnSync: it would stop this event loop for as long as mv runs, and count as credd's stall.
    await mustRunAsync("sh", ["-c", `cd "${staging}" && find . -maxdepth 1 -type f -name 'junk-*' -exec mv -t "${inbox}" {} +`]);
    let left = files;
    const deadline = t0 + 600_000;
    while (left > 0) {
      if (performance.now() > deadline) throw new Error(`${left} files still in the inbox after 10 min`);
      await sleep(250);
      left = (await readdir(inbox)).filter((n) => n.startsWith("junk-")).length;
    }
    const took = performance.now() - t0;
    h.disable();
    const rejected = (await readdir(join(inbox, "rejected"))).filter((n) => n.startsWith("junk-") && !n.endsWith(".reason")).length;
    if (rejected !== files) throw new Error(`${rejected} of ${files} files in rejected/`);
    const max = h.max / 1e6;
    const p99 = h.percentile(99) / 1e6;
    const firstMax = warm.max / 1e6;
    return [
      {
        figure: "inbox: first file, certificate code loaded",
        credd: ms(firstMax),
        reference: "—",
        target: "—",
        verdict: "info",
        detail: `The longest event-loop stall while the daemon takes its first inbox file, which loads the certificate parsing code once (ingest.js is imported lazily so that an idle daemon never loads it).`,
      },
      {
        figure: `inbox flood: longest event-loop stall (${files} junk files)`,
        credd: ms(max),
        reference: "—",
        target: `< ${TARGET_MS} ms`,
        verdict: verdict(max < TARGET_MS),
        detail:
          `\`credd run\` in-process (the bench's build, \`--no-opt\` as \`credd run\` sets it, inbox poll ${POLL_MS} ms, min age 0); ${files} junk files moved into inbox_dir at once by mv; ` +
          `monitorEventLoopDelay (10 ms resolution) from the drop until the inbox was empty: max ${ms(max)}, p99 ${ms(p99)}, mean ${ms(h.mean / 1e6)}; ` +
          `all ${files} in rejected/ with a reason after ${(took / 1000).toFixed(1)} s (${Math.round(files / (took / 1000))} files/s). ` +
          "Before issue 13 the whole inbox was one synchronous batch: 46 s without a turn of the loop for 10,000 files.",
      },
    ];
  } finally {
    await daemon.stop("bench done");
  }
}
