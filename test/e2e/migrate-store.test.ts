// `credd migrate-store --to postgres` and `credd rotate-store-key` with the built binary
// (dist/main.js: `npm run build` first) and a throwaway PostgreSQL: a state made by a real
// `credd import` on SQLite is copied (the config still says store: sqlite; the target is given on
// the command line), a second copy is refused, the same config switched to store: postgres then
// works on the copy; the key is rotated, and a host left on the old key alone is refused loudly.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import { dnFor, runCredd, smallConfigYaml, writeConfig } from "../helpers/credd.js";
import { makeKeyAndCert, makeTempDir } from "../helpers/openssl.js";
import { type PgCluster, postgresMissing, startPostgres } from "../helpers/postgres.js";

const skip = postgresMissing();

function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (!/^credd\.db$|archive\/.+\.pem$/.test(f)) continue;
    out[f] = createHash("sha256")
      .update(readFileSync(join(dir, f)))
      .digest("hex");
  }
  return out;
}

describe("migrate-store and rotate-store-key, the built CLI", { skip }, () => {
  let cluster: PgCluster;
  let admin: pg.Client;
  before(async () => {
    cluster = await startPostgres();
    admin = await cluster.admin("postgres");
  });
  after(async () => {
    await admin?.end();
    await cluster?.destroy();
  });

  test("copy a SQLite state made by credd import, refuse a second copy, run on the copy, rotate the key", async () => {
    const root = makeTempDir("credd-e2e-migrate-");
    await admin.query(`CREATE DATABASE e2e_migrate OWNER ${cluster.user}`);
    const url = join(root, "store-url");
    writeFileSync(url, `postgres://${cluster.user}:${encodeURIComponent(cluster.password)}@127.0.0.1:${cluster.port}/e2e_migrate\n`, { mode: 0o640 });
    const kek = (name: string) => {
      const f = join(root, name);
      writeFileSync(f, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
      return f;
    };
    const oldKek = kek("kek-old");
    const newKek = kek("kek-new");
    const state = join(root, "state");
    const top = [`state_dir: ${state}`, `runtime_dir: ${join(root, "run")}`];
    const sqliteConfig = writeConfig(join(root), smallConfigYaml({ top }));
    const hand = makeKeyAndCert(root, dnFor("MZP128745"), { days: 200 });
    const imp = await runCredd(["--config", sqliteConfig, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath]);
    assert.equal(imp.code, 0, imp.stderr);
    const before = tree(state);
    assert.ok(
      Object.keys(before).some((f) => /key-1\.pem$/.test(f)),
      "the import wrote archive/key-1.pem",
    );

    const args = ["--config", sqliteConfig, "migrate-store", "--to", "postgres", "--url-file", url, "--key-encryption-key-file", oldKek];
    const r = await runCredd(args);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /copied certificates: 1 row/);
    assert.match(r.stderr, /verified/);
    assert.match(r.stdout, /archive +1 version\(s\), \d file\(s\), 1 private key\(s\) sealed/);
    assert.match(r.stdout, /hosts +not copied \(0 rows in SQLite\): the SQLite host's heartbeat/);
    assert.ok(!(r.stdout + r.stderr).includes(cluster.password), "the password is never printed");
    assert.deepEqual(tree(state), before, "credd.db and archive/ are unchanged");

    const again = await runCredd(args);
    assert.equal(again.code, 1, again.stdout + again.stderr);
    assert.match(again.stderr, /already holds credd rows: .*certificates \(1 row\).*changed nothing/);
    assert.deepEqual(tree(state), before);

    const usage = await runCredd(["--config", sqliteConfig, "migrate-store", "--to", "postgres"]);
    assert.equal(usage.code, 2, usage.stderr);
    assert.match(usage.stderr, /--url-file FILE and --key-encryption-key-file FILE needed/);
    const wrongTo = await runCredd([
      "--config",
      sqliteConfig,
      "migrate-store",
      "--to",
      "mysql",
      "--url-file",
      url,
      "--key-encryption-key-file",
      oldKek,
    ]);
    assert.equal(wrongTo.code, 2);

    // The same host on the copy: `credd import` of the same certificate finds it live, in PostgreSQL.
    const pgConfig = (current: string, previous: string[] = []) =>
      writeConfig(
        makeTempDir("credd-e2e-migrate-cfg-"),
        smallConfigYaml({
          top: [
            ...top,
            "store:",
            "  postgres:",
            `    url_file: ${url}`,
            `    key_encryption_key_file: ${current}`,
            ...(previous.length ? [`    previous_key_encryption_key_files: [${previous.join(", ")}]`] : []),
          ],
        }),
      );
    const onCopy = await runCredd(["--config", pgConfig(oldKek), "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath]);
    assert.equal(onCopy.code, 0, onCopy.stderr);
    assert.match(onCopy.stdout, /already live/);

    // check-config reads the previous key files like the key.
    const cc = await runCredd(["--config", pgConfig(newKek, [oldKek]), "check-config"]);
    assert.equal(cc.code, 0, cc.stdout + cc.stderr);
    assert.match(cc.stdout, /previous_key_encryption_key_files\[0\].*previous key-encryption key \(id [0-9a-f]{16}\)/);

    const rot = await runCredd(["--config", pgConfig(newKek), "rotate-store-key", "--previous", oldKek]);
    assert.equal(rot.code, 0, rot.stdout + rot.stderr);
    assert.match(rot.stdout, /1 private key\(s\) .*1 sealed again; all open under key [0-9a-f]{16} now/);
    assert.match(rot.stderr, /verified: all 1 private key\(s\) open under/);

    // A host left on the old key alone is refused, loudly; one with the new key runs.
    const stale = await runCredd(["--config", pgConfig(oldKek), "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath]);
    assert.equal(stale.code, 1, stale.stdout + stale.stderr);
    assert.match(stale.stderr, /could open none of them.*does not re-enroll/);
    const fresh = await runCredd(["--config", pgConfig(newKek), "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath]);
    assert.equal(fresh.code, 0, fresh.stderr);

    const bad = await runCredd(["--config", pgConfig(newKek), "rotate-store-key", "--previous", join(root, "no-such-kek")]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no-such-kek \(--previous\)/);
    assert.deepEqual(tree(state), before, "the SQLite source was never changed");
  });
});
