// The proxy of `credd run` against direct mutual TLS with keep-alive, side by side in one run on
// loopback against the same API peer: added latency (one client) and throughput (many clients).
// BENCH_PROXY_PROFILE=DIR runs credd run with --cpu-prof into DIR (to see where its time goes).
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { join } from "node:path";
import { writeConfig } from "../test/helpers/credd.js";
import { dnFor } from "../test/helpers/credd.js";
import { makeKeyAndCert } from "../test/helpers/openssl.js";
import { startDaemon } from "./lib/daemon.js";
import { creddMain } from "./lib/dist.js";
import type { BenchOptions } from "./lib/options.js";
import { startPartner } from "./lib/partner.js";
import { childEnv, mustRunAsync, procCpuMs, procMem } from "./lib/proc.js";
import { mib } from "./lib/stats.js";
import { verdict, type Row } from "./lib/table.js";
import { unitNodeFlags } from "./lib/unit.js";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

type Send = () => Promise<number>;

/** `clients` closed-loop workers for `ms`: every latency in ms, and requests per second. */
async function load(send: Send, clients: number, ms: number): Promise<{ lat: number[]; rps: number; failed: number }> {
  const lat: number[] = [];
  let failed = 0;
  const end = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const status = await send().catch(() => 0);
      if (status === 200) lat.push(performance.now() - t0);
      else failed++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, worker));
  return { lat, rps: lat.length / ((performance.now() - t0) / 1000), failed };
}

