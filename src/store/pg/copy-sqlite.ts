// `credd migrate-store --to postgres` (docs/shared-store.md): copies a SQLite state (state_dir/credd.db
// and the private keys, CSRs, certificates and chains of state_dir/credentials/*/archive/) into an
// empty PostgreSQL database. The source is only read (credd.db opened read-only, the files read):
// it is never changed nor deleted, and switching `store:` is the operator's step.
//
// One transaction: the tables locked, checked empty, every table copied in id order with its types
// converted (ISO 8601 text → timestamptz, 0/1 → boolean, *_json text → json, kept as written; the
// token rows and this host's own meta keys become this host's, and `hosts` is not copied),
// the identities moved past the highest id, the archive files stored (keys sealed under the KEK),
// then the whole copy verified (row counts, every row field by field after conversion, every
// sealed key opened and compared byte for byte with its file). A mismatch rolls everything back.
// Before that, credd.db and archive/ are read again: `credd import` and `credd enroll` do not take
// state_dir's lock, so one may have written meanwhile; what changed is named and nothing is written.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import type pg from "pg";
import { CreddError, errorMessage } from "../../errors.js";
import { credentialPaths } from "../../files/layout.js";
import { type Db, dbPath, MIGRATIONS_DIR, openDbForReading, prep } from "../db.js";
import { connectClient, describePgError, type PgTarget } from "./connect.js";
import { type Kek, unwrapKey, wrapKey } from "./keywrap.js";
import { migratePg } from "./migrate.js";
import { TYPES } from "./pg-store.js";

export interface CopyOptions {
  stateDir: string;
  /** Named in messages when state_dir holds no database. */
  configFile?: string;
  target: PgTarget;
  kek: Kek;
  /** This host's name: the SQLite token rows are this host's (tokens are per host on PostgreSQL, migration 0011). */
  host: string;
  /** One line per step (stderr). */
  progress: (line: string) => void;
  /** Migrations folders, for tests. */
  sqliteMigrationsDir?: string;
  pgMigrationsDir?: string;
}

export interface CopiedTable {
  table: string;
  rows: number;
}

export interface SkippedTable {
  table: string;
  /** Rows in SQLite, left out. */
  rows: number;
  why: string;
}

export interface CopyResult {
  source: string;
  where: string;
  tables: CopiedTable[];
  /** SQLite tables left out on purpose (hosts). */
  notCopied: SkippedTable[];
  /** The SQLite meta keys stored as this host's (KEY@host), as credd run on PostgreSQL keeps them. */
  hostMeta: string[];
  /** Versions in the archive table, and the private keys sealed among them. */
  versions: number;
  keys: number;
  files: number;
  kekId: string;
}

/** Tables that are PostgreSQL's own bookkeeping or filled from files, not copied from SQLite's tables. */
const NOT_COPIED = new Set(["schema_migrations", "archive"]);
/**
 * SQLite tables left out, and why. `hosts` tells the SQLite host's liveness (its role, leader, and
 * last heartbeat): copied, it would show on PostgreSQL as a stale leader nobody is, and count in
 * the standby-missing alert; each host appears there as its credd run heartbeats.
 */
const SKIPPED: Record<string, string> = {
  hosts: "the SQLite host's heartbeat and role, not this store's: each host appears as its credd run heartbeats on PostgreSQL",
};
/**
 * The meta keys credd run keeps per host on PostgreSQL as KEY@host (src/daemon/run.ts, `own`), and
 * without a host on SQLite: stored as the copying host's, like its token rows, so its next start
 * reads its own clean_stop.
 */
const HOST_META = new Set(["clean_stop", "started_at", "stopped_at"]);
const PART_COLUMN = { csr: "csr_pem", cert: "cert_pem", chain: "chain_pem" } as const;
const PARTS = ["key", "csr", "cert", "chain"] as const;
const BATCH = 200;

interface Column {
  name: string;
  type: string;
}

interface Table {
  name: string;
  /** PostgreSQL's columns, in order. */
  columns: Column[];
  /** SQLite's primary key columns: what a row is found by on both sides. */
  key: string[];
  hasId: boolean;
}

