// The SQLite store on a real file: migrations applied once and recorded, one pending renewal, outbox claims.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { MIGRATIONS_DIR, migrate, openDb } from "../../src/store/db.js";
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

test("at most one pending renewal per credential (enforced by the schema)", () => {
  const db = openDb(tmp());
  const r = { credential: "a", kind: "renew" as const, forced: 0 as const, reason: "x", spki_sha256: "00", key_type: "rsa-2048", created_at: "2026-01-01T00:00:00.000Z" };
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
  assert.deepEqual(first.map((q) => q.mail.messageId), ["<1@x>", "<2@x>"]);
  assert.equal(claimDue(db2, now, 60_000).length, 0, "both are claimed");
  markMailSent(db1, first[0]!.row.id, now);
  markMailFailed(db1, first[1]!.row.id, "down", new Date(now.getTime() + 60_000));
  assert.equal(claimDue(db2, new Date(now.getTime() + 59_000), 60_000).length, 0, "not due yet");
  const again = claimDue(db2, new Date(now.getTime() + 60_000), 60_000);
  assert.deepEqual(again.map((q) => q.mail.messageId), ["<2@x>"], "same Message-ID on retry");
  assert.equal(again[0]!.row.attempts, 1);
  assert.equal(queuedMails(db2).length, 1);
  db1.close();
  db2.close();
});
