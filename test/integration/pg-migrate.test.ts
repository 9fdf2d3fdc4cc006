// migrations/postgres/ and store/pg/migrate.ts on a real PostgreSQL: two hosts migrating at once
// apply each file exactly once (the advisory lock), a failed file is rolled back alone, a database
// migrated by a newer credd is refused, and the schema has SQLite's tables, columns, nullability
// and indexes (compared with a fresh database from store/db.ts's openDb).
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { CreddError } from "../../src/errors.js";
import { MIGRATIONS_DIR, openDb } from "../../src/store/db.js";
import { type PgTarget, pgTarget } from "../../src/store/pg/connect.js";
import { CREDD_LOCKS, MIGRATE_LOCK } from "../../src/store/pg/locks.js";
import { migratePg, PG_MIGRATIONS_DIR, pgMigrationFiles } from "../../src/store/pg/migrate.js";
import { type PgCluster, postgresMissing, startPostgres } from "../helpers/postgres.js";

const skip = postgresMissing();

test("every SQLite migration has its PostgreSQL twin with the same number and name, and no other", () => {
  const sqlite = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f));
  assert.deepEqual(
    pgMigrationFiles(PG_MIGRATIONS_DIR).map((f) => f.name),
    sqlite.sort(),
  );
});

describe("migrations on a real PostgreSQL", { skip }, () => {
  let cluster: PgCluster;
  let work: string;
  let admin: pg.Client;
  /** A fresh database per test, owned by the test role, and the target to reach it; `admin` is moved to it. */
  let dbs = 0;
  const freshDb = async (): Promise<PgTarget> => {
    const name = `mig_${++dbs}`;
    await admin.query(`CREATE DATABASE ${name} OWNER ${cluster.user}`);
    await admin.end();
    admin = await cluster.admin(name);
    const f = join(work, `url-${name}`);
    writeFileSync(f, `postgres://${cluster.user}:${encodeURIComponent(cluster.password)}@127.0.0.1:${cluster.port}/${name}\n`, { mode: 0o600 });
    return pgTarget({ urlFile: f });
  };
  const query = async (t: PgTarget, sql: string, params: unknown[] = []) => {
    const c = new pg.Client(t.config);
    await c.connect();
    try {
      return (await c.query(sql, params)).rows;
    } finally {
      await c.end();
    }
  };

  before(async () => {
    cluster = await startPostgres();
    work = mkdtempSync(join(tmpdir(), "credd-pgm-"));
    admin = await cluster.admin();
  });
  after(async () => {
    await admin?.end();
    await cluster?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("two hosts migrating at once: both wait for the lock, then each file is applied exactly once", async () => {
    const t = await freshDb();
    const files = pgMigrationFiles(PG_MIGRATIONS_DIR).map((f) => f.name);
    // Hold the migration lock as a third party, so both migrators are surely waiting at the same time.
    await admin.query("SELECT pg_advisory_lock($1, $2)", [CREDD_LOCKS, MIGRATE_LOCK]);
    const a = migratePg(t);
    const b = migratePg(t);
    let waiting = 0;
    // Polls a condition (both connected and queued on the lock), bounded; no timing is asserted.
    for (const until = Date.now() + 30_000; waiting < 2 && Date.now() < until; ) {
      const r = await admin.query(
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2 AND NOT granted",
        [CREDD_LOCKS, MIGRATE_LOCK],
      );
      waiting = r.rows[0].n;
      if (waiting < 2) await new Promise((r) => setImmediate(r));
    }
    assert.equal(waiting, 2, "both migrators wait on the advisory lock");
    await admin.query("SELECT pg_advisory_unlock($1, $2)", [CREDD_LOCKS, MIGRATE_LOCK]);
    const [ra, rb] = await Promise.all([a, b]);
    assert.deepEqual([...ra, ...rb].sort(), files, "the files were applied once between them");
    assert.ok(ra.length === 0 || rb.length === 0, "one host did all the work; the other found it done");
    const rows = await query(t, "SELECT version, name FROM schema_migrations ORDER BY version");
    assert.deepEqual(
      rows.map((r) => r.name),
      files,
    );
    assert.deepEqual(await migratePg(t), [], "a later start applies nothing");
  });

  test("another host migrating too long: a LOCKED error saying what to look at", async () => {
    const t = await freshDb();
    await admin.query("SELECT pg_advisory_lock($1, $2)", [CREDD_LOCKS, MIGRATE_LOCK]);
    try {
      const err = await migratePg(t, { lockTimeoutMs: 100 }).then(
        () => assert.fail("migrated while another held the lock"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CreddError);
      assert.equal(err.code, "LOCKED");
      assert.match(err.message, /another credd host has been migrating .* pg_stat_activity/);
    } finally {
      await admin.query("SELECT pg_advisory_unlock($1, $2)", [CREDD_LOCKS, MIGRATE_LOCK]);
    }
    assert.equal((await query(t, "SELECT to_regclass('certificates') AS t"))[0].t, null, "nothing was applied");
  });

  test("a database migrated by a newer credd is refused, and left as it is", async () => {
    const t = await freshDb();
    await migratePg(t);
    await query(t, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9001, '9001_future.sql', now())");
    const err = await migratePg(t).then(
      () => assert.fail("migrated a database from the future"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CreddError);
    assert.equal(err.code, "STATE");
    assert.match(err.message, /schema migration 9001 \(9001_future\.sql\), newer than this credd knows \(up to 0011\).*upgrade credd on this host/);
    assert.ok(!err.message.includes(cluster.password));
  });

  test("a failing file is rolled back alone: the ones before it stay applied and recorded", async () => {
    const t = await freshDb();
    const dir = join(work, "broken");
    mkdirSync(dir);
    copyFileSync(join(PG_MIGRATIONS_DIR, "0001_init.sql"), join(dir, "0001_init.sql"));
    writeFileSync(join(dir, "0002_broken.sql"), "CREATE TABLE half_done (id integer);\nALTER TABLE no_such_table ADD COLUMN x text;\n");
    const err = await migratePg(t, { dir }).then(
      () => assert.fail("a broken migration passed"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CreddError);
    assert.match(err.message, /0002_broken\.sql failed \(rolled back\).*no_such_table/);
    const rows = await query(t, "SELECT name FROM schema_migrations");
    assert.deepEqual(
      rows.map((r) => r.name),
      ["0001_init.sql"],
    );
    assert.equal((await query(t, "SELECT to_regclass('half_done') AS t"))[0].t, null, "0002's first statement was rolled back with it");
    const locks = await admin.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1", [CREDD_LOCKS]);
    assert.equal(locks.rows[0].n, 0, "the lock is released after a failure");
  });

  test("the schema has SQLite's tables, columns, nullability and indexes, with translated types", async () => {
    const t = await freshDb();
    await migratePg(t);

    const state = mkdtempSync(join(tmpdir(), "credd-pgm-sqlite-"));
    const sqlite = openDb(state);
    type Col = { table: string; column: string; notnull: boolean; type: string };
    const lite: Col[] = [];
    let liteIndexes: string[];
    try {
      const tables = (
        sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[]
      ).map((r) => r.name);
      // SQLite's PRIMARY KEY columns are NOT NULL in effect (INTEGER PRIMARY KEY is the rowid), as in PostgreSQL.
      for (const table of tables)
        for (const c of sqlite.prepare(`SELECT name, type, "notnull", pk FROM pragma_table_info(?)`).all(table) as {
          name: string;
          type: string;
          notnull: number;
          pk: number;
        }[])
          lite.push({ table, column: c.name, notnull: c.notnull === 1 || c.pk > 0, type: c.type.toUpperCase() });
      liteIndexes = (sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").all() as { name: string }[])
        .map((r) => r.name)
        .sort();
    } finally {
      sqlite.close();
      rmSync(state, { recursive: true, force: true });
    }

    const allPgCols = (await query(
      t,
      `SELECT table_name AS table, column_name AS column, is_nullable = 'NO' AS notnull, data_type AS type
         FROM information_schema.columns WHERE table_schema = current_schema()`,
    )) as Col[];
    // PostgreSQL-only tables (their SQLite twin migration does nothing): the sealed archive (0010).
    const pgOnly = new Set(["archive"]);
    assert.ok(allPgCols.some((c) => c.table === "archive" && c.column === "key_envelope" && c.type === "bytea"));
    // And PostgreSQL-only columns: tokens are per host there (0011).
    const pgOnlyCols = new Set(["tokens.host"]);
    const pgCols = allPgCols.filter((c) => !pgOnly.has(c.table) && !pgOnlyCols.has(`${c.table}.${c.column}`));
    const key = (c: Col) => `${c.table}.${c.column}`;
    assert.deepEqual(pgCols.map(key).sort(), lite.map(key).sort(), "the same tables and columns");
    const pgBy = new Map(pgCols.map((c) => [key(c), c]));
    const mismatches: string[] = [];
    for (const c of lite) {
      const p = pgBy.get(key(c))!;
      if (p.notnull !== c.notnull) mismatches.push(`${key(c)}: NOT NULL ${c.notnull} in SQLite, ${p.notnull} in PostgreSQL`);
      const allowed =
        c.type === "INTEGER" ? ["integer", "bigint", "boolean"] : c.type === "TEXT" ? ["text", "timestamp with time zone", "json"] : [`(${c.type})`];
      if (!allowed.includes(p.type)) mismatches.push(`${key(c)}: ${c.type} in SQLite became ${p.type}`);
      if (/(_at|^not_before|^not_after|^state_since|^ca_not_after)$/.test(c.column) && c.type === "TEXT" && p.type !== "timestamp with time zone")
        mismatches.push(`${key(c)}: a time, but ${p.type}`);
      if (c.column.endsWith("_json") && p.type !== "json") mismatches.push(`${key(c)}: JSON text, but ${p.type}`);
    }
    assert.deepEqual(mismatches, []);

    const pgIndexes = (
      await query(
        t,
        `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()
            AND indexname NOT IN (SELECT conname FROM pg_constraint)`,
      )
    )
      .map((r) => r.indexname as string)
      .sort();
    assert.deepEqual(pgIndexes, liteIndexes, "the same named indexes (unique and partial ones included)");

    // The partial unique indexes mean the same: one live certificate, one open alert per situation.
    await query(
      t,
      `INSERT INTO certificates (credential, version, serial, not_before, not_after, subject, issuer, spki_sha256, sha256, source, installed_at, live)
       VALUES ('c', 1, 's1', now(), now(), 'CN=a', 'CN=ca', 'k', 'h1', 'import', now(), true),
              ('c', 2, 's2', now(), now(), 'CN=a', 'CN=ca', 'k', 'h2', 'renewal', now(), false)`,
    );
    await assert.rejects(query(t, "UPDATE certificates SET live = true WHERE version = 2"), /certificates_one_live/);
    const alert = `INSERT INTO alerts (credential, kind, stage, severity, title, detail, action, opened_at, last_sent_at)
                   VALUES (NULL, 'smtp-failing', '1h', 'warning', 't', 'd', 'a', now(), now())`;
    await query(t, alert);
    await assert.rejects(query(t, alert), /alerts_one_open/);
  });
});
