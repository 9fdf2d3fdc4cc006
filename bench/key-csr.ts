// Key + CSR: credd's key/CSR code as a whole process against `openssl req -new -newkey`, and per CSR in-process.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { creddMain, distDir, fromDist } from "./lib/dist.js";
import type { BenchOptions } from "./lib/options.js";
import { childEnv, mustRun, timeProcess } from "./lib/proc.js";
import { ms, spread, summarize } from "./lib/stats.js";
import type { Row } from "./lib/table.js";
import { dnFor, smallConfigYaml, writeConfig } from "../test/helpers/credd.js";
import { makeKeyAndCert, subjFromDn } from "../test/helpers/openssl.js";

type KeysMod = typeof import("../src/pki/keys.js");
type CsrMod = typeof import("../src/pki/csr.js");

const ONCE = fileURLToPath(new URL("./key-csr-once.mjs", import.meta.url));
const DN = dnFor("MZP128745");
const SPEC = { type: "rsa", bits: 2048 } as const;

export async function benchKeyCsr(o: BenchOptions): Promise<Row[]> {
  const dir = o.tempDir("keycsr-");
  // RSA prime search makes single runs vary several-fold (60 ms to 450 ms on both sides): with 21
  // runs the ratio of medians moved by ±0.2 from one bench to the next, so this figure takes more.
  const n = o.runs(81, 15);
  o.progress(`key + CSR: ${n} whole-process runs each of credd and openssl, interleaved`);
  const creddMs: number[] = [];
  const opensslMs: number[] = [];
  const subj = subjFromDn(DN);
  const runCredd = async () => {
    const r = await timeProcess(process.execPath, [ONCE, distDir(), join(dir, "k.pem"), join(dir, "c.pem")]);
    if (r.code !== 0) throw new Error(`key-csr-once.mjs exited ${r.code}: ${r.stderr}`);
    creddMs.push(r.ms);
  };
  const runOpenssl = async () => {
    const r = await timeProcess("openssl", [
      "req",
      "-new",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-sha256",
      "-subj",
      subj,
      "-keyout",
      join(dir, "ok.pem"),
      "-out",
      join(dir, "oc.pem"),
    ]);
    if (r.code !== 0) throw new Error(`openssl req exited ${r.code}: ${r.stderr}`);
    opensslMs.push(r.ms);
  };
  await runCredd(); // warm the page cache for node, dist/ and node_modules; not counted
  await runOpenssl();
  creddMs.length = 0;
  opensslMs.length = 0;
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      await runCredd();
      await runOpenssl();
    } else {
      await runOpenssl();
      await runCredd();
    }
  }
  // Same work, same output: the CSR credd wrote verifies with openssl and carries the DN.
  mustRun("openssl", ["req", "-in", join(dir, "c.pem"), "-noout", "-verify"]);

  o.progress("key + CSR: `credd renew --force --no-send` (the whole command) against a temp state");
  const renewMs = await timeRenewCommand(o, dir, n);

  o.progress("key + CSR: in-process per CSR");
  const { generateKeyPair, exportPrivateKeyPem } = await fromDist<KeysMod>("pki/keys.js");
  const { createCsr } = await fromDist<CsrMod>("pki/csr.js");
  const perCsr: number[] = [];
  const signOnly: number[] = [];
  const inProcess = n + 2;
  for (let i = 0; i < inProcess; i++) {
    const t0 = performance.now();
    const keys = await generateKeyPair(SPEC);
    exportPrivateKeyPem(keys);
    await createCsr(keys, SPEC, DN);
    if (i >= 2) perCsr.push(performance.now() - t0); // two warm-up rounds (JIT, lazy inits)
  }
  const fixed = await generateKeyPair(SPEC);
  for (let i = 0; i < 60; i++) {
    const t0 = performance.now();
    await createCsr(fixed, SPEC, DN);
    if (i >= 10) signOnly.push(performance.now() - t0);
  }

  const c = summarize(creddMs);
  const s = summarize(opensslMs);
  const ratio = c.median / s.median;
  const k = summarize(perCsr);
  const so = summarize(signOnly);
  const rows: Row[] = [
    {
      figure: "key + CSR (RSA 2048), whole process",
      credd: ms(c.median),
      reference: `openssl req ${ms(s.median)}`,
      // Shown for information: the CSR is built by @peculiar/x509 (the one ASN.1 owner), whose load
      // time a hand-written encoder once avoided; a figure does not justify a second encoder.
      target: "—",
      verdict: "info",
      detail:
        `${ratio.toFixed(2)}× openssl. credd: \`node bench/key-csr-once.mjs\` (dist/ generateKeyPair + exportPrivateKeyPem + createCsr, ` +
        `key and CSR written to files) ${spread(c)}; openssl: \`openssl req -new -newkey rsa:2048 -nodes -sha256 -subj <Stellantis DN> -keyout -out\` ${spread(s)}; ` +
        `runs interleaved, one warm-up each not counted.`,
    },
  ];
  if (renewMs) {
    const r = summarize(renewMs);
    rows.push({
      figure: "`credd renew --force --no-send`, whole command",
      credd: ms(r.median),
      reference: `openssl req ${ms(s.median)}`,
      target: "—",
      verdict: "info",
      detail: `${(r.median / s.median).toFixed(2)}× openssl. The real command: config, SQLite, supersede the pending renewal, key + CSR, archive/ writes (fsync), CSR email queued; ${spread(r)}.`,
    });
  }
  rows.push({
    figure: "key + CSR in-process, per CSR",
    credd: ms(k.median),
    reference: `CSR signing alone ${ms(so.median)}`,
    target: "—",
    verdict: "info",
    detail: `One warm process: generateKeyPair + exportPrivateKeyPem + createCsr ${spread(k)} (RSA prime search dominates and varies run to run); createCsr alone with a fixed key ${spread(so)}.`,
  });
  return rows;
}

/** `credd renew NAME --force --no-send` n times against one temp state with a hand-made live certificate. */
async function timeRenewCommand(o: BenchOptions, dir: string, n: number): Promise<number[] | undefined> {
  const config = writeConfig(dir, smallConfigYaml({ top: [`state_dir: ${join(dir, "state")}`, `runtime_dir: ${join(dir, "run")}`] }));
  const hand = makeKeyAndCert(dir, DN, { days: 365 });
  const env = childEnv();
  mustRun(process.execPath, [creddMain(), "--config", config, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath], { env });
  const out: number[] = [];
  for (let i = 0; i <= n; i++) {
    const r = await timeProcess(process.execPath, [creddMain(), "--config", config, "renew", "fleet-prod", "--force", "--no-send"], { env });
    if (r.code !== 0) {
      o.progress(`credd renew exited ${r.code}, leaving that row out: ${r.stderr.trim()}`);
      return undefined;
    }
    if (i > 0) out.push(r.ms); // the first one warms the page cache
  }
  readFileSync(join(dir, "state/credentials/fleet-prod/archive", `csr-${n + 2}.pem`)); // every run made its CSR
  return out;
}
