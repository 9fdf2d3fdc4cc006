// The world of the shared-store e2e tests (docs/shared-store.md): one throwaway PostgreSQL cluster,
// a test SMTP server, an openssl CA and the loopback IDP for a test file; each test takes a fresh
// database and writes one config per host (its own state_dir and runtime_dir, the store's url and
// KEK files), and starts real `credd run` processes (built dist/main.js) on it.
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Daemon, runCredd, startCreddDaemon, writeConfig } from "./credd.js";
import { makeCa, makeTempDir, type TestCa } from "./openssl.js";
import { type PgCluster, startPostgres } from "./postgres.js";
import { startSmtpServer, type TestSmtpServer } from "./smtp.js";
import { type FakeStellantis, startFakeStellantis } from "./stellantis.js";

export type Line = Record<string, unknown>;
export const leadsNow = (l: Line) => l.msg === "this host leads now: it runs the checks, emails, inbox and mailbox";
export const followerTick = (l: Line) => l.msg === "follower tick: another host leads";
export const isCsrSent = (l: Line) => l.msg === "email sent" && l.kind === "csr";
export const lost = (l: Line) => l.msg === "leadership lost: this host stops acting and follows";
/** A log line's time (pino's "time"), in ms. */
export const at = (l: Line): number => (typeof l.time === "number" ? l.time : Date.parse(String(l.time)));

export interface StatusJson {
  hosts: Line[];
  hosts_warning: string | null;
  status: string;
}

export interface SharedWorld {
  cluster: PgCluster;
  smtp: TestSmtpServer;
  ca: TestCa;
  fake: FakeStellantis;
  /** Every daemon started with start(), killed (SIGKILL) by close() if still running. */
  daemons: Daemon[];
  /**
   * One host's config under root/name: its own state_dir and runtime_dir, the shared store's url
   * (database `db`) and KEK (32 bytes of `kekByte`) files, check_schedule every second, the one
   * credential fleet-prod (MZP128745) with `credExtra` lines, and `top` lines at the top level.
   */
  hostConfig(root: string, name: string, db: string, kekByte?: number, credExtra?: string, top?: string): string;
  /** `credd run` as host `host` (CREDD_HOST_NAME), outbox tick 200 ms, plus `env`. */
  start(config: string, host: string, env?: NodeJS.ProcessEnv): Daemon;
  /** A fresh database owned by the test role: each test its own store. */
  freshDb(name: string): Promise<string>;
  status(config: string): Promise<StatusJson>;
  close(): Promise<void>;
}

export async function startSharedWorld(): Promise<SharedWorld> {
  const cluster = await startPostgres();
  const smtp = await startSmtpServer();
  const ca = makeCa(makeTempDir("credd-e2e-shared-ca-"));
  const fake = await startFakeStellantis({ clientCaPem: ca.certPem });
  const daemons: Daemon[] = [];
  return {
    cluster,
    smtp,
    ca,
    fake,
    daemons,
    hostConfig(root, name, db, kekByte = 7, credExtra = "", top = "") {
      const dir = join(root, name);
      mkdirSync(dir, { recursive: true });
      const url = join(dir, "store-url");
      writeFileSync(url, `${cluster.url.replace(/\/[^/]*$/, `/${db}`)}\n`, { mode: 0o640 });
      chmodSync(url, 0o640);
      const kek = join(dir, "store-kek");
      writeFileSync(kek, `${Buffer.alloc(32, kekByte).toString("base64")}\n`, { mode: 0o600 });
      const stellantisCa = join(dir, "stellantis-ca.pem");
      writeFileSync(stellantisCa, ca.certPem + fake.serverCaPem);
      return writeConfig(
        dir,
        `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
check_schedule: "* * * * * *"
${top}store:
  postgres:
    url_file: ${url}
    key_encryption_key_file: ${kek}
smtp:
  url: smtp://127.0.0.1:${smtp.port}
  from: "credd <credd@partner.example>"
  ca_file: ${smtp.caPath}
  timeout_ms: 5000
alerts:
  to: [ops@partner.example]
stellantis:
  contact: connectedcar@stellantis.example
  ca_file: ${stellantisCa}
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    renew_before_days: 30
${credExtra}`,
      );
    },
    start(config, host, env = {}) {
      const d = startCreddDaemon(["--config", config, "run"], { CREDD_HOST_NAME: host, CREDD_OUTBOX_TICK_MS: "200", ...env });
      daemons.push(d);
      return d;
    },
    async freshDb(name) {
      const admin = await cluster.admin();
      try {
        await admin.query(`CREATE DATABASE ${name} OWNER ${cluster.user}`);
      } finally {
        await admin.end();
      }
      return name;
    },
    async status(config) {
      const r = await runCredd(["--config", config, "status", "--json"]);
      assert.ok(r.code !== 3, r.stdout + r.stderr);
      return JSON.parse(r.stdout) as StatusJson;
    },
    async close() {
      for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill("SIGKILL");
      await Promise.all(daemons.map((d) => d.exited));
      await smtp.stop();
      await fake.close();
      await cluster.destroy();
    },
  };
}
