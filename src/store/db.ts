// Opens the SQLite database (WAL, foreign keys, busy timeout), applies numbered migrations, and is
// the one place store/ calls better-sqlite3 through (prep, inTransaction), naming the file in its errors.
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
   * The copy is SQLite's own deserialized database; its bytes are not changed.
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
    if (opts.readonly && opts.snapshot) db = new Database(readFileSync(file), NATIVE);
    else db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false, ...NATIVE });
  } catch (err) {
    const hint = opts.readonly
      ? "no state yet: start `credd run`, or run `credd import`/`credd enroll` first"
      : "check that state_dir exists and is writable by this user";
    throw new CreddError("IO", `cannot open database ${file}: ${errorMessage(err)} (${hint})`, { cause: err });
  }
  const busyMs = opts.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
  places.set(db, { file, busyMs });
  try {
    driver(db, () => {
      db.pragma(`busy_timeout = ${Math.max(0, Math.round(busyMs))}`);
      if (opts.readonly && opts.snapshot) {
        // The copy keeps the file's journal mode. A WAL database needs a shared-memory index, which
        // an in-memory database has not; in exclusive locking mode, set before the first read,
        // SQLite keeps that index in its own memory instead (its documented way to use WAL without
        // shared memory). query_only: the copy is never written, not even in memory.
        db.pragma("locking_mode = EXCLUSIVE");
        db.pragma("query_only = ON");
      }
      if (!opts.readonly) {
        db.pragma("journal_mode = WAL");
        db.pragma("synchronous = FULL");
      }
      db.pragma("foreign_keys = ON");
    });
    if (opts.readonly) refuseNewerSchema(db, opts.migrationsDir ?? MIGRATIONS_DIR);
    else migrate(db, opts.migrationsDir ?? MIGRATIONS_DIR);
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
    const why = existsSync(stateDir) ? `${stateDir} exists but holds no database yet` : `the folder ${stateDir} does not exist`;
    throw new NoDatabaseError(
      file,
      `no credd database at ${file}: ${why}. credd has not run with this state_dir yet (start \`credd run\`, ` +
        `or \`credd import\`/\`credd enroll\` a credential), or ${where} names the wrong folder`,
    );
  }
  try {
    // Its first read (the schema version check) is where SQLite finds it cannot make the -shm file.
    return openDb(stateDir, { readonly: true });
  } catch (err) {
    const code = sqliteCodeOf(err);
    if (!code) throw err; // credd's own refusal (a database newer than this credd): it says what to do
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

/** Where each connection's errors point: its file and its busy timeout (set by openDb). */
const places = new WeakMap<Db, { file: string; busyMs: number }>();

/**
 * Runs `fn`, which calls the driver on `db`; a failure that comes from outside credd (locked, disk
 * full, read-only, I/O, damaged) comes out naming the file and the fix (db-errors.ts): SQLite's own
 * "database is locked" says neither which database nor who holds it. Every call store/ makes into
 * better-sqlite3 goes through here (prep's statements, inTransaction, openDb, migrate), so the
 * driver itself is used as published.
 */
function driver<T>(db: Db, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const place = places.get(db) ?? { file: db.name, busyMs: BUSY_TIMEOUT_MS };
    throw describeDbError(err, place.file, place.busyMs);
  }
}

/**
 * Runs `fn` in one transaction: BEGIN, COMMIT, or ROLLBACK when it throws (better-sqlite3's
 * `transaction`, nested ones as savepoints). Failures name the database file as in `driver`.
 */
export function inTransaction<T>(db: Db, fn: () => T): T {
  return driver(db, () => db.transaction(fn)());
}

/** The `NNNN_name.sql` files of `dir`, in order; two with one number are credd's own mistake. */
function migrationFiles(dir: string): string[] {
  const files = readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort();
  const versions = files.map((f) => f.slice(0, 4));
  const twice = versions.find((v, i) => versions.indexOf(v) !== i);
  if (twice) throw new CreddError("INTERNAL", `two migrations in ${dir} share the number ${twice}`);
  return files;
}

