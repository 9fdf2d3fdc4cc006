// Read-only access to credd's store for the reliability checks, on SQLite (state_dir/credd.db,
// better-sqlite3) or PostgreSQL (the `pg` client), with no credd running. The statements are
// written once in the subset both dialects share: `?` placeholders (numbered for PostgreSQL here),
// flags compared with TRUE/FALSE (SQLite's 1/0), aggregates repeated in HAVING. Rows come back as
// SQLite gives them: counts and ids as numbers, flags as 0/1, times as ISO strings, json as text.
import { existsSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
// The row conversions PgStore reads with: PostgreSQL rows come back shaped like SQLite's.
import { TYPES } from "../../../src/store/pg/pg-store.js";

export type StoreTarget =
  | { kind: "sqlite"; stateDir: string }
  | {
      kind: "postgres";
      /** The test cluster's role and database (as credd's url file names them). */
      connection: pg.ClientConfig;
      /** The host name credd runs under (CREDD_HOST_NAME): the tokens row is per host. */
      host: string;
    };

export interface StoreReader {
  readonly kind: StoreTarget["kind"];
  all<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  get<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T | undefined>;
  /** The tables that exist (credd's, not the dialect's catalog). */
  tables(): Promise<Set<string>>;
  close(): Promise<void>;
}

/** The store, or undefined when credd has not created it yet (killed before its first migration). */
export async function openStoreReader(target: StoreTarget): Promise<StoreReader | undefined> {
  if (target.kind === "sqlite") {
    const file = join(target.stateDir, "credd.db");
    if (!existsSync(file)) return undefined;
    const db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma("busy_timeout = 10000");
    return {
      kind: "sqlite",
      all: async <T>(sql: string, params: unknown[] = []) => db.prepare(sql).all(...params) as T[],
      get: async <T>(sql: string, params: unknown[] = []) => db.prepare(sql).get(...params) as T | undefined,
      tables: async () => new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name)),
      close: async () => void db.close(),
    };
  }
  const client = new pg.Client({ ...target.connection, types: TYPES });
  await client.connect();
  const numbered = (sql: string) => {
    let n = 0;
    return sql.replace(/\?/g, () => `$${++n}`);
  };
  const all = async <T>(sql: string, params: unknown[] = []) => (await client.query({ text: numbered(sql), values: params })).rows as T[];
  const reader: StoreReader = {
    kind: "postgres",
    all,
    get: async <T>(sql: string, params: unknown[] = []) => (await all<T>(sql, params))[0],
    tables: async () =>
      new Set(
        (await all<{ name: string }>("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()")).map(
          (r) => r.name,
        ),
      ),
    close: () => client.end(),
  };
  // A database no credd has migrated yet is "not created": the same as SQLite's missing file.
  if (!(await reader.tables()).has("schema_migrations")) {
    await reader.close();
    return undefined;
  }
  return reader;
}

/** Runs `fn` on the store, closing it after; `fallback` when there is no store yet. */
export async function withStore<T>(target: StoreTarget, fallback: T, fn: (r: StoreReader) => Promise<T>): Promise<T> {
  const r = await openStoreReader(target);
  if (!r) return fallback;
  try {
    return await fn(r);
  } finally {
    await r.close();
  }
}