function get(request: typeof http.request, opts: http.RequestOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(opts, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

const q = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
const f2 = (v: number) => `${v.toFixed(2)} ms`;

export async function benchProxy(o: BenchOptions): Promise<Row[]> {
  const dir = o.tempDir("proxy-");
  const partner = await startPartner(dir);
  const port = await freePort();
  try {
    const config = writeConfig(
      dir,
      `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
smtp: { url: "smtp://127.0.0.1:${partner.smtp.port}", from: "credd <credd@partner.example>", ca_file: ${partner.smtp.caPath} }
alerts: { to: [ops@partner.example] }
stellantis: { contact: connectedcar@stellantis.example, ca_file: ${partner.stellantisCaFile} }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    oauth: { token_url: "${partner.idp.tokenUrl}", client_id: partner-client, scope: openid }
    api: { base_url: "${partner.idp.apiBaseUrl}" }
    proxy: { listen: "127.0.0.1:${port}" }
`,
    );
    const hand = makeKeyAndCert(dir, dnFor("MZP128745"), { ca: partner.ca, days: 365 });
    await mustRunAsync(process.execPath, [creddMain(), "--config", config, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath], {
      env: childEnv(),
    });
    // With the unit's node flags (--no-opt), as systemd runs it.
    const profile = process.env.BENCH_PROXY_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROXY_PROFILE}`] : [];
    const d = startDaemon(config, {}, [...unitNodeFlags(), ...profile]);
    try {
      await d.waitForLog((l) => l.msg === "proxy listening", 60_000);
      const token = readFileSync(join(dir, "run", "fleet-prod", "token"), "utf8").trim();
      const api = new URL(partner.idp.apiBaseUrl);
      const path = `${api.pathname}/fleets`;
      const direct = new https.Agent({
        keepAlive: true,
        maxSockets: 64,
        cert: hand.certPem,
        key: readFileSync(hand.keyPath, "utf8"),
        ca: partner.idp.serverCaPem,
      });
      const viaProxy = new http.Agent({ keepAlive: true, maxSockets: 64 });
      const sendDirect: Send = () =>
        get(https.request, {
          host: api.hostname,
          port: api.port,
          path: `${path}?client_id=partner-client`,
          agent: direct,
          headers: { Authorization: `Bearer ${token}`, Accept: "application/hal+json" },
        });
      const sendProxy: Send = () =>
        get(http.request, { host: "127.0.0.1", port, path, agent: viaProxy, headers: { Accept: "application/hal+json" } });

      const secs = o.quick ? 2_000 : 5_000;
      const rounds = o.runs(3, 1);
      // Warm both paths (TLS handshakes, JIT), then alternate so drift on a shared machine hits both.
      await load(sendDirect, 4, 500);
      await load(sendProxy, 4, 500);
      const one = { direct: [] as number[], proxy: [] as number[] };
      const many = { direct: [] as number[], proxy: [] as number[] };
      let failed = 0;
      let rss = 0;
      /** credd run's CPU time and the requests it served in the many-client proxy rounds. */
      let cpuMs = 0;
      let served = 0;
      const clients = 32;
      o.progress(`proxy: ${rounds} rounds of ${secs / 1000} s per path, 1 client then ${clients} clients, alternating direct and proxy`);
      for (let r = 0; r < rounds; r++) {
        for (const [name, send] of [
          ["direct", sendDirect],
          ["proxy", sendProxy],
        ] as const) {
          const a = await load(send, 1, secs);
          one[name].push(...a.lat);
          const cpu0 = procCpuMs(d.child.pid!);
          const b = await load(send, clients, secs);
          many[name].push(b.rps);
          if (name === "proxy") {
            cpuMs += procCpuMs(d.child.pid!) - cpu0;
            served += b.lat.length + b.failed;
          }
          failed += a.failed + b.failed;
          if (name === "proxy") rss = Math.max(rss, procMem(d.child.pid!).rss);
        }
      }
      direct.destroy();
      viaProxy.destroy();
      const sd = [...one.direct].sort((x, y) => x - y);
      const sp = [...one.proxy].sort((x, y) => x - y);
      const p50 = q(sp, 0.5) - q(sd, 0.5);
      const p99 = q(sp, 0.99) - q(sd, 0.99);
      const rpsD = many.direct.reduce((s, x) => s + x, 0) / many.direct.length;
      const rpsP = many.proxy.reduce((s, x) => s + x, 0) / many.proxy.length;
      const ratio = rpsP / rpsD;
      const how = `Node closed-loop client on loopback (same process as the API peer), keep-alive both ways; direct = https.Agent with the client certificate and the token; ${rounds} round(s) of ${secs / 1000} s per path alternating; failed requests ${failed}`;
      return [
        {
          figure: "proxy: added latency p50 (1 client)",
          credd: f2(p50),
          reference: `direct ${f2(q(sd, 0.5))}, proxy ${f2(q(sp, 0.5))}`,
          target: "≤ 1 ms",
          verdict: failed > 0 ? "ERROR" : verdict(p50 <= 1),
          detail: `${how}; n=${sd.length} direct, ${sp.length} proxy`,
        },
        {
          figure: "proxy: added latency p99 (1 client)",
          credd: f2(p99),
          reference: `direct ${f2(q(sd, 0.99))}, proxy ${f2(q(sp, 0.99))}`,
          target: "≤ 5 ms",
          verdict: failed > 0 ? "ERROR" : verdict(p99 <= 5),
          detail: how,
        },
        {
          figure: `proxy: throughput vs direct (${clients} clients)`,
          credd: `${(ratio * 100).toFixed(0)} %`,
          reference: `direct ${rpsD.toFixed(0)} req/s, proxy ${rpsP.toFixed(0)} req/s`,
          target: "≥ 80 %",
          verdict: failed > 0 ? "ERROR" : verdict(ratio >= 0.8),
          detail: `${how}; the proxy logs one info line per request to stdout (as in production)`,
        },
        {
          figure: `proxy: credd run CPU per request (${clients} clients)`,
          credd: `${((cpuMs / served) * 1000).toFixed(0)} µs`,
          reference: "—",
          target: "—",
          verdict: "info",
          detail: `user + system CPU time of credd run (/proc/PID/stat) over the ${clients}-client proxy rounds, divided by the ${served} requests served: what one request costs credd, whatever else shares the cores`,
        },
        {
          figure: "proxy: credd run RSS under load",
          credd: mib(rss),
          reference: "—",
          target: "—",
          verdict: "info",
          detail: `VmRSS of credd run (with the unit's node flags: ${unitNodeFlags().join(" ") || "none"}), highest seen after a ${clients}-client round`,
        },
      ];
    } finally {
      await d.stop();
    }
  } finally {
    await partner.close();
  }
}
