// Opens the SQLite database (WAL, foreign keys, busy timeout) and applies numbered migrations.
import Database from "better-sqlite3";
import { createRequire } from "node:module";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CreddError, errorMessage } from "../errors.js";
import { describeDbError, sqliteCodeOf } from "./db-errors.js";

export type Db = Database.Database;

/** migrations/ sits two levels above this file both in src/store and in dist/store. */
export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "migrations");

export function dbPath(stateDir: string): string {
  return join(stateDir, "credd.db");
}

export interface OpenOptions {
  readonly?: boolean;
  migrationsDir?: string;
  /**
   * With readonly: read a copy of the database file into memory instead of opening it. For a
   * reader who may not write state_dir (`credd status` by someone in group credd) while no credd
   * process has the database open: SQLite then needs to create the WAL's -shm file and cannot.
   * Only exact when there is no -wal file (after a clean stop every change is in the main file).
   */
  snapshot?: boolean;
  /** How long to wait for another connection's lock before SQLITE_BUSY (default 5 s). */
  busyTimeoutMs?: number;
}

const BUSY_TIMEOUT_MS = 5000;

/**
 * better-sqlite3's compiled addon, named directly: otherwise its first open has the `bindings`
 * package look for it in a dozen places (about 5 ms of every command). Left to `bindings` if it is
 * not where npm builds it.
 */
export const NATIVE: { nativeBinding?: string } = (() => {
  try {
    return { nativeBinding: createRequire(import.meta.url).resolve("better-sqlite3/build/Release/better_sqlite3.node") };
  } catch {
    return {};
  }
})();

export function openDb(stateDir: string, opts: OpenOptions = {}): Db {
  const file = dbPath(stateDir);
  let db: Db;
  try {
    if (!opts.readonly) mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    if (opts.readonly && opts.snapshot) {
      const image = readFileSync(file);
      // Header bytes 18-19 are 2 in WAL mode; an in-memory database cannot be WAL, so say "rollback".
      if (image.length >= 20 && image[18] === 2) image[18] = image[19] = 1;
      db = new Database(image, { readonly: true, ...NATIVE });
    } else db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false, ...NATIVE });
  } catch (err) {
    const hint = opts.readonly
      ? "no state yet: start `credd run`, or run `credd import`/`credd enroll` first"
      : "check that state_dir exists and is writable by this user";
    throw new CreddError("IO", `cannot open database ${file}: ${errorMessage(err)} (${hint})`, { cause: err });
  }
  const busyMs = opts.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
  nameFileInErrors(db, file, busyMs);
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.round(busyMs))}`);
    if (!opts.readonly) {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
    }
    db.pragma("foreign_keys = ON");
    if (!opts.readonly) migrate(db, opts.migrationsDir ?? MIGRATIONS_DIR);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** The database of a state_dir that has none yet: what a reading command reports, and nothing is made. */
export class NoDatabaseError extends CreddError {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super("NOT_FOUND", message);
    this.name = "NoDatabaseError";
  }
}

/**
 * For commands that only read (status, token while its token is valid, alerts, check-config): the
 * existing database, read-only. It never creates state_dir or the database (a typo in state_dir
 * must not leave an empty credd.db behind and pass for "no certificates yet"); SQLite itself may
 * add its -wal and -shm files beside an existing database, as any reader of a WAL database does.
 * Readable also by a user who may read the state but not write its folder (group credd): with no
 * credd process holding the database open, SQLite would have to create the -shm file and cannot,
 * so such a reader gets an in-memory copy instead; the file is complete then (no -wal left behind).
 * `configFile` is named in the message when there is no database.
 */
export function openDbForReading(stateDir: string, configFile?: string): Db {
  const file = dbPath(stateDir);
  if (!existsSync(file)) {
    const where = configFile ? `state_dir in ${configFile}` : "state_dir";
    const why = existsSync(stateDir)
      ? `${stateDir} exists but holds no database yet`
      : `the folder ${stateDir} does not exist`;
    throw new NoDatabaseError(
      file,
      `no credd database at ${file}: ${why}. credd has not run with this state_dir yet (start \`credd run\`, ` +
        `or \`credd import\`/\`credd enroll\` a credential), or ${where} names the wrong folder`,
    );
  }
  const db = openDb(stateDir, { readonly: true });
  try {
    db.prepare("SELECT count(*) FROM sqlite_master").get();
    return db;
  } catch (err) {
    db.close();
    const code = sqliteCodeOf(err);
    const wal = `${file}-wal`;
    const walEmpty = !existsSync(wal) || statSync(wal).size === 0;
    if (/^SQLITE_(READONLY|CANTOPEN)/.test(code) && walEmpty) return openDb(stateDir, { readonly: true, snapshot: true });
    throw new CreddError(
      "IO",
      `cannot read the database in ${stateDir}: ${errorMessage(err)} (run it as credd's user, e.g. sudo -u credd credd status, or while credd run is running)`,
      { cause: err },
    );
  }
}

