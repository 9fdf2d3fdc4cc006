// The Store (store.ts) on PostgreSQL, the shared store (docs/shared-store.md): the same questions
// as the SQLite functions in src/store/*.ts on a pg Pool (connect.ts), schema migrations/postgres/.
// Callers see exactly the rows SQLite gives them: the conversions happen here, at the boundary, in
// the type parsers of every query (timestamptz → ISO 8601 UTC string with milliseconds, boolean →
// 0/1, bigint ids → number, json → its text as written). A statement group that SQLite runs in one
// transaction (snapshot, facts, checks) runs in one here too; `tx` holds one pooled client between
// BEGIN and COMMIT/ROLLBACK.
import { AsyncLocalStorage } from "node:async_hooks";
import pg from "pg";
import { CreddError } from "../../errors.js";
import type { AlertRow } from "../alerts.js";
import type { CertificateRow } from "../certificates.js";
import type { CheckRow } from "../checks.js";
import type { LatestFacts, LiveFacts, PendingFacts } from "../facts.js";
import type { HookRunRow, IngestRow } from "../history.js";
import type { MailboxMessageRow, MailboxSourceRow, SentThread } from "../mailbox.js";
import type { OutboxRow } from "../outbox.js";
import type { ProbeFields, RenewalRow, RenewalState } from "../renewals.js";
import type { LiveCertificate, QueuedSummary, Snapshot } from "../snapshot.js";
import type { Store } from "../store.js";
import type { ArchiveParts, HostRow } from "../hosts.js";
import { type Kek, type Keyring, unwrapKey, wrapKey } from "./keywrap.js";
import type { TokenRow, TokenTiming } from "../tokens.js";
import { describePgError, openPool, type PgTarget } from "./connect.js";

/** The PostgreSQL store and its pool, for what only it has (tests, the migration copy). */
export interface PgStore extends Store {
  readonly pool: pg.Pool;
}

const OID = { bool: 16, int8: 20, json: 114, jsonb: 3802, timestamp: 1114, timestamptz: 1184 } as const;

/** The row conversions, applied by the driver to every result (see the header); the migration copy reads back with them. */
export const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    switch (oid) {
      case OID.bool:
        return (v: string) => (v === "t" ? 1 : 0);
      case OID.int8:
        return (v: string) => Number(v);
      case OID.json:
      case OID.jsonb:
        return (v: string) => v;
      case OID.timestamp:
      case OID.timestamptz: {
        const date = pg.types.getTypeParser(oid, "text") as (v: string) => Date;
        return (v: string) => date(v).toISOString();
      }
      default:
        return pg.types.getTypeParser(oid, format ?? "text");
    }
  }) as pg.CustomTypesConfig["getTypeParser"],
};

type Row = Record<string, unknown>;
/** One statement, on the pool or on the transaction's client. */
type Exec = (sql: string, params?: unknown[]) => Promise<Row[]>;

interface Shared {
  pool: pg.Pool;
  target: PgTarget;
  /** Set inside a transaction's fn (and what it awaits): the outer store is refused there, as on SQLite. */
  inside: AsyncLocalStorage<true>;
  /**
   * Settles when the open transaction ends; undefined when none is open. As on SQLite (the gate of
   * sqlite-store.ts), every other call on this store waits for it: the Store promises that nothing
   * else of this process runs between a transaction's statements. Other hosts are kept apart by
   * PostgreSQL itself (row locks, SKIP LOCKED, the unique indexes).
   */
  gate: Promise<void> | undefined;
  closed: boolean;
  /**
   * Seals and opens the private keys of the archive table; absent: a key there is an error. A
   * function is called at the first key sealed or opened (commands that only read never need it).
   */
  kek?: KekSource;
  /** This host's name: token rows are per host (migration 0011); '' when not given. */
  host: string;
}

/** A token row as the Store returns it (SQLite has no host column). */
function withoutHost<T extends { host?: string }>(row: T | undefined): Omit<T, "host"> | undefined {
  if (!row) return undefined;
  const { host: _host, ...rest } = row;
  return rest;
}

/** A store over `pool` (schema already migrated: migrate.ts). `target` names the server in errors. */
/**
 * The key-encryption key (seals and opens), or a keyring during a rotation: its current key seals,
 * every key of it opens (store.postgres.previous_key_encryption_key_files). A function is called at first use.
 */
export type KekSource = Kek | Keyring | (() => Kek | Keyring);

/** The ring, read at first use when it was given as a function. */
function ringOf(shared: Shared): Keyring | undefined {
  if (typeof shared.kek === "function") shared.kek = shared.kek();
  const k = shared.kek;
  if (k === undefined) return undefined;
  return "current" in k ? k : { current: k, previous: [] };
}

