// An older credd on a database a newer credd migrated, with the real binary: status is UNKNOWN
// (exit 3), a command that writes exits 1, both naming the file, both versions and the fix; the
// database is left as it was.
import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { dbPath, MIGRATIONS_DIR, openDb } from "../../src/store/db.js";
import { runCredd, writeConfig } from "../helpers/credd.js";
import { makeTempDir } from "../helpers/openssl.js";

test("a database migrated by a newer credd: status exits 3, rollback exits 1, each saying what to do; nothing changes", async () => {
  const dir = makeTempDir("credd-e2e-downgrade-");
  const state = join(dir, "state");
  const config = writeConfig(
    dir,
    `state_dir: ${state}\nsmtp: { url: "smtp://127.0.0.1:1", from: "credd <credd@partner.example>" }\n` +
      "alerts: { to: [ops@partner.example] }\nstellantis: { contact: connectedcar@stellantis.example }\ncredentials:\n" +
      "  - name: fleet-prod\n    mzp: MZP128745\n    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }\n",
  );
  const newer = join(dir, "newer-migrations");
  cpSync(MIGRATIONS_DIR, newer, { recursive: true });
  writeFileSync(join(newer, "0099_future.sql"), "CREATE TABLE future (x INTEGER);\n");
  openDb(state, { migrationsDir: newer }).close();
  const file = dbPath(state);
  const bytes = readFileSync(file);
  const says = (text: string) => {
    assert.ok(text.includes(`database ${file} was migrated by a newer credd`), text);
    assert.match(text, /records schema migration 99 \(0099_future\.sql\), and the newest this credd knows is \d+/);
    assert.match(text, /Fix: install the newer credd again; or, .*restore the backup of state_dir taken before the upgrade/);
  };

  const status = await runCredd(["--config", config, "status"]);
  assert.equal(status.code, 3, status.stderr);
  assert.match(status.stderr, /^credd status: UNKNOWN: /);
  says(status.stderr);

  const json = await runCredd(["--config", config, "status", "--json"]);
  assert.equal(json.code, 3);
  const body = JSON.parse(json.stdout) as { status: string; exit_code: number; error: string };
  assert.equal(body.status, "unknown");
  says(body.error);

  const rollback = await runCredd(["--config", config, "rollback", "fleet-prod"]);
  assert.equal(rollback.code, 1, rollback.stderr);
  says(rollback.stderr);
  assert.equal(rollback.stderr.split("\n").filter(Boolean).length, 1, "one message, no stack");

  assert.deepEqual(readFileSync(file), bytes, "the database file is unchanged");
});
