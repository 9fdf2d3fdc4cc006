// The SQLite store on a real file: migrations applied once and recorded, one pending renewal, outbox claims.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, cpSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { DbError } from "../../src/store/db-errors.js";
import { dbPath, inTransaction, MIGRATIONS_DIR, migrate, openDb, openDbForReading, prep, SchemaTooNewError } from "../../src/store/db.js";
import { getMeta, setMeta } from "../../src/store/checks.js";
import { claimDue, enqueueMail, markMailFailed, markMailSent, queuedMails } from "../../src/store/outbox.js";
import { insertRenewal, pendingRenewal, setRenewalState } from "../../src/store/renewals.js";

const tmp = () => mkdtempSync(join(tmpdir(), "credd-store-"));
const mail = (id: string) => ({ messageId: id, from: "a@b", to: ["c@d"], cc: [], subject: "s", text: "t", attachments: [] });

test("migrations are applied in order, once, and recorded; WAL and foreign keys are on", () => {
  const dir = tmp();
  const db = openDb(dir);
  const rows = db.prepare("SELECT version, name FROM schema_migrations ORDER BY version").all() as { version: number; name: string }[];
  assert.equal(rows[0]?.name, "0001_init.sql");
  assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
  assert.equal(db.pragma("foreign_keys", { simple: true }), 1);
  assert.deepEqual(migrate(db, MIGRATIONS_DIR), [], "second run applies nothing");
  db.close();
});

test("a failing migration rolls back entirely and is not recorded", () => {
  const dir = tmp();
  const mig = join(dir, "migrations");
  cpSync(MIGRATIONS_DIR, mig, { recursive: true });
  writeFileSync(join(mig, "9999_bad.sql"), "CREATE TABLE half (x INTEGER);\nTHIS IS NOT SQL;\n");
  assert.throws(() => openDb(join(dir, "state"), { migrationsDir: mig }));
  const db = openDb(join(dir, "state"), { migrationsDir: MIGRATIONS_DIR });
  const names = (db.prepare("SELECT name FROM sqlite_master WHERE type='table'").all() as { name: string }[]).map((r) => r.name);
  assert.ok(!names.includes("half"), "the half-applied table was rolled back");
  const recorded = (db.prepare("SELECT name FROM schema_migrations").all() as { name: string }[]).map((r) => r.name);
  assert.ok(!recorded.includes("9999_bad.sql"));
  assert.ok(recorded.includes("0001_init.sql"));
  db.close();
});

test("a database a newer credd migrated is refused, writing or reading, naming the file, both versions and the fix", () => {
  const dir = tmp();
  const state = join(dir, "state");
  const file = dbPath(state);
  // The newer credd: today's migrations and one more.
  const newer = join(dir, "newer-migrations");
  cpSync(MIGRATIONS_DIR, newer, { recursive: true });
  writeFileSync(join(newer, "0042_future.sql"), "CREATE TABLE future (x INTEGER);\n");
  openDb(state, { migrationsDir: newer }).close();
  const bytes = readFileSync(file);
  const known = Math.max(...readdirSync(MIGRATIONS_DIR).flatMap((f) => (/^\d{4}_/.test(f) ? [Number(f.slice(0, 4))] : [])));
  assert.ok(known < 42);
  const check = (err: unknown) => {
    assert.ok(err instanceof SchemaTooNewError, String(err));
    assert.equal(err.code, "IO");
    assert.equal(err.file, file);
    assert.equal(err.known, known);
    assert.equal(err.recorded, 42);
    assert.ok(err.message.includes(`database ${file} was migrated by a newer credd`), err.message);
    assert.ok(err.message.includes("schema migration 42 (0042_future.sql)"), err.message);
    assert.ok(err.message.includes(`the newest this credd knows is ${known}`), err.message);
    assert.match(
      err.message,
      /Fix: install the newer credd again; or, .*restore the backup of state_dir taken before the upgrade, together with this older package/,
    );
    return true;
  };
  // This (older) credd: every way it opens the database.
  assert.throws(() => openDb(state), check);
  assert.throws(() => openDb(state, { readonly: true }), check);
  assert.throws(() => openDb(state, { readonly: true, snapshot: true }), check);
  assert.throws(() => openDbForReading(state), check);
  assert.deepEqual(readFileSync(file), bytes, "the database file is unchanged");
  // The newer credd still opens it, and a database at today's version opens as before.
  openDb(state, { migrationsDir: newer }).close();
  openDb(state, { readonly: true, migrationsDir: newer }).close();
  const same = openDb(join(dir, "today"));
  assert.deepEqual(migrate(same, MIGRATIONS_DIR), []);
  same.close();
  openDbForReading(join(dir, "today")).close();
});

