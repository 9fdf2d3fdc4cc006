// Applies migrations/postgres/NNNN_name.sql to the shared store, the PostgreSQL twin of db.ts's
// migrate: under an advisory lock (two hosts starting together never migrate at once; the second
// waits, then finds the work done), each file in its own transaction with its row in
// schema_migrations. A database that has a migration this credd does not know (a newer credd on
// another host migrated it) is refused: this version could misread it.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import { CreddError, errorMessage } from "../../errors.js";
import { connectClient, describePgError, type PgTarget } from "./connect.js";
import { CREDD_LOCKS, MIGRATE_LOCK } from "./locks.js";

/** migrations/postgres/ sits three levels above this file both in src/store/pg and in dist/store/pg. */
export const PG_MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "migrations", "postgres");

export interface PgMigrateOptions {
  dir?: string;
  /** How long to wait for another host's migration before giving up (default 120 s). */
  lockTimeoutMs?: number;
}

interface MigrationFile {
  version: number;
  name: string;
}

/** The numbered files of `dir`, in order; two files with one number are refused. */
export function pgMigrationFiles(dir: string): MigrationFile[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new CreddError("INTERNAL", `cannot read the PostgreSQL migrations in ${dir}: ${errorMessage(err)} (reinstall credd)`, { cause: err });
  }
  const files = names
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((name) => ({ version: Number(name.slice(0, 4)), name }));
  const twice = files.find((f, i) => files.findIndex((g) => g.version === f.version) !== i);
  if (twice) throw new CreddError("INTERNAL", `two migrations in ${dir} share the number ${String(twice.version).padStart(4, "0")}`);
  return files;
}

/**
 * Brings the database named by `target` to the newest schema in `dir`. Returns the files applied
 * (none when another host, or an earlier start, already did).
 */
export async function migratePg(target: PgTarget, opts: PgMigrateOptions = {}): Promise<string[]> {
  const dir = opts.dir ?? PG_MIGRATIONS_DIR;
  const files = pgMigrationFiles(dir);
  const lockMs = Math.max(1, Math.round(opts.lockTimeoutMs ?? 120_000));
  // A broken connection (server restart, network) fails the query under way; the lock went with the session.
  const client = await connectClient(target);
  try {
    try {
      await client.query(`SET lock_timeout = ${lockMs}`);
      await client.query("SELECT pg_advisory_lock($1, $2)", [CREDD_LOCKS, MIGRATE_LOCK]);
      await client.query("RESET lock_timeout");
    } catch (err) {
      if ((err as { code?: unknown }).code === "55P03")
        throw new CreddError(
          "LOCKED",
          `another credd host has been migrating PostgreSQL ${target.where} for more than ${lockMs < 1000 ? `${lockMs} ms` : `${Math.round(lockMs / 1000)} s`} (advisory lock ${CREDD_LOCKS}/${MIGRATE_LOCK}; fix: see which host in pg_stat_activity, application_name credd, and let it finish or stop it; then start this host again)`,
          { cause: err },
        );
      throw describePgError(err, target, "cannot lock");
    }
    try {
      return await applyAll(client, target, dir, files);
    } finally {
      await client.query("SELECT pg_advisory_unlock($1, $2)", [CREDD_LOCKS, MIGRATE_LOCK]).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function applyAll(client: pg.Client, target: PgTarget, dir: string, files: MigrationFile[]): Promise<string[]> {
  const q = async (sql: string, params?: unknown[]) => {
    try {
      return await client.query(sql, params);
    } catch (err) {
      throw describePgError(err, target, "cannot migrate");
    }
  };
  await q(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)`);
  const done = new Map<number, string>();
  for (const r of (await q("SELECT version, name FROM schema_migrations ORDER BY version")).rows as { version: number; name: string }[])
    done.set(r.version, r.name);
  const known = new Set(files.map((f) => f.version));
  const newest = files.reduce((m, f) => Math.max(m, f.version), 0);
  const unknown = [...done.entries()].filter(([v]) => !known.has(v));
  if (unknown.length > 0) {
    const list = unknown.map(([v, name]) => `${String(v).padStart(4, "0")} (${name})`).join(", ");
    const newer = unknown.some(([v]) => v > newest);
    throw new CreddError(
      "STATE",
      newer
        ? `PostgreSQL ${target.where} has schema migration ${list}, newer than this credd knows (up to ${String(newest).padStart(4, "0")}): a newer credd migrated it. ` +
            "Fix: upgrade credd on this host to the version the other hosts run; this one would misread the store"
        : `PostgreSQL ${target.where} has schema migration ${list}, which this credd does not have in ${dir}. ` +
            "Fix: run the same credd version on every host (reinstall this one)",
    );
  }
  const applied: string[] = [];
  for (const f of files) {
    if (done.has(f.version)) continue;
    const sql = readFileSync(join(dir, f.name), "utf8");
    try {
      await client.query("BEGIN");
      await client.query(sql);
      await client.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())", [f.version, f.name]);
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw describePgError(err, target, `migration ${join(dir, f.name)} failed (rolled back) on`);
    }
    applied.push(f.name);
  }
  return applied;
}
