// The `store:` key with the built binary: `check-config` reads the url and key-encryption key files
// of store.postgres with the rules of src/store/pg/connect.ts and keywrap.ts (mode, shape) and names
// the file, the key and the fix; a wrong value for `store` is refused at load. No server is needed:
// check-config does not connect.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { runCredd, smallConfigYaml, writeConfig } from "../helpers/credd.js";
import { makeTempDir } from "../helpers/openssl.js";

function world(o: { urlMode?: number; kekMode?: number; kek?: string; store?: string } = {}) {
  const dir = makeTempDir("credd-e2e-store-cfg-");
  const url = join(dir, "store-url");
  const kek = join(dir, "store-kek");
  writeFileSync(url, "postgres://credd:pw@127.0.0.1:5432/credd\n", { mode: o.urlMode ?? 0o640 });
  writeFileSync(kek, o.kek ?? `${Buffer.alloc(32, 1).toString("base64")}\n`, { mode: o.kekMode ?? 0o600 });
  const store = o.store ?? `store: { postgres: { url_file: ${url}, key_encryption_key_file: ${kek} } }`;
  return { dir, url, kek, config: writeConfig(dir, smallConfigYaml({ top: [`state_dir: ${dir}/state`, `runtime_dir: ${dir}/run`, store] })) };
}

test("check-config accepts good store.postgres files and shows what it found", async () => {
  const w = world();
  const r = await runCredd(["--config", w.config, "check-config"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /store\.postgres\.url_file.*credd@127\.0\.0\.1:5432\/credd/);
  assert.match(r.stdout, /store\.postgres\.key_encryption_key_file.*key-encryption key \(id [0-9a-f]{16}\)/);
  assert.ok(!r.stdout.includes(":pw@") && !r.stderr.includes(":pw@"), "the password never shows");
});

test("check-config refuses a url file every user may read and a KEK file with group access, naming the fix", async () => {
  const w = world({ urlMode: 0o644, kekMode: 0o640 });
  const r = await runCredd(["--config", w.config, "check-config"]);
  assert.notEqual(r.code, 0);
  const out = r.stdout + r.stderr;
  assert.match(out, /store\.postgres\.url_file.*every user may read it.*chmod 0640/s);
  assert.match(out, /store\.postgres\.key_encryption_key_file.*chmod 0600/s);
  assert.ok(!out.includes(":pw@"));
});

test("a KEK that is not 32 bytes of base64 and an unknown store value are refused", async () => {
  const short = world({ kek: "c2hvcnQ=\n" });
  const r1 = await runCredd(["--config", short.config, "check-config"]);
  assert.notEqual(r1.code, 0);
  assert.match(r1.stdout + r1.stderr, /holds 5 bytes, not 32/);
  const bad = world({ store: "store: mysql" });
  const r2 = await runCredd(["--config", bad.config, "check-config"]);
  assert.notEqual(r2.code, 0);
  assert.match(r2.stdout + r2.stderr, /store: must be sqlite or a postgres: mapping/);
  const missing = world({ store: "store: { postgres: { url_file: /nonexistent/url } }" });
  const r3 = await runCredd(["--config", missing.config, "check-config"]);
  assert.match(r3.stdout + r3.stderr, /key_encryption_key_file: is missing/);
});