test("at most one pending renewal per credential (enforced by the schema)", () => {
  const db = openDb(tmp());
  const r = {
    credential: "a",
    kind: "renew" as const,
    forced: 0 as const,
    reason: "x",
    spki_sha256: "00",
    key_type: "rsa-2048",
    created_at: "2026-01-01T00:00:00.000Z",
  };
  const id = insertRenewal(db, { ...r, version: 1 });
  assert.throws(() => insertRenewal(db, { ...r, version: 2 }), /UNIQUE/);
  setRenewalState(db, id, "superseded", "2026-01-02T00:00:00.000Z");
  insertRenewal(db, { ...r, version: 2 });
  assert.equal(pendingRenewal(db, "a")?.version, 2);
  db.close();
});

test("outbox: a claimed mail is not handed to a second sender; failures reschedule, sent mails leave the queue", () => {
  const dir = tmp();
  const db1 = openDb(dir);
  const db2 = openDb(dir); // a second connection, as the CLI beside the daemon
  const now = new Date("2026-01-01T00:00:00Z");
  enqueueMail(db1, { mail: mail("<1@x>"), kind: "csr", now });
  enqueueMail(db1, { mail: mail("<2@x>"), kind: "csr", now });
  const first = claimDue(db1, now, 60_000);
  assert.deepEqual(
    first.map((q) => q.mail.messageId),
    ["<1@x>", "<2@x>"],
  );
  assert.equal(claimDue(db2, now, 60_000).length, 0, "both are claimed");
  markMailSent(db1, first[0]!.row.id, now);
  markMailFailed(db1, first[1]!.row.id, "down", new Date(now.getTime() + 60_000));
  assert.equal(claimDue(db2, new Date(now.getTime() + 59_000), 60_000).length, 0, "not due yet");
  const again = claimDue(db2, new Date(now.getTime() + 60_000), 60_000);
  assert.deepEqual(
    again.map((q) => q.mail.messageId),
    ["<2@x>"],
    "same Message-ID on retry",
  );
  assert.equal(again[0]!.row.attempts, 1);
  assert.equal(queuedMails(db2).length, 1);
  db1.close();
  db2.close();
});

