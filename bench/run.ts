// `npm run bench`: measures credd against openssl and certbot side by side and prints one table.
// BENCH_QUICK=1 fewer runs; BENCH_IDLE_SECONDS (default 60); BENCH_ONLY=key,status,status-pg,check,idle,inbox,flood,imap,proxy,failover;
// BENCH_FAILOVER_INTERVAL (check interval of the failover figure, seconds, default 10);
// BENCH_NO_BUILD=1 measures dist/ as it is; BENCH_KEEP=1 keeps the temp folders.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { benchCheck } from "./check.js";
import { benchFailover } from "./failover.js";
import { benchIdle } from "./idle.js";
import { benchInboxFlood } from "./inbox-flood.js";
import { benchImapToken } from "./imap-token.js";
import { benchInboxToken } from "./inbox-token.js";
import { benchKeyCsr } from "./key-csr.js";
import { buildPrivate, creddMain } from "./lib/dist.js";
import { benchOptions, type BenchOptions } from "./lib/options.js";
import { which } from "./lib/proc.js";
import { renderTable, type Row } from "./lib/table.js";
import { benchProxy } from "./proxy.js";
import { benchStatus, benchStatusPg } from "./status.js";

const SECTIONS: { key: string; name: string; run: (o: BenchOptions) => Promise<Row[]> }[] = [
  { key: "key", name: "key + CSR", run: benchKeyCsr },
  { key: "status", name: "credd status", run: benchStatus },
  { key: "status-pg", name: "credd status on PostgreSQL", run: benchStatusPg },
  { key: "check", name: "expiry check", run: benchCheck },
  { key: "idle", name: "idle RSS", run: benchIdle },
  { key: "inbox", name: "inbox → token", run: benchInboxToken },
  { key: "flood", name: "inbox flood", run: benchInboxFlood },
  { key: "imap", name: "IMAP reply → token", run: benchImapToken },
  { key: "proxy", name: "API proxy", run: benchProxy },
  { key: "failover", name: "failover", run: benchFailover },
];

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return r.status === 0 ? `${r.stdout}${r.stderr}`.trim().split("\n")[0]! : "absent";
}

function machine(): string {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown CPU";
  const nproc = firstLine("nproc", []);
  return (
    `nproc ${nproc}, ${model}, node ${process.version}, ${firstLine("openssl", ["version"]).replace(/ \(Library.*$/, "")}, ` +
    `certbot ${which("certbot") ? firstLine("certbot", ["--version"]).replace(/^certbot\s+/, "") : "absent"}`
  );
}

/** A private build of src/ as it is now, so a `npm run build` elsewhere cannot swap or remove it mid-run. */
function build(o: BenchOptions, root: string): void {
  if (process.env.BENCH_NO_BUILD === "1") {
    if (!existsSync(creddMain())) throw new Error(`BENCH_NO_BUILD=1 but ${creddMain()} is missing: run \`npm run build\``);
    return;
  }
  o.progress("building src/ into the bench's temp folder (tsc -p tsconfig.json --outDir ...)");
  const complaints = buildPrivate(join(root, "build"));
  if (complaints) o.progress(`tsc reported errors (measuring what it emitted):\n${complaints.split("\n").slice(0, 5).join("\n")}`);
}

async function main(): Promise<number> {
  const root = mkdtempSync(join(tmpdir(), "credd-bench-"));
  const o = benchOptions(root);
  const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim());
  const started = new Date();
  const loadBefore = loadavg()[0]!;
  const rows: Row[] = [];
  try {
    build(o, root);
    for (const s of SECTIONS) {
      if (only && !only.includes(s.key)) continue;
      try {
        rows.push(...(await s.run(o)));
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        o.progress(`${s.name} failed: ${msg}`);
        rows.push({ figure: s.name, credd: "—", reference: "—", target: "—", verdict: "ERROR", detail: `not measured: ${msg.split("\n")[0]}` });
      }
    }
  } finally {
    if (process.env.BENCH_KEEP === "1") o.progress(`temp folders kept in ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
  const minutes = ((Date.now() - started.getTime()) / 60_000).toFixed(1);
  console.log(`credd bench ${started.toISOString().slice(0, 10)}${o.quick ? " (BENCH_QUICK=1)" : ""}: ${machine()}`);
  console.log(`1-min load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after; ${minutes} min in all\n`);
  console.log(renderTable(rows));
  return rows.some((r) => r.verdict === "ERROR") ? 1 : 0;
}

process.exitCode = await main();
// The loopback servers are closed; a stray handle (a keep-alive socket) must not hold the bench open.
setTimeout(() => process.exit(), 1000).unref();