export function pgStore(pool: pg.Pool, target: PgTarget, kek?: KekSource, host = ""): PgStore {
  return make({ pool, target, inside: new AsyncLocalStorage(), gate: undefined, closed: false, host, ...(kek ? { kek } : {}) }, undefined);
}

/** Opens a pool on `target` (connect.ts, openPool) and the store over it. */
export function openPgStore(
  target: PgTarget,
  opts: { max?: number; onError?: (err: CreddError) => void; kek?: KekSource; host?: string } = {},
): PgStore {
  const { kek, host, ...poolOpts } = opts;
  return pgStore(openPool(target, poolOpts), target, kek, host);
}

async function run(client: pg.Pool | pg.PoolClient, shared: Shared, sql: string, params: unknown[]): Promise<Row[]> {
  try {
    return (await client.query<Row>({ text: sql, values: params, types: TYPES })).rows;
  } catch (err) {
    throw describePgError(uniqueAsSqlite(err), shared.target, "a store query failed on");
  }
}

/**
 * A unique violation, worded as SQLite words it ("UNIQUE constraint failed: renewals.credential"):
 * callers tell a lost race from other failures by that text (core/renewal.ts), and the Store
 * promises them the same errors from both stores. PostgreSQL's own message and code follow.
 */
function uniqueAsSqlite(err: unknown): unknown {
  const e = err as { code?: unknown; table?: unknown; detail?: unknown; message?: unknown };
  if (e.code !== "23505" || typeof e.table !== "string") return err;
  const columns = /^Key \((.*?)\)=/.exec(typeof e.detail === "string" ? e.detail : "")?.[1]?.split(", ") ?? [];
  if (columns.length === 0 || columns.some((c) => !/^\w+$/.test(c))) return err;
  const table = e.table;
  const out = new Error(`UNIQUE constraint failed: ${columns.map((c) => `${table}.${c}`).join(", ")} (${String(e.message)})`, { cause: err });
  return Object.assign(out, { code: e.code });
}

