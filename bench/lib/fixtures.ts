// Generated configs with many credentials, and state databases filled through credd's own store functions.
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromDist } from "./dist.js";

import type { Store } from "../../src/store/store.js";

type SqliteStoreMod = typeof import("../../src/store/sqlite-store.js");

export const SUBJECT = "{ C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }";
export const credName = (i: number) => `fleet-${String(i).padStart(5, "0")}`;
export const mzpOf = (i: number) => `MZP${String(i).padStart(6, "0")}`;

export interface ManyConfigOptions {
  smtpPort?: number;
  smtpCaFile?: string;
  stellantisCaFile?: string;
  /** Every credential gets `oauth` against this token URL (else every other one gets a placeholder URL). */
  tokenUrl?: string;
  inboxDir?: string;
  /** check_schedule (default every 10 minutes). */
  checkSchedule?: string;
  /** `store: postgres` with these files (default: SQLite in state_dir). */
  postgres?: { urlFile: string; kekFile: string };
}

/** A credd.yaml with `n` credentials fleet-00001.. (MZP000001..), every other one with OAuth2. */
export function writeManyConfig(dir: string, n: number, o: ManyConfigOptions = {}): string {
  const lines = [
    `state_dir: ${join(dir, "state")}`,
    `runtime_dir: ${join(dir, "run")}`,
    ...(o.inboxDir ? [`inbox_dir: ${o.inboxDir}`] : []),
    `check_schedule: "${o.checkSchedule ?? "*/10 * * * *"}"`,
    ...(o.postgres ? ["store:", "  postgres:", `    url_file: ${o.postgres.urlFile}`, `    key_encryption_key_file: ${o.postgres.kekFile}`] : []),
    `smtp: { url: "smtp://127.0.0.1:${o.smtpPort ?? 2525}", from: "credd <credd@partner.example>"${o.smtpCaFile ? `, ca_file: ${o.smtpCaFile}` : ""} }`,
    `alerts: { to: [ops@partner.example] }`,
    `stellantis: { contact: connectedcar@stellantis.example${o.stellantisCaFile ? `, ca_file: ${o.stellantisCaFile}` : ""} }`,
    `credentials:`,
  ];
  for (let i = 1; i <= n; i++) {
    lines.push(`  - name: ${credName(i)}`, `    mzp: ${mzpOf(i)}`, `    client_id: app-${i}`, `    subject: ${SUBJECT}`);
    if (o.tokenUrl || i % 2 === 0) {
      lines.push(
        `    oauth: { token_url: "${o.tokenUrl ?? "https://idfed-preprod.mpsa.com/as/token.oauth2"}", client_id: partner-client, scope: openid }`,
      );
    }
  }
  const file = join(dir, "credd.yaml");
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

const DAY = 86_400_000;
const hex = (bytes: number) => randomBytes(bytes).toString("hex").toUpperCase();
const fp = () => hex(32).match(/.{2}/g)!.join(":");

/**
 * Fills state_dir/credd.db (SQLite) through credd's own store; populateStore says what it holds.
 * No certificate files: status and the decision read only the store.
 */
export async function populateDb(stateDir: string, n: number, opts: PopulateOptions = {}): Promise<void> {
  const { openSqliteStore } = await fromDist<SqliteStoreMod>("store/sqlite-store.js");
  const store = openSqliteStore(stateDir);
  try {
    await populateStore(store, n, opts);
  } finally {
    await store.close();
  }
}

export interface PopulateOptions {
  /** Every dueEvery-th credential is due for renewal (default 25; 0 for none). */
  dueEvery?: number;
  now?: Date;
  /** Heartbeats of these hosts (a shared store's leader and standby), the first as leader. */
  hosts?: string[];
}

/**
 * Writes n credentials through the Store API (any store: SQLite or PostgreSQL), in one transaction,
 * the rows credd's own code writes. Each credential has a live certificate (version 1) and a check
 * heartbeat; every other one (the OAuth2 ones) a token; every 10th a renewal whose CSR was sent two
 * days ago; every 25th (`dueEvery`, 0 for none) a certificate 20 days from expiry (renewal due).
 */
export async function populateStore(store: Store, n: number, opts: PopulateOptions = {}): Promise<void> {
  const now = opts.now ?? new Date();
  const dueEvery = opts.dueEvery ?? 25;
  const iso = (t: number) => new Date(t).toISOString();
  const t = now.getTime();
  await store.tx(async (s) => {
    for (let i = 1; i <= n; i++) {
      const name = credName(i);
      const notAfter = dueEvery > 0 && i % dueEvery === 0 ? t + 20 * DAY : t + (200 + (i % 100)) * DAY; // renewal falls due with a third (122 days) left
      const notBefore = notAfter - 365 * DAY;
      await s.insertInstalledCertificate({
        credential: name,
        version: 1,
        serial: hex(16),
        not_before: iso(notBefore),
        not_after: iso(notAfter),
        subject: `C=FR, ST=Ile de France, L=Paris, O=Free2Move, OU=Programs Partners, CN=${mzpOf(i)}, emailAddress=it@partner.example`,
        issuer: "C=FR, O=Stellantis, CN=Stellantis Partner CA",
        spki_sha256: createHash("sha256").update(name).digest("hex"),
        sha256: fp(),
        source: "import",
        installed_at: iso(notBefore + DAY),
        renewal_id: null,
      });
      await s.makeLive(name, 1, iso(notBefore + DAY));
      if (i % 10 === 0) {
        const id = await s.insertRenewal({
          credential: name,
          version: 2,
          kind: "renew",
          forced: 0,
          reason: "renewal due (bench fixture)",
          spki_sha256: createHash("sha256").update(`${name}-2`).digest("hex"),
          key_type: "rsa-2048",
          created_at: iso(t - 2 * DAY - 60_000),
        });
        await s.markCsrSent(id, iso(t - 2 * DAY));
      }
      if (i % 2 === 0) {
        await s.recordTokenSuccess({
          credential: name,
          token_type: "Bearer",
          scope: "openid",
          obtained_at: iso(t - 600_000),
          expires_at: iso(t + 3_000_000),
          refresh_at: iso(t + 1_800_000),
          cert_version: 1,
          cert_sha256: fp(),
        });
      }
    }
    await s.recordChecks(Array.from({ length: n }, (_, i) => ({ credential: credName(i + 1), at: new Date(t - 60_000) })));
    await s.setMeta("last_check_at", iso(t - 60_000));
    for (const [i, name] of (opts.hosts ?? []).entries()) {
      await s.heartbeatHost({
        name,
        pid: 1000 + i,
        role: i === 0 ? "leader" : "follower",
        version: "bench",
        started_at: iso(t - DAY),
        last_heartbeat_at: iso(t - 30_000),
      });
    }
  });
}