/** Another process (node + better-sqlite3) holding an exclusive lock on `file` until it is killed. */
async function holdLock(file: string): Promise<ChildProcess> {
  const script = `const D = require("better-sqlite3"); const db = new D(${JSON.stringify(file)});
db.exec("BEGIN EXCLUSIVE"); db.prepare("INSERT INTO meta (key, value) VALUES ('held', '1')").run();
process.stdout.write("locked\\n"); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`lock holder exited ${code}: ${err}`)));
  });
  return child;
}

test("database locked by another process: opening and using it name the file, the process holding it and the fix", async () => {
  const dir = tmp();
  const file = join(dir, "credd.db");
  const db = openDb(dir, { busyTimeoutMs: 50 });
  const holder = await holdLock(file);
  try {
    const check = (err: unknown) => {
      assert.ok(err instanceof DbError, String(err));
      assert.equal(err.code, "LOCKED");
      assert.equal(err.sqliteCode, "SQLITE_BUSY");
      assert.ok(err.message.includes(`database ${file} is locked`), err.message);
      assert.ok(err.message.includes(`pid ${holder.pid} (node)`), err.message);
      assert.match(err.message, /Fix: let that process finish and try again/);
      return true;
    };
    // Using it through store/: a write, and a transaction.
    assert.throws(() => setMeta(db, "x", "1"), check);
    assert.throws(() => inTransaction(db, () => setMeta(db, "y", "1")), check);
    // Opening it: reading goes on beside the lock (WAL), a migration to apply needs it.
    openDb(dir, { busyTimeoutMs: 50 }).close();
    const mig = join(dir, "migrations");
    cpSync(MIGRATIONS_DIR, mig, { recursive: true });
    writeFileSync(join(mig, "9998_more.sql"), "CREATE TABLE more (x INTEGER);\n");
    assert.throws(() => openDb(dir, { busyTimeoutMs: 50, migrationsDir: mig }), check);
    // A mistake of ours is not dressed up as a database failure.
    assert.throws(
      () => prep(db, "SELECT nope FROM meta").get(),
      (err: unknown) => !(err instanceof DbError) && /no such column/.test(String(err)),
    );
  } finally {
    holder.kill("SIGKILL");
    await new Promise((r) => holder.once("exit", r));
  }
  setMeta(db, "x", "1");
  db.close();
});

test("database full: the error names the file, says the disk is full and what to free", () => {
  const dir = tmp();
  const db = openDb(dir);
  // SQLite's own limit stands in for a full disk: the same SQLITE_FULL.
  const pages = db.pragma("page_count", { simple: true }) as number;
  db.pragma(`max_page_count = ${pages}`);
  assert.throws(
    () => setMeta(db, "big", "x".repeat(1 << 20)),
    (err: unknown) => {
      assert.ok(err instanceof DbError, String(err));
      assert.equal(err.sqliteCode, "SQLITE_FULL");
      assert.ok(err.message.startsWith(`database ${join(dir, "credd.db")}: the disk is full`), err.message);
      assert.ok(err.message.includes(`free space on the file system holding ${dir}`), err.message);
      return true;
    },
  );
  db.close();
});

test("the driver is used as published: no method of the connection or its statements is replaced", () => {
  const db = openDb(tmp());
  const fresh = openDb(tmp());
  for (const name of ["prepare", "exec", "pragma", "transaction"] as const) {
    assert.equal(Object.hasOwn(db, name), false, `db.${name} is better-sqlite3's own`);
  }
  const st = db.prepare("SELECT 1");
  for (const name of ["run", "get", "all", "iterate"] as const)
    assert.equal(Object.hasOwn(st, name), false, `statement.${name} is better-sqlite3's own`);
  assert.equal(db.prepare, fresh.prepare);
  db.close();
  fresh.close();
});

test("a reader who may not write the folder reads an in-memory copy of a WAL database: same rows, the file untouched, nothing created", () => {
  const dir = tmp();
  const db = openDb(dir);
  setMeta(db, "last_check_at", "2026-01-01T00:00:00.000Z");
  db.close(); // a clean stop: every change is in the main file, which still says WAL
  const file = dbPath(dir);
  const bytes = readFileSync(file);
  assert.equal(bytes[18], 2, "the file is in WAL mode");
  const before = readdirSync(dir).sort();
  const copy = openDb(dir, { readonly: true, snapshot: true });
  assert.equal(getMeta(copy, "last_check_at"), "2026-01-01T00:00:00.000Z");
  assert.equal(copy.pragma("journal_mode", { simple: true }), "wal", "the copy keeps the file's journal mode");
  assert.throws(() => setMeta(copy, "x", "1"), /readonly|query_only|attempt to write/i, "the copy is not written either");
  copy.close();
  assert.deepEqual(readdirSync(dir).sort(), before, "no -wal, -shm or other file created");
  assert.deepEqual(readFileSync(file), bytes, "the database file is unchanged");
  // openDbForReading opens the file itself when it can (here: root, or the folder's owner).
  const reader = openDbForReading(dir);
  assert.equal(getMeta(reader, "last_check_at"), "2026-01-01T00:00:00.000Z");
  reader.close();
});