/** How a group of statements runs when no transaction is open: read ones see one moment. */
type Mode = "write" | "read";
const BEGIN: Record<Mode, string> = { write: "BEGIN", read: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" };

/**
 * `client` is the transaction's client for a transaction's own store (with `scope`, dead once it
 * ends); undefined for the pool.
 */
function make(shared: Shared, tx: { client: pg.PoolClient; scope: { ended: boolean } } | undefined): PgStore {
  const guard = (): void => {
    if (tx) {
      if (tx.scope.ended) throw new CreddError("INTERNAL", "store call on a transaction's store after the transaction ended");
    } else if (shared.inside.getStore()) {
      throw new CreddError("INTERNAL", "store call on the outer store inside a transaction: use the store handed to tx's fn");
    }
  };
  const exec: Exec = (sql, params = []) => run(tx ? tx.client : shared.pool, shared, sql, params);

  /** `fn` in one transaction: the open one, or its own on one pooled client. */
  const atomic = async <T>(mode: Mode, fn: (q: Exec) => Promise<T>): Promise<T> => {
    if (tx) return await fn(exec);
    return await onClient(shared, BEGIN[mode], (client) => fn((sql, params = []) => run(client, shared, sql, params)));
  };

  // Every member goes through here: the guard first, then (outside a transaction) the gate.
  const m =
    <A extends unknown[], R>(f: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      guard();
      if (!tx) while (shared.gate) await shared.gate;
      return await f(...args);
    };
  const one = async <T>(sql: string, params: unknown[] = []): Promise<T | undefined> => (await exec(sql, params))[0] as T | undefined;
  const all = async <T>(sql: string, params: unknown[] = []): Promise<T[]> => (await exec(sql, params)) as T[];

  const store: PgStore = {
    pool: shared.pool,

    // hosts
    heartbeatHost: m(async (h: HostRow) => {
      await exec(
        `INSERT INTO hosts (name, pid, role, version, started_at, last_heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, role = excluded.role, version = excluded.version,
           started_at = excluded.started_at, last_heartbeat_at = excluded.last_heartbeat_at`,
        [h.name, h.pid, h.role, h.version, h.started_at, h.last_heartbeat_at],
      );
    }),
    putArchive: m(async (credential: string, version: number, parts: ArchiveParts) => {
      let envelope: Buffer | null = null;
      const kek = parts.key === undefined ? undefined : ringOf(shared)?.current;
      if (parts.key !== undefined) {
        if (!kek) throw new CreddError("INTERNAL", "a private key stored without a key-encryption key (openPgStore's kek)");
        envelope = wrapKey(kek, { credential, version }, parts.key);
      }
      await exec(
        `INSERT INTO archive (credential, version, key_envelope, kek_id, csr_pem, cert_pem, chain_pem, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, now())
         ON CONFLICT (credential, version) DO UPDATE SET
           key_envelope = COALESCE(excluded.key_envelope, archive.key_envelope), kek_id = COALESCE(excluded.kek_id, archive.kek_id),
           csr_pem = COALESCE(excluded.csr_pem, archive.csr_pem), cert_pem = COALESCE(excluded.cert_pem, archive.cert_pem),
           chain_pem = COALESCE(excluded.chain_pem, archive.chain_pem), updated_at = now()`,
        [credential, version, envelope, envelope ? kek!.id : null, parts.csr ?? null, parts.cert ?? null, parts.chain ?? null],
      );
    }),
    getArchive: m(async (credential: string, version: number) => {
      const r = await one<{ key_envelope: Buffer | null; csr_pem: string | null; cert_pem: string | null; chain_pem: string | null }>(
        "SELECT key_envelope, csr_pem, cert_pem, chain_pem FROM archive WHERE credential = $1 AND version = $2",
        [credential, version],
      );
      if (!r) return undefined;
      const out: ArchiveParts = {};
      if (r.key_envelope) {
        const kek = ringOf(shared);
        if (!kek) throw new CreddError("INTERNAL", "a private key read without a key-encryption key (openPgStore's kek)");
        // A wrong KEK or a changed row is a STATE error naming the credential, version and files: never a re-enrollment.
        out.key = unwrapKey(kek, { credential, version }, r.key_envelope).toString("utf8");
      }
      if (r.csr_pem !== null) out.csr = r.csr_pem;
      if (r.cert_pem !== null) out.cert = r.cert_pem;
      if (r.chain_pem !== null) out.chain = r.chain_pem;
      return out;
    }),
    listHosts: m(() => all<HostRow>("SELECT name, pid, role, version, started_at, last_heartbeat_at FROM hosts ORDER BY name")),

    // certificates
    liveCertificate: m((credential: string) => one<CertificateRow>("SELECT * FROM certificates WHERE credential = $1 AND live", [credential])),
    previousCertificate: m((credential: string) =>
      one<CertificateRow>(
        `SELECT * FROM certificates WHERE credential = $1 AND NOT live AND retired_at IS NOT NULL
           ORDER BY retired_at DESC, version DESC LIMIT 1`,
        [credential],
      ),
    ),
    certificateByVersion: m((credential: string, version: number) =>
      one<CertificateRow>("SELECT * FROM certificates WHERE credential = $1 AND version = $2", [credential, version]),
    ),
    certificateBySha256: m((credential: string, sha256: string) =>
      one<CertificateRow>("SELECT * FROM certificates WHERE credential = $1 AND sha256 = $2", [credential, sha256]),
    ),
    maxVersion: m(async (credential: string) => {
      const r = await one<{ v: number | null }>(
        `SELECT MAX(v) AS v FROM (
           SELECT MAX(version) AS v FROM certificates WHERE credential = $1
           UNION ALL SELECT MAX(version) FROM renewals WHERE credential = $1) AS both_tables`,
        [credential],
      );
      return r?.v ?? 0;
    }),
    insertInstalledCertificate: m(async (cert) => {
      const r = await one<{ id: number }>(
        `INSERT INTO certificates (credential, version, serial, not_before, not_after, subject, issuer,
             spki_sha256, sha256, source, installed_at, live, renewal_id,
             ca_not_after, ca_not_after_role, ca_not_after_subject, ca_not_after_serial)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, false, $12, $13, $14, $15, $16)
           RETURNING id`,
        [
          cert.credential,
          cert.version,
          cert.serial,
          cert.not_before,
          cert.not_after,
          cert.subject,
          cert.issuer,
          cert.spki_sha256,
          cert.sha256,
          cert.source,
          cert.installed_at,
          cert.renewal_id,
          cert.ca_not_after ?? null,
          cert.ca_not_after_role ?? null,
          cert.ca_not_after_subject ?? null,
          cert.ca_not_after_serial ?? null,
        ],
      );
      return r!.id;
    }),
    // Two statements in this order: the one-live index is checked per row, so the old one goes first.
    makeLive: m((credential: string, version: number, at: string) =>
      atomic("write", async (q) => {
        await q("UPDATE certificates SET live = false, retired_at = $3 WHERE credential = $1 AND live AND version <> $2", [credential, version, at]);
        await q(
          "UPDATE certificates SET live = true, went_live_at = COALESCE(went_live_at, $3), retired_at = NULL WHERE credential = $1 AND version = $2",
          [credential, version, at],
        );
      }),
    ),

    // The credential's certificate rows, then the renewal row, locked until the transaction ends
    // (always in this order): a second host's go-live of the same credential waits here, then reads
    // what the first committed.
    lockForGoLive: m(async (credential: string, renewalId: number | null) => {
      const rows = await all<{ version: number; live: number }>(
        "SELECT version, live FROM certificates WHERE credential = $1 ORDER BY version FOR UPDATE",
        [credential],
      );
      const renewal =
        renewalId === null ? undefined : await one<{ state: RenewalState }>("SELECT state FROM renewals WHERE id = $1 FOR UPDATE", [renewalId]);
      return { live_version: rows.find((r) => r.live === 1)?.version ?? null, renewal_state: renewal?.state ?? null };
    }),

    // renewals
    pendingRenewal: m((credential: string) =>
      one<RenewalRow>(`SELECT * FROM renewals WHERE credential = $1 AND state IN ('created','sent','signed','registered')`, [credential]),
    ),
    getRenewal: m((id: number) => one<RenewalRow>("SELECT * FROM renewals WHERE id = $1", [id])),
    insertRenewal: m(async (r) => {
      const row = await one<{ id: number }>(
        `INSERT INTO renewals (credential, version, kind, forced, state, reason, spki_sha256, key_type, created_at, state_since)
           VALUES ($1, $2, $3, $4, 'created', $5, $6, $7, $8, $8) RETURNING id`,
        [r.credential, r.version, r.kind, Boolean(r.forced), r.reason, r.spki_sha256, r.key_type, r.created_at],
      );
      return row!.id;
    }),
    setRenewalState: m(async (id, state, at) => {
      const ended = state === "live" || state === "superseded" ? at : null;
      await exec("UPDATE renewals SET state = $1, state_since = $2, ended_at = COALESCE($3::timestamptz, ended_at) WHERE id = $4", [
        state,
        at,
        ended,
        id,
      ]);
    }),
    markCsrSent: m(async (id: number, at: string) => {
      await exec(
        `UPDATE renewals SET sent_at = COALESCE(sent_at, $2),
           state = CASE WHEN state = 'created' THEN 'sent' ELSE state END,
           state_since = CASE WHEN state = 'created' THEN $2 ELSE state_since END
         WHERE id = $1`,
        [id, at],
      );
    }),
    markReminded: m(async (id: number, at: string) => {
      await exec("UPDATE renewals SET reminded_at = $1, remind_count = remind_count + 1 WHERE id = $2", [at, id]);
    }),
    // Like SQLite's .get() cast: a renewal that does not exist gives undefined despite the type.
    probeFields: m(
      async (id: number) =>
        (await one<ProbeFields>("SELECT probe_attempts, next_probe_at, last_probe_error, registration_mail_at FROM renewals WHERE id = $1", [
          id,
        ])) as ProbeFields,
    ),
    recordProbeFailure: m(async (id: number, error: string, nextProbeAt: string) => {
      await exec("UPDATE renewals SET probe_attempts = probe_attempts + 1, last_probe_error = $1, next_probe_at = $2 WHERE id = $3", [
        error,
        nextProbeAt,
        id,
      ]);
    }),
    markRegistrationMailed: m(async (id: number, at: string) => {
      await exec("UPDATE renewals SET registration_mail_at = $1 WHERE id = $2", [at, id]);
    }),

    // outbox
    enqueueMail: m(async (q) => {
      const at = q.now.toISOString();
      const r = await one<{ id: number }>(
        `INSERT INTO outbox (message_id, kind, credential, renewal_id, mail_json, created_at, next_attempt_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`,
        [q.mail.messageId, q.kind, q.credential ?? null, q.renewalId ?? null, JSON.stringify(q.mail), at],
      );
      return r!.id;
    }),
    // The claim: rows another host has locked right now are skipped (SKIP LOCKED), and a row it
    // claimed and committed meanwhile fails the recheck of claimed_until, so two hosts never get
    // the same email. Message-ID and body stay in the row: a retry sends the same message.
    claimDue: m(async (now: Date, holdMs: number, limit = 20, onlyId?: number) => {
      const at = now.toISOString();
      const until = new Date(now.getTime() + holdMs).toISOString();
      const rows = await all<OutboxRow>(
        `UPDATE outbox SET claimed_until = $2
           WHERE id IN (
             SELECT id FROM outbox
             WHERE sent_at IS NULL AND next_attempt_at <= $1
               AND (claimed_until IS NULL OR claimed_until <= $1)
               AND ($4::bigint IS NULL OR id = $4)
             ORDER BY id LIMIT $3
             FOR UPDATE SKIP LOCKED)
           RETURNING *`,
        [at, until, limit, onlyId ?? null],
      );
      return rows.sort((a, b) => a.id - b.id).map((row) => ({ row, mail: JSON.parse(row.mail_json) }));
    }),
    releaseClaim: m(async (id: number) => {
      await exec("UPDATE outbox SET claimed_until = NULL WHERE id = $1", [id]);
    }),
    releaseLiveClaims: m(async (now: Date) => {
      const rows = await all<{ id: number }>("UPDATE outbox SET claimed_until = NULL WHERE sent_at IS NULL AND claimed_until > $1 RETURNING id", [
        now.toISOString(),
      ]);
      return rows.length;
    }),
    markMailSent: m(async (id: number, now: Date, note: string | null = null) => {
      await exec("UPDATE outbox SET sent_at = $1, attempts = attempts + 1, claimed_until = NULL, last_error = $2 WHERE id = $3", [
        now.toISOString(),
        note,
        id,
      ]);
    }),
    markMailFailed: m(async (id: number, error: string, nextAttemptAt: Date, permanent = false) => {
      await exec(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $1, last_error_permanent = $2, next_attempt_at = $3, claimed_until = NULL WHERE id = $4",
        [error, permanent, nextAttemptAt.toISOString(), id],
      );
    }),
    queuedMails: m((credential?: string) =>
      all<OutboxRow>("SELECT * FROM outbox WHERE sent_at IS NULL AND ($1::text IS NULL OR credential = $1) ORDER BY id", [credential ?? null]),
    ),

    // tokens
    getToken: m(async (credential: string) =>
      withoutHost(await one<TokenRow & { host?: string }>("SELECT * FROM tokens WHERE credential = $1 AND host = $2", [credential, shared.host])),
    ),
    tokenTimings: m(() =>
      all<TokenTiming>(
        `SELECT c.credential, c.version, t.next_attempt_at, t.expires_at, t.refresh_at, t.cert_version
           FROM certificates c LEFT JOIN tokens t ON t.credential = c.credential AND t.host = $1 WHERE c.live ORDER BY c.id`,
        [shared.host],
      ),
    ),
    recordTokenSuccess: m(async (r) => {
      await exec(
        `INSERT INTO tokens (credential, token_type, scope, obtained_at, expires_at, refresh_at, cert_version, cert_sha256,
           failures, next_attempt_at, last_error, last_error_at, last_success_at, host)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, NULL, NULL, NULL, $4, $9)
         ON CONFLICT (credential, host) DO UPDATE SET token_type = EXCLUDED.token_type, scope = EXCLUDED.scope,
           obtained_at = EXCLUDED.obtained_at, expires_at = EXCLUDED.expires_at, refresh_at = EXCLUDED.refresh_at,
           cert_version = EXCLUDED.cert_version, cert_sha256 = EXCLUDED.cert_sha256,
           failures = 0, next_attempt_at = NULL, last_success_at = EXCLUDED.obtained_at`,
        [r.credential, r.token_type, r.scope, r.obtained_at, r.expires_at, r.refresh_at, r.cert_version, r.cert_sha256, shared.host],
      );
    }),
    recordTokenFailure: m(async (credential: string, error: string, at: string, nextAttemptAt: string) => {
      const r = await one<{ failures: number }>(
        `INSERT INTO tokens (credential, failures, next_attempt_at, last_error, last_error_at, host) VALUES ($1, 1, $2, $3, $4, $5)
         ON CONFLICT (credential, host) DO UPDATE SET failures = tokens.failures + 1, next_attempt_at = EXCLUDED.next_attempt_at,
           last_error = EXCLUDED.last_error, last_error_at = EXCLUDED.last_error_at
         RETURNING failures`,
        [credential, nextAttemptAt, error, at, shared.host],
      );
      return r!.failures;
    }),
    forgetToken: m(async (credential: string) => {
      await exec(
        "UPDATE tokens SET obtained_at = NULL, expires_at = NULL, refresh_at = NULL, cert_version = NULL, cert_sha256 = NULL WHERE credential = $1 AND host = $2",
        [credential, shared.host],
      );
    }),

    // checks and meta
    recordChecks: m((beats) =>
      atomic("write", async (q) => {
        for (const b of beats) {
          const at = b.at.toISOString();
          await q(
            `INSERT INTO checks (credential, last_check_at, last_error, last_error_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (credential) DO UPDATE SET last_check_at = EXCLUDED.last_check_at, last_error = EXCLUDED.last_error,
               last_error_at = COALESCE(EXCLUDED.last_error_at, checks.last_error_at)`,
            [b.credential, at, b.error ?? null, b.error ? at : null],
          );
        }
      }),
    ),
    getMeta: m(async (key: string) => (await one<{ value: string }>("SELECT value FROM meta WHERE key = $1", [key]))?.value),
    setMeta: m(async (key: string, value: string) => {
      await setMeta(exec, key, value);
    }),
    setCheckPeriodMs: m(async (ms: number) => {
      await setMeta(exec, "check_period_ms", String(Math.round(ms)));
    }),

    // decision facts
    decisionFacts: m((credential: string) =>
      atomic("read", async (q) => {
        const live = (await q(`${FACTS.live} AND credential = $1`, [credential]))[0] as LiveFacts | undefined;
        const pending = (await q(`${FACTS.pending} AND credential = $1`, [credential]))[0] as PendingFacts | undefined;
        const latest = (await q("SELECT credential, created_at FROM renewals WHERE credential = $1 ORDER BY id DESC LIMIT 1", [credential]))[0] as
          | LatestFacts
          | undefined;
        return { ...(live ? { live } : {}), ...(pending ? { pending } : {}), ...(latest ? { latest } : {}) };
      }),
    ),
    allDecisionFacts: m(() =>
      atomic("read", async (q) => ({
        live: byName<LiveFacts>(await q(FACTS.live)),
        pending: byName<PendingFacts>(await q(FACTS.pending)),
        latest: byName<LatestFacts>(await q(FACTS.latest)),
      })),
    ),

    // history
    recordHookRun: m(async (r) => {
      await exec(
        `INSERT INTO hook_runs (credential, version, serial, argv_json, ok, exit_code, signal, duration_ms, error, output, started_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [r.credential, r.version, r.serial, r.argv_json, Boolean(r.ok), r.exit_code, r.signal, r.duration_ms, r.error, r.output, r.started_at],
      );
    }),
    recordIngest: m(async (r: IngestRow) => {
      await exec(
        `INSERT INTO ingests (at, file, credential, outcome, check_name, reason, serial, sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [r.at, r.file, r.credential, r.outcome, r.check_name, r.reason, r.serial, r.sha256],
      );
    }),
    lastUnmatchedRefusal: m(() =>
      one<IngestRow & { id: number }>("SELECT * FROM ingests WHERE credential IS NULL AND outcome = 'refused' ORDER BY id DESC LIMIT 1"),
    ),

    // alerts: the open one is updated; else a new row, whose ON CONFLICT covers a second host that
    // opened the same alert meanwhile (the one-open index). The INSERT runs only when the UPDATE found
    // nothing, so no identity value is spent on an update and ids grow as on SQLite.
    openAlerts: m(() => all<AlertRow>("SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY id")),
    upsertAlert: m(async (s, at: string) => {
      await exec(
        `WITH moved AS (
           UPDATE alerts SET stage = $3, severity = $4, title = $5, detail = $6, action = $7, last_sent_at = $9
             WHERE resolved_at IS NULL AND COALESCE(credential, '') = COALESCE($1, '') AND kind = $2
             RETURNING id)
         INSERT INTO alerts (credential, kind, stage, severity, title, detail, action, event, opened_at, last_sent_at)
           SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $9 WHERE NOT EXISTS (SELECT 1 FROM moved)
         ON CONFLICT (COALESCE(credential, ''), kind) WHERE resolved_at IS NULL
         DO UPDATE SET stage = EXCLUDED.stage, severity = EXCLUDED.severity, title = EXCLUDED.title,
           detail = EXCLUDED.detail, action = EXCLUDED.action, last_sent_at = EXCLUDED.last_sent_at`,
        [s.credential, s.kind, s.stage, s.severity, s.title, s.detail, s.action, Boolean(s.event), at],
      );
    }),
    resolveAlert: m(async (id: number, at: string) => {
      await exec("UPDATE alerts SET resolved_at = $1 WHERE id = $2", [at, id]);
    }),
    recordEvent: m(async (s, at: string) => {
      await exec(
        `INSERT INTO alerts (credential, kind, stage, severity, title, detail, action, event, opened_at, last_sent_at, resolved_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8, $8, $8)`,
        [s.credential, s.kind, s.stage, s.severity, s.title, s.detail, s.action, at],
      );
    }),
    eventSent: m(
      async (s) =>
        (await one("SELECT 1 FROM alerts WHERE event AND COALESCE(credential, '') = COALESCE($1, '') AND kind = $2 AND stage = $3 LIMIT 1", [
          s.credential,
          s.kind,
          s.stage,
        ])) !== undefined,
    ),

    // mailbox
    recordMailboxMessage: m(async (r) => {
      const row = await one<{ id: number }>(
        `INSERT INTO mailbox_messages (source, message_key, message_id, sender, subject, credential, matched_by, outcome, reason,
           details_json, handled_at, folder)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
        [
          r.source,
          r.message_key,
          r.message_id,
          r.sender,
          r.subject,
          r.credential,
          r.matched_by,
          r.outcome,
          r.reason,
          r.details_json,
          r.handled_at,
          r.folder,
        ],
      );
      return row!.id;
    }),
    seenMessageKeys: m(
      async (source: string) =>
        new Set(
          (await all<{ message_key: string }>("SELECT message_key FROM mailbox_messages WHERE source = $1", [source])).map((r) => r.message_key),
        ),
    ),
    unmovedMessages: m((source: string) =>
      all<MailboxMessageRow>("SELECT * FROM mailbox_messages WHERE source = $1 AND folder IS NOT NULL AND moved_at IS NULL ORDER BY id", [source]),
    ),
    markMessageMoved: m(async (id: number, at: string) => {
      await exec("UPDATE mailbox_messages SET moved_at = $1 WHERE id = $2", [at, id]);
    }),
    handledCopy: m((messageId: string) =>
      one<MailboxMessageRow>("SELECT * FROM mailbox_messages WHERE message_id = $1 AND outcome NOT IN ('ignored', 'duplicate') ORDER BY id LIMIT 1", [
        messageId,
      ]),
    ),
    // One query for all ids; the answer in the order (and with the repeats) of `ids`, as SQLite's loop gives it.
    sentThreads: m(async (ids: readonly string[]) => {
      if (ids.length === 0) return [];
      const rows = await all<SentThread>(
        `SELECT message_id, credential, kind FROM outbox WHERE message_id = ANY($1::text[]) AND credential IS NOT NULL
           AND kind IN ('csr', 'csr-reminder', 'registration')`,
        [[...ids]],
      );
      const byId = new Map(rows.map((r) => [r.message_id, r]));
      return ids.flatMap((id) => {
        const r = byId.get(id);
        return r ? [{ ...r }] : [];
      });
    }),
    lastMailboxMessages: m(() =>
      all<MailboxMessageRow>(
        `SELECT * FROM mailbox_messages WHERE id IN (SELECT MAX(id) FROM mailbox_messages WHERE credential IS NOT NULL GROUP BY credential)
           ORDER BY id`,
      ),
    ),
    mailboxSource: m((source: string) => one<MailboxSourceRow>("SELECT * FROM mailbox_sources WHERE source = $1", [source])),
    recordSourceFailure: m(async (source: string, error: string, at: string) => {
      const r = await one<MailboxSourceRow>(
        `INSERT INTO mailbox_sources (source, failing_since, last_error, failures) VALUES ($1, $2, $3, 1)
         ON CONFLICT (source) DO UPDATE SET failing_since = COALESCE(mailbox_sources.failing_since, EXCLUDED.failing_since),
           last_error = EXCLUDED.last_error, failures = mailbox_sources.failures + 1
         RETURNING *`,
        [source, at, error],
      );
      return r!;
    }),
    markSourceAlerted: m(async (source: string, at: string) => {
      await exec("UPDATE mailbox_sources SET alerted_at = $1 WHERE source = $2", [at, source]);
    }),
    // One statement: `before` reads the row as the statement found it, the upsert changes it.
    recordSourceOk: m((source: string, at: string) =>
      one<MailboxSourceRow>(
        `WITH before AS (SELECT * FROM mailbox_sources WHERE source = $1),
           up AS (INSERT INTO mailbox_sources (source, last_ok_at) VALUES ($1, $2)
             ON CONFLICT (source) DO UPDATE SET failing_since = NULL, last_error = NULL, failures = 0, alerted_at = NULL,
               last_ok_at = EXCLUDED.last_ok_at
             RETURNING 1)
         SELECT * FROM before`,
        [source, at],
      ),
    ),

    // snapshot: one query per table in one REPEATABLE READ transaction (one moment), as on SQLite.
    readSnapshot: m(() => atomic("read", (q) => readSnapshot(q, shared.host))),

    tx: async <T>(fn: (s: Store) => Promise<T>): Promise<T> => {
      if (tx || shared.inside.getStore())
        throw new CreddError("INTERNAL", "a store transaction inside a transaction: nested transactions are not supported");
      if (shared.closed) throw new CreddError("INTERNAL", "store transaction after close()");
      while (shared.gate) await shared.gate;
      // Taken in the same turn as the last check: nothing can open another transaction in between.
      let end!: () => void;
      shared.gate = new Promise<void>((resolve) => {
        end = resolve;
      });
      const scope = { ended: false };
      try {
        return await onClient(shared, "BEGIN", async (client) => {
          try {
            return await shared.inside.run(true, () => fn(make(shared, { client, scope })));
          } finally {
            scope.ended = true;
          }
        });
      } finally {
        scope.ended = true;
        shared.gate = undefined;
        end();
      }
    },

    close: async () => {
      if (tx) throw new CreddError("INTERNAL", "close() on a transaction's store");
      guard();
      while (shared.gate) await shared.gate;
      if (shared.closed) return;
      shared.closed = true;
      await shared.pool.end();
    },
  };
  return store;
}

/**
 * `fn` on one pooled client between `begin` and COMMIT; a throw rolls back and is rethrown. A client
 * whose ROLLBACK or COMMIT failed (connection lost) is destroyed, not handed back to the pool.
 */
async function onClient<T>(shared: Shared, begin: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await shared.pool.connect();
  } catch (err) {
    throw describePgError(err, shared.target, "cannot connect to");
  }
  // A checked-out client's lost connection is emitted on it: heard here (the query under way fails), never a crash.
  const lost = (): void => {};
  client.on("error", lost);
  let broken: Error | undefined;
  try {
    try {
      await run(client, shared, begin, []);
    } catch (err) {
      broken = err instanceof Error ? err : new Error(String(err));
      throw err;
    }
    let result: T;
    try {
      result = await fn(client);
    } catch (err) {
      broken = await rollback(client);
      throw err;
    }
    try {
      await run(client, shared, "COMMIT", []);
    } catch (err) {
      broken = await rollback(client);
      throw err;
    }
    return result;
  } finally {
    client.off("error", lost);
    client.release(broken);
  }
}

/** Undo after a failure; returns the error if the connection could not (it is then thrown away). */
async function rollback(client: pg.PoolClient): Promise<Error | undefined> {
  try {
    await client.query("ROLLBACK");
    return undefined;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

async function setMeta(q: Exec, key: string, value: string): Promise<void> {
  await q("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", [key, value]);
}

const FACTS = {
  live: "SELECT credential, serial, not_before, not_after, ca_not_after FROM certificates WHERE live",
  pending: `SELECT credential, id, state, created_at, sent_at, reminded_at FROM renewals
    WHERE state IN ('created','sent','signed','registered')`,
  latest: `SELECT r.credential, r.created_at FROM renewals r
    JOIN (SELECT MAX(id) AS id FROM renewals GROUP BY credential) m ON m.id = r.id`,
} as const;

function byName<T extends { credential: string | null }>(rows: Row[]): Map<string, T> {
  const out = new Map<string, T>();
  for (const r of rows as T[]) if (r.credential !== null) out.set(r.credential, r);
  return out;
}

const SNAPSHOT = {
  live: `SELECT credential, version, serial, not_before, not_after, sha256, source, installed_at, went_live_at, subject,
      ca_not_after, ca_not_after_role, ca_not_after_subject, ca_not_after_serial
    FROM certificates WHERE live`,
  pending: "SELECT * FROM renewals WHERE state IN ('created','sent','signed','registered')",
  latest: FACTS.latest,
  checks: "SELECT * FROM checks",
  tokens: "SELECT * FROM tokens WHERE host = $1",
  hooks: `SELECT h.* FROM hook_runs h JOIN hook_runs l ON l.id IN (SELECT MAX(id) FROM hook_runs GROUP BY credential)
    AND h.credential = l.credential AND h.started_at = l.started_at ORDER BY h.id`,
  refusals: `SELECT * FROM ingests WHERE id IN
    (SELECT MAX(id) FROM ingests WHERE outcome = 'refused' AND credential IS NOT NULL
       AND COALESCE(check_name, '') <> 'previously-live' GROUP BY credential)`,
  queued: "SELECT id, kind, credential, created_at, attempts, last_error, last_error_permanent FROM outbox WHERE sent_at IS NULL ORDER BY id",
  alerts: "SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY id",
  meta: "SELECT key, value FROM meta WHERE key IN ('last_check_at', 'check_period_ms')",
} as const;

async function readSnapshot(q: Exec, host: string): Promise<Snapshot> {
  const hooks = new Map<string, HookRunRow[]>();
  for (const h of (await q(SNAPSHOT.hooks)) as unknown as HookRunRow[]) {
    const runs = hooks.get(h.credential);
    if (runs) runs.push(h);
    else hooks.set(h.credential, [h]);
  }
  const latestCsrAt = new Map<string, string>();
  for (const r of (await q(SNAPSHOT.latest)) as { credential: string; created_at: string }[]) latestCsrAt.set(r.credential, r.created_at);
  const meta = new Map(((await q(SNAPSHOT.meta)) as { key: string; value: string }[]).map((r) => [r.key, r.value]));
  return {
    live: byName<LiveCertificate>(await q(SNAPSHOT.live)),
    pending: byName<RenewalRow & ProbeFields>(await q(SNAPSHOT.pending)),
    latestCsrAt,
    checks: byName<CheckRow>(await q(SNAPSHOT.checks)),
    tokens: byName<TokenRow>(
      ((await q(SNAPSHOT.tokens, [host])) as unknown as (TokenRow & { host?: string })[]).map((r) => withoutHost(r)!) as unknown as Row[],
    ),
    hooks,
    refusals: byName<IngestRow & { id: number }>(await q(SNAPSHOT.refusals)),
    queued: (await q(SNAPSHOT.queued)) as unknown as QueuedSummary[],
    alerts: (await q(SNAPSHOT.alerts)) as unknown as AlertRow[],
    lastCheckAt: meta.get("last_check_at"),
    checkPeriodMs: periodMs(meta.get("check_period_ms")),
  };
}

/** snapshot.ts's periodMs (not imported: that module loads the SQLite driver). */
function periodMs(value: string | undefined): number | undefined {
  const n = Number(value);
  return value !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}