/**
 * Every error from this connection that comes from outside credd (locked, disk full, read-only,
 * I/O, damaged) names the file and the fix (see db-errors.ts): SQLite's own "database is locked"
 * says neither which database nor who holds it.
 */
function nameFileInErrors(db: Db, file: string, busyMs: number): void {
  const named = <A extends unknown[], R>(fn: (...args: A) => R, self: unknown): ((...args: A) => R) =>
    function (this: unknown, ...args: A): R {
      try {
        return fn.apply(this ?? self, args);
      } catch (err) {
        throw describeDbError(err, file, busyMs);
      }
    };
  const prepare = db.prepare.bind(db);
  db.prepare = ((source: string) => {
    const st = prepare(source);
    st.run = named(st.run, st) as typeof st.run;
    st.get = named(st.get, st) as typeof st.get;
    st.all = named(st.all, st) as typeof st.all;
    st.iterate = named(st.iterate, st) as typeof st.iterate;
    return st;
  }) as Db["prepare"];
  db.exec = named(db.exec, db) as Db["exec"];
  db.pragma = named(db.pragma, db) as Db["pragma"];
  const transaction = db.transaction.bind(db);
  db.transaction = ((fn: (...args: unknown[]) => unknown) => {
    const t = transaction(fn);
    const variants = { default: t.default, deferred: t.deferred, immediate: t.immediate, exclusive: t.exclusive };
    const wrapped = Object.fromEntries(Object.entries(variants).map(([k, v]) => [k, named(v, undefined)]));
    const props = { ...Object.fromEntries(Object.entries(wrapped).map(([k, v]) => [k, { value: v }])), database: { value: db, enumerable: true } };
    for (const v of Object.values(wrapped)) Object.defineProperties(v, props);
    return wrapped.default;
  }) as Db["transaction"];
}

/** Applies every `NNNN_name.sql` not yet recorded, in order, one transaction each. */
export function migrate(db: Db, dir: string): string[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const done = new Set(
    (db.prepare("SELECT version FROM schema_migrations").all() as { version: number }[]).map((r) => r.version),
  );
  const files = readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort();
  const applied: string[] = [];
  const versions = files.map((f) => f.slice(0, 4));
  const twice = versions.find((v, i) => versions.indexOf(v) !== i);
  if (twice) throw new CreddError("INTERNAL", `two migrations in ${dir} share the number ${twice}`);
  for (const f of files) {
    const version = Number(f.slice(0, 4));
    if (done.has(version)) continue;
    const sql = readFileSync(join(dir, f), "utf8");
    db.transaction(() => {
      db.exec(sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
        version,
        f,
        new Date().toISOString(),
      );
    })();
    applied.push(f);
  }
  return applied;
}

const statements = new WeakMap<Db, Map<string, Database.Statement>>();

/** A prepared statement, compiled once per connection: the store runs the same few queries all day. */
export function prep(db: Db, sql: string): Database.Statement {
  let cache = statements.get(db);
  if (!cache) {
    cache = new Map();
    statements.set(db, cache);
  }
  let st = cache.get(sql);
  if (!st) {
    st = db.prepare(sql);
    cache.set(sql, st);
  }
  return st;
}