interface ArchiveVersion {
  credential: string;
  version: number;
  files: Partial<Record<"key" | "csr" | "cert" | "chain", { file: string; bytes: Buffer }>>;
}

type Row = Record<string, unknown>;

export async function copySqliteToPostgres(o: CopyOptions): Promise<CopyResult> {
  const source = dbPath(o.stateDir);
  const db = openDbForReading(o.stateDir, o.configFile);
  try {
    refuseOlderSqlite(db, source, o.sqliteMigrationsDir ?? MIGRATIONS_DIR);
    // Read before anything is written: an unreadable key file stops the command here.
    const archive = readArchive(o.stateDir);
    o.progress(`source: ${source} and ${archive.length} archive version(s) under ${join(o.stateDir, "credentials")}`);
    const applied = await migratePg(o.target, o.pgMigrationsDir ? { dir: o.pgMigrationsDir } : {});
    o.progress(`PostgreSQL ${o.target.where}: schema ${applied.length ? `migrated (${applied.length} file(s))` : "up to date"}`);
    const client = await connectClient(o.target);
    try {
      return await copyInOneTransaction(client, db, archive, source, o);
    } finally {
      await client.end().catch(() => undefined);
    }
  } finally {
    db.close();
  }
}

/** The SQLite state must have every migration this credd has: its columns are then PostgreSQL's. */
function refuseOlderSqlite(db: Db, source: string, dir: string): void {
  const files = readdirSync(dir).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f));
  const has = prep(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get()
    ? new Set((prep(db, "SELECT version FROM schema_migrations").all() as { version: number }[]).map((r) => r.version))
    : new Set<number>();
  const missing = files.filter((f) => !has.has(Number(f.slice(0, 4))));
  if (missing.length > 0)
    throw new CreddError(
      "STATE",
      `${source} lacks schema migration(s) ${missing.join(", ")} of this credd: it was last used by an older credd (fix: start this credd's \`credd run\` once with store: sqlite, so it migrates the file, stop it, then run credd migrate-store again)`,
    );
}

/** Every `{key,csr,cert,chain}-N.pem` of state_dir/credentials/NAME/archive/, read now. */
function readArchive(stateDir: string): ArchiveVersion[] {
  const root = join(stateDir, "credentials");
  let names: string[];
  try {
    names = readdirSync(root).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new CreddError("IO", `cannot list ${root}: ${errorMessage(err)} (fix: run as credd's user)`, { cause: err });
  }
  const out: ArchiveVersion[] = [];
  for (const credential of names) {
    const dir = credentialPaths(stateDir, credential).archive;
    let files: string[];
    try {
      if (!statSync(join(root, credential)).isDirectory()) continue;
      files = readdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw new CreddError("IO", `cannot list ${dir}: ${errorMessage(err)} (fix: run as credd's user)`, { cause: err });
    }
    const byVersion = new Map<number, ArchiveVersion>();
    for (const f of files.sort()) {
      const m = /^(key|csr|cert|chain)-(\d+)\.pem$/.exec(f);
      if (!m) continue;
      const version = Number(m[2]);
      const file = join(dir, f);
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch (err) {
        throw new CreddError("IO", `cannot read ${file}: ${errorMessage(err)} (fix: run credd migrate-store as credd's user)`, { cause: err });
      }
      let v = byVersion.get(version);
      if (!v) {
        v = { credential, version, files: {} };
        byVersion.set(version, v);
      }
      v.files[m[1] as "key"] = { file, bytes };
    }
    out.push(...[...byVersion.values()].sort((a, b) => a.version - b.version));
  }
  return out;
}

