// A credential with `proxy:` against the loopback IDP + API, in-process: a real SQLite file, the
// live certificate imported (its first token fetched), the logs kept in memory for secret scans.
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pino } from "pino";
import { parseConfig } from "../../src/config/load.js";
import type { CredentialConfig } from "../../src/config/types.js";
import { sqliteCtx, type TestCtx } from "./ctx.js";
import { importCertificate } from "../../src/core/import.js";
import { makeMailerFactory } from "../../src/mail/factory.js";
import type { ProxyListener } from "../../src/proxy/server.js";
import { openDb } from "../../src/store/db.js";
import { ManualClock } from "./clock.js";
import { dnFor } from "./credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, type TestCa } from "./openssl.js";
import { startFakeStellantis, type FakeStellantis } from "./stellantis.js";

export interface ProxyWorld {
  dir: string;
  ca: TestCa;
  fake: FakeStellantis;
  ctx: TestCtx;
  clock: ManualClock;
  logLines: string[];
  /** Makes a certificate for fleet-prod, registers it with the IDP, imports it (it goes live); its SHA-256. */
  rotate(): Promise<string>;
  /**
   * The same in two steps: the key and certificate made now (openssl blocks the event loop for
   * a while), the import when `goLive` is called.
   */
  prepareRotation(): { fp: string; goLive: () => Promise<void> };
  /** Rewrites credd.yaml with each credential's `proxy:` from `proxyOf` ("" for none), for a reload. */
  writeConfig(proxyOf: (name: string) => string): void;
}

export async function makeProxyWorld(
  proxy = '{ listen: "127.0.0.1:8301", timeout_ms: 2000, max_body_bytes: 33554432 }',
  opts: {
    basic?: { user: string; password: string };
    /** Each credential's `proxy:` instead of `proxy` (a port 8301 in it made 8302 for fleet-new); "" for none. */
    proxyFor?: (name: string) => string;
    /** Keep the listen addresses as written (for a config a `credd run` child reads), not port 0. */
    keepListen?: boolean;
  } = {},
): Promise<ProxyWorld> {
  const clock = new ManualClock(Date.now());
  const dir = makeTempDir("credd-proxy-");
  const ca = makeCa(dir);
  const fake = await startFakeStellantis({ clientCaPem: ca.certPem, now: () => clock.now(), ...(opts.basic ? { basic: opts.basic } : {}) });
  const caFile = join(dir, "stellantis-ca.pem");
  writeFileSync(caFile, ca.certPem + fake.serverCaPem);
  // Each credential its own address: the validator refuses two listeners on one.
  const cred = (name: string, mzp: string, proxyOf: (name: string) => string) => {
    const p = proxyOf(name);
    return `  - name: ${name}
    mzp: ${mzp}
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    oauth: { token_url: "${fake.tokenUrl}", client_id: partner-client, scope: openid }
    api: { base_url: "${fake.apiBaseUrl}" }
${p ? `    proxy: ${p}\n` : ""}`;
  };
  const configText = (proxyOf: (name: string) => string) => `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
smtp: { url: "smtp://127.0.0.1:1", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example] }
stellantis: { contact: c@stellantis.example, ca_file: ${caFile} }
credentials:
${cred("fleet-prod", "MZP128745", proxyOf)}${cred("fleet-new", "MZP128746", proxyOf)}`;
  const text = configText(opts.proxyFor ?? ((name) => proxy.replace("8301", name === "fleet-prod" ? "8301" : "8302")));
  // Written too, for a `credd run` child and a reload.
  writeFileSync(join(dir, "credd.yaml"), text);
  const config = parseConfig(text, join(dir, "credd.yaml"));
  // Port 0 (any free port) is for tests only; the validator wants a fixed one.
  if (!opts.keepListen) for (const c of config.credentials) if (c.proxy) c.proxy.listen = "127.0.0.1:0";
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      logLines.push(chunk.toString("utf8"));
      cb();
    },
  });
  const ctx: TestCtx = sqliteCtx({
    config,
    db: openDb(config.state_dir),
    clock,
    log: pino({ level: "debug" }, sink),
    mailer: makeMailerFactory(config),
  });
  const prepareRotation = () => {
    const hand = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, days: 365 });
    const fp = new X509Certificate(readFileSync(hand.certPath)).fingerprint256;
    fake.register(fp);
    const keyText = readFileSync(hand.keyPath, "utf8");
    const goLive = async () => {
      clock.set(Math.max(clock.now().getTime(), Date.now() + 5_000)); // after its notBefore (whole seconds)
      const c: CredentialConfig = config.credentials[0]!;
      await importCertificate(ctx, c, { certText: hand.certPem, certFile: hand.certPath, keyText, keyFile: hand.keyPath });
    };
    return { fp: fp.toUpperCase(), goLive };
  };
  const rotate = async (): Promise<string> => {
    const r = prepareRotation();
    await r.goLive();
    return r.fp;
  };
  const writeConfig = (proxyOf: (name: string) => string) => writeFileSync(join(dir, "credd.yaml"), configText(proxyOf));
  return { dir, ca, fake, ctx, clock, logLines, rotate, prepareRotation, writeConfig };
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request to a listener; `agent` false: a new connection each time, else the given keep-alive agent. */
export function call(
  p: Pick<ProxyListener, "address">,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Readable | string; agent?: http.Agent } = {},
): Promise<Answer> {
  const [host, port] = p.address().split(":");
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port: Number(port), path, method: opts.method ?? "GET", headers: opts.headers, agent: opts.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (opts.body instanceof Readable) opts.body.pipe(req);
    else req.end(opts.body);
  });
}