/**
 * A database that a newer credd migrated: it records a migration newer than any in `dir`. An
 * older credd would run on a schema it was not written for, so it is refused (code IO, exit 1,
 * `status` 3 UNKNOWN, like a database that is damaged or not credd's: this credd cannot use it).
 */
export class SchemaTooNewError extends CreddError {
  constructor(
    /** The database file. */
    readonly file: string,
    /** The newest migration this credd has (its number), 0 with none. */
    readonly known: number,
    /** The newest migration the database records. */
    readonly recorded: number,
    recordedName: string,
  ) {
    super(
      "IO",
      `database ${file} was migrated by a newer credd: it records schema migration ${recorded} (${recordedName}), ` +
        `and the newest this credd knows is ${known}. An older credd does not run on a newer schema. Fix: install ` +
        "the newer credd again; or, to go back to this version, stop credd and restore the backup of state_dir " +
        "taken before the upgrade, together with this older package (docs/install.md, Downgrade)",
    );
    this.name = "SchemaTooNewError";
  }
}

/**
 * Throws SchemaTooNewError when `db` records a migration newer than the newest file in `dir`.
 * A database with no schema_migrations table yet (a new one) passes.
 */
export function refuseNewerSchema(db: Db, dir: string): void {
  const table = prep(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (!table) return;
  const newest = prep(db, "SELECT version, name FROM schema_migrations ORDER BY version DESC LIMIT 1").get() as
    | { version: number; name: string }
    | undefined;
  if (!newest) return;
  const files = migrationFiles(dir);
  const known = files.length ? Number(files[files.length - 1]?.slice(0, 4)) : 0;
  if (newest.version > known) throw new SchemaTooNewError(places.get(db)?.file ?? db.name, known, newest.version, newest.name);
}

/**
 * Applies every `NNNN_name.sql` not yet recorded, in order, one transaction each; first refuses a
 * database that records a migration newer than any in `dir` (refuseNewerSchema), changing nothing.
 */
export function migrate(db: Db, dir: string): string[] {
  refuseNewerSchema(db, dir);
  driver(db, () =>
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`),
  );
  const done = new Set((prep(db, "SELECT version FROM schema_migrations").all() as { version: number }[]).map((r) => r.version));
  const files = migrationFiles(dir);
  const applied: string[] = [];
  for (const f of files) {
    const version = Number(f.slice(0, 4));
    if (done.has(version)) continue;
    const sql = readFileSync(join(dir, f), "utf8");
    inTransaction(db, () => {
      driver(db, () => db.exec(sql));
      prep(db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(version, f, new Date().toISOString());
    });
    applied.push(f);
  }
  return applied;
}

/**
 * A prepared statement as store/ uses it: run, get and all of better-sqlite3's Statement, each
 * failure named as in `driver`.
 */
export class Query {
  constructor(
    private readonly db: Db,
    private readonly st: Database.Statement,
  ) {}

  run(...params: unknown[]): Database.RunResult {
    return driver(this.db, () => this.st.run(...params));
  }

  get(...params: unknown[]): unknown {
    return driver(this.db, () => this.st.get(...params));
  }

  all(...params: unknown[]): unknown[] {
    return driver(this.db, () => this.st.all(...params));
  }
}

const statements = new WeakMap<Db, Map<string, Query>>();

/** A prepared statement, compiled once per connection: the store runs the same few queries all day. */
export function prep(db: Db, sql: string): Query {
  let cache = statements.get(db);
  if (!cache) {
    cache = new Map();
    statements.set(db, cache);
  }
  let q = cache.get(sql);
  if (!q) {
    q = new Query(
      db,
      driver(db, () => db.prepare(sql)),
    );
    cache.set(sql, q);
  }
  return q;
}