async function copyInOneTransaction(client: pg.Client, db: Db, archive: ArchiveVersion[], source: string, o: CopyOptions): Promise<CopyResult> {
  const q = async (sql: string, params: unknown[] = []): Promise<Row[]> => {
    try {
      return (await client.query<Row>({ text: sql, values: params, types: TYPES })).rows;
    } catch (err) {
      throw describePgError(err, o.target, "the copy failed (rolled back, nothing written) on");
    }
  };
  const tables = await describeTables(q, db);
  await q("BEGIN");
  try {
    // Nobody writes meanwhile (a credd run started on the database now waits for the copy).
    const every = [...tables.map((t) => t.name), ...Object.keys(SKIPPED), "archive"];
    await q(`LOCK TABLE ${every.join(", ")} IN EXCLUSIVE MODE`);
    const used: string[] = [];
    for (const t of every) {
      const n = Number((await q(`SELECT count(*) AS n FROM ${t}`))[0]!.n);
      if (n > 0) used.push(`${t} (${n} row${n === 1 ? "" : "s"})`);
    }
    if (used.length > 0)
      throw new CreddError(
        "STATE",
        `PostgreSQL ${o.target.where} already holds credd rows: ${used.join(", ")}. credd migrate-store copies only into an empty database, and changed nothing ` +
          "(fix: give it a new, empty database; or, if these rows are a failed or older copy nobody runs on, drop and create the database again)",
      );
    const copied: CopiedTable[] = [];
    /** The SQLite rows as read for the copy: what the check compares PostgreSQL with. */
    const copiedRows = new Map<string, Row[]>();
    for (const t of tables) {
      const rows = sqliteRows(db, t);
      copiedRows.set(t.name, rows);
      for (let i = 0; i < rows.length; i += BATCH)
        await insertRows(
          q,
          t,
          rows.slice(i, i + BATCH).map((r) => asThisHost(t, r, o.host)),
        );
      if (t.hasId)
        await q(`SELECT setval(pg_get_serial_sequence('${t.name}', 'id'), GREATEST(COALESCE(max(id), 0), 1), max(id) IS NOT NULL) FROM ${t.name}`);
      copied.push({ table: t.name, rows: rows.length });
      o.progress(`copied ${t.name}: ${rows.length} row${rows.length === 1 ? "" : "s"}`);
    }
    const notCopied = Object.entries(SKIPPED).map(([table, why]) => {
      const n = sqliteTableExists(db, table) ? Number((prep(db, `SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n) : 0;
      o.progress(`not copied ${table}: ${n} row${n === 1 ? "" : "s"} (${why})`);
      return { table, rows: n, why };
    });
    const hostMeta = (copiedRows.get("meta") ?? []).map((r) => String(r.key)).filter((k) => HOST_META.has(k));
    if (hostMeta.length) o.progress(`meta ${hostMeta.join(", ")}: stored as this host's (${hostMeta.map((k) => `${k}@${o.host}`).join(", ")})`);
    let keys = 0;
    for (const v of archive) {
      const key = v.files.key;
      // PgStore hands keys out as UTF-8 text: a key that would not come back byte for byte is refused.
      if (key) text(v, "key");
      const envelope = key ? wrapKey(o.kek, { credential: v.credential, version: v.version }, key.bytes) : null;
      if (key) keys++;
      await q(
        `INSERT INTO archive (credential, version, key_envelope, kek_id, csr_pem, cert_pem, chain_pem, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now())`,
        [v.credential, v.version, envelope, envelope ? o.kek.id : null, text(v, "csr"), text(v, "cert"), text(v, "chain")],
      );
    }
    const files = archive.reduce((n, v) => n + Object.keys(v.files).length, 0);
    o.progress(`stored archive: ${archive.length} version(s), ${files} file(s), ${keys} private key(s) sealed under key-encryption key ${o.kek.id}`);

    // The check, before COMMIT: what is committed is what was compared. First the source as it is
    // now, then PostgreSQL against what was read from it.
    sourceUnchanged(db, tables, copiedRows, archive, o);
    for (const t of tables)
      await verifyTable(
        q,
        t,
        (copiedRows.get(t.name) ?? []).map((r) => asThisHost(t, r, o.host)),
        o,
      );
    await verifyArchive(q, archive, o);
    o.progress("verified: row counts, every row field by field, every file and sealed key byte for byte");
    await q("COMMIT");
    return { source, where: o.target.where, tables: copied, notCopied, hostMeta, versions: archive.length, keys, files, kekId: o.kek.id };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

/** A PEM file as text, refused when it would not come back byte for byte (not UTF-8, or a NUL). */
function text(v: ArchiveVersion, part: "key" | "csr" | "cert" | "chain"): string | null {
  const f = v.files[part];
  if (!f) return null;
  const s = f.bytes.toString("utf8");
  if (!Buffer.from(s, "utf8").equals(f.bytes) || s.includes("\0"))
    throw new CreddError(
      "REFUSED",
      `${f.file} is not PEM text (not UTF-8, or holds a NUL byte) (fix: restore the file from a backup, or move it out of archive/)`,
    );
  return s;
}

/** The copied tables, from PostgreSQL's schema, each checked against SQLite's columns. */
async function describeTables(q: (sql: string, params?: unknown[]) => Promise<Row[]>, db: Db): Promise<Table[]> {
  const cols = (await q(
    `SELECT table_name, column_name, data_type FROM information_schema.columns
     WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`,
  )) as { table_name: string; column_name: string; data_type: string }[];
  const byTable = new Map<string, Column[]>();
  for (const c of cols) {
    if (NOT_COPIED.has(c.table_name) || Object.hasOwn(SKIPPED, c.table_name)) continue;
    let list = byTable.get(c.table_name);
    if (!list) {
      list = [];
      byTable.set(c.table_name, list);
    }
    list.push({ name: c.column_name, type: c.data_type });
  }
  const tables: Table[] = [];
  for (const [name, columns] of [...byTable.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const info = prep(db, `PRAGMA table_info(${name})`).all() as { name: string; pk: number }[];
    if (info.length === 0) throw new CreddError("INTERNAL", `table ${name} of the PostgreSQL schema is not in the SQLite schema`);
    const onlySqlite = info.filter((c) => !columns.some((p) => p.name === c.name)).map((c) => c.name);
    const onlyPg = columns.filter((p) => !info.some((c) => c.name === p.name) && !(name === "tokens" && p.name === "host")).map((p) => p.name);
    if (onlySqlite.length || onlyPg.length)
      throw new CreddError(
        "INTERNAL",
        `the schemas differ on table ${name}: only in SQLite ${onlySqlite.join(", ") || "-"}, only in PostgreSQL ${onlyPg.join(", ") || "-"}`,
      );
    const key = info
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
    tables.push({ name, columns, key, hasId: columns.some((c) => c.name === "id") });
  }
  // Parents before children: outbox and certificates point at renewals.
  const order = ["renewals"];
  return tables.sort((a, b) => (order.includes(b.name) ? 1 : 0) - (order.includes(a.name) ? 1 : 0));
}

function sqliteTableExists(db: Db, name: string): boolean {
  return prep(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

/**
 * A SQLite row as it is stored on PostgreSQL, still in SQLite's types: the token rows are this
 * host's (tokens are per host there, migration 0011), and so are the meta keys credd run keeps per
 * host (HOST_META, as KEY@host).
 */
function asThisHost(t: Table, r: Row, host: string): Row {
  if (t.name === "tokens") return { ...r, host };
  if (t.name === "meta" && HOST_META.has(String(r.key))) return { ...r, key: `${String(r.key)}@${host}` };
  return r;
}

function sqliteRows(db: Db, t: Table): Row[] {
  return prep(db, `SELECT * FROM ${t.name} ORDER BY ${t.hasId ? "id" : "rowid"}`).all() as Row[];
}

function rowName(t: Table, r: Row): string {
  return `${t.name} ${t.key.map((k) => `${k}=${String(r[k])}`).join(" ")}`;
}

/** A SQLite value as PostgreSQL takes it for a column of `type`; refused (naming the row and column) when it is not one. */
function toPg(t: Table, r: Row, c: Column): unknown {
  const v = r[c.name];
  if (v === null || v === undefined) return null;
  const bad = (what: string): never => {
    throw new CreddError(
      "REFUSED",
      `${rowName(t, r)}: ${c.name} is not ${what} in the SQLite state (fix: correct that row, then run credd migrate-store again)`,
    );
  };
  switch (c.type) {
    case "timestamp with time zone":
      return typeof v === "string" && !Number.isNaN(Date.parse(v)) ? v : bad("a time");
    case "boolean":
      return v === 0 || v === 1 ? v === 1 : bad("0 or 1");
    case "bigint":
    case "integer":
      return typeof v === "number" && Number.isInteger(v) ? v : typeof v === "bigint" ? v.toString() : bad("a whole number");
    default:
      // PostgreSQL refuses these with a message that names neither the row nor the column.
      if (typeof v === "string" && v.includes("\0")) return bad("text without a NUL byte");
      if (c.type === "json" && !isJson(v)) return bad("JSON text");
      return v;
  }
}

function isJson(v: unknown): boolean {
  try {
    JSON.parse(String(v));
    return true;
  } catch {
    return false;
  }
}

/** The value PgStore's conversions give back for a SQLite value: what the copy must read back. */
function expected(c: Column, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (c.type === "timestamp with time zone") return new Date(v as string).toISOString();
  if (c.type === "bigint") return Number(v);
  return v;
}

async function insertRows(q: (sql: string, params?: unknown[]) => Promise<Row[]>, t: Table, rows: Row[]): Promise<void> {
  if (rows.length === 0) return;
  const params: unknown[] = [];
  const values = rows.map((r) => {
    const one = t.columns.map((c) => {
      params.push(toPg(t, r, c));
      return `$${params.length}`;
    });
    return `(${one.join(", ")})`;
  });
  await q(`INSERT INTO ${t.name} (${t.columns.map((c) => c.name).join(", ")}) OVERRIDING SYSTEM VALUE VALUES ${values.join(", ")}`, params);
}

/**
 * credd.db and archive/ read again: a `credd import` or `credd enroll` (which do not take state_dir's
 * lock) that wrote meanwhile would leave the copy without a version or a row. Names tables, rows and
 * files, never values; a STATE error, since running it again copies the whole, newer state.
 */
function sourceUnchanged(db: Db, tables: Table[], copiedRows: Map<string, Row[]>, archive: ArchiveVersion[], o: CopyOptions): void {
  const tablesChanged: string[] = [];
  for (const t of tables) {
    const then = copiedRows.get(t.name) ?? [];
    const now = sqliteRows(db, t);
    if (!isDeepStrictEqual(now, then))
      tablesChanged.push(
        `${t.name}: ${then.length} row${then.length === 1 ? "" : "s"} copied, ${now.length === then.length ? "a row changed since" : `${now.length} now`}`,
      );
  }
  const again = readArchive(o.stateDir);
  const name = (v: { credential: string; version: number }) => `${v.credential} version ${v.version}`;
  const was = new Map(archive.map((v) => [name(v), v]));
  const is = new Map(again.map((v) => [name(v), v]));
  // A certificate row copied whose files were not there when archive/ was read: written meanwhile.
  const certified = new Set(
    (copiedRows.get("certificates") ?? []).map((r) => name({ credential: String(r.credential), version: Number(r.version) })),
  );
  const filesChanged: string[] = [];
  for (const [n, v] of is) {
    const old = was.get(n);
    if (!old) {
      filesChanged.push(`${n} appeared${certified.has(n) ? " (its certificates row was copied, its files were not)" : ""}`);
      continue;
    }
    for (const part of PARTS) {
      const a = old.files[part];
      const b = v.files[part];
      if (!a && b) filesChanged.push(`${b.file} appeared`);
      else if (a && !b) filesChanged.push(`${a.file} went away`);
      else if (a && b && !a.bytes.equals(b.bytes)) filesChanged.push(`${b.file} changed`);
    }
  }
  for (const n of was.keys()) if (!is.has(n)) filesChanged.push(`${n} went away`);
  for (const v of again) for (const f of Object.values(v.files)) f.bytes.fill(0);
  const list = (xs: string[]) => `${xs.slice(0, 5).join("; ")}${xs.length > 5 ? `; and ${xs.length - 5} more` : ""}`;
  const fix =
    "(rolled back, nothing written; fix: a credd import, enroll or ingest wrote to state_dir meanwhile: let it finish, run nothing else on this state_dir, then run credd migrate-store again)";
  if (filesChanged.length > 0)
    throw new CreddError(
      "STATE",
      `archive/ changed during the copy: run it again. Under ${join(o.stateDir, "credentials")}: ${list(filesChanged)}${tablesChanged.length ? `; and ${dbPath(o.stateDir)}: ${list(tablesChanged)}` : ""} ${fix}`,
    );
  if (tablesChanged.length > 0)
    throw new CreddError("STATE", `${dbPath(o.stateDir)} changed during the copy: run it again. ${list(tablesChanged)} ${fix}`);
}

/** Counts and every row, field by field, as PgStore reads them; names rows and columns, never values. */
async function verifyTable(q: (sql: string, params?: unknown[]) => Promise<Row[]>, t: Table, src: Row[], o: CopyOptions): Promise<void> {
  const dst = await q(`SELECT * FROM ${t.name}`);
  const problems: string[] = [];
  if (src.length !== dst.length) problems.push(`${src.length} rows in SQLite, ${dst.length} in PostgreSQL`);
  const keyOf = (r: Row) => JSON.stringify(t.key.map((k) => r[k]));
  const byKey = new Map(dst.map((r) => [keyOf(r), r]));
  for (const r of src) {
    const got = byKey.get(keyOf(r));
    if (!got) {
      problems.push(`${rowName(t, r)} is missing`);
      continue;
    }
    for (const c of t.columns) {
      const want = expected(c, r[c.name]);
      if (got[c.name] !== want) problems.push(`${rowName(t, r)}: ${c.name} differs`);
    }
  }
  if (t.hasId && src.length > 0) {
    const max = Math.max(...src.map((r) => Number(r.id)));
    const seq = await q(`SELECT nextval(pg_get_serial_sequence('${t.name}', 'id')) AS next`);
    if (Number(seq[0]!.next) <= max) problems.push(`its identity would give id ${String(seq[0]!.next)}, not past ${max}`);
    // Put back what nextval took, so the next insert gets max + 1.
    await q(`SELECT setval(pg_get_serial_sequence('${t.name}', 'id'), $1, true)`, [max]);
  }
  if (problems.length > 0)
    throw new CreddError(
      "INTERNAL",
      `the copy of table ${t.name} does not match ${dbPath(o.stateDir)}: ${problems.slice(0, 5).join("; ")}${problems.length > 5 ? `; and ${problems.length - 5} more` : ""} (rolled back, nothing written; please report this)`,
    );
}

async function verifyArchive(q: (sql: string, params?: unknown[]) => Promise<Row[]>, archive: ArchiveVersion[], o: CopyOptions): Promise<void> {
  const rows = (await q("SELECT credential, version, key_envelope, kek_id, csr_pem, cert_pem, chain_pem FROM archive")) as {
    credential: string;
    version: number;
    key_envelope: Buffer | null;
    kek_id: string | null;
    csr_pem: string | null;
    cert_pem: string | null;
    chain_pem: string | null;
  }[];
  const problems: string[] = [];
  if (rows.length !== archive.length) problems.push(`${archive.length} versions in archive/, ${rows.length} rows in the archive table`);
  for (const v of archive) {
    const r = rows.find((x) => x.credential === v.credential && x.version === v.version);
    const name = `${v.credential} version ${v.version}`;
    if (!r) {
      problems.push(`${name} is missing`);
      continue;
    }
    for (const part of ["csr", "cert", "chain"] as const) {
      const f = v.files[part];
      const got = r[PART_COLUMN[part]];
      if (f ? got === null || !Buffer.from(got, "utf8").equals(f.bytes) : got !== null)
        problems.push(`${name}: ${part} differs from ${f?.file ?? "(no file)"}`);
    }
    const key = v.files.key;
    if (!key) {
      if (r.key_envelope !== null) problems.push(`${name}: a key stored with no key file`);
      continue;
    }
    if (r.key_envelope === null || r.kek_id !== o.kek.id) {
      problems.push(`${name}: the key is not sealed under ${o.kek.id}`);
      continue;
    }
    const plain = unwrapKey(o.kek, { credential: v.credential, version: v.version }, r.key_envelope);
    if (!plain.equals(key.bytes)) problems.push(`${name}: the sealed key does not open to ${key.file}`);
    plain.fill(0);
  }
  if (problems.length > 0)
    throw new CreddError(
      "INTERNAL",
      `the copy of archive/ does not match: ${problems.slice(0, 5).join("; ")}${problems.length > 5 ? `; and ${problems.length - 5} more` : ""} (rolled back, nothing written; please report this)`,
    );
}
