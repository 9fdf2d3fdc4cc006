// The config cache with the real binary: `credd status` fills a cache folder that is its user's and
// reads it next time; a folder of another user is read but never written, and no folder is created.
import assert from "node:assert/strict";
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { runCredd, SUBJECT_YAML, writeConfig } from "../helpers/credd.js";
import { makeTempDir } from "../helpers/openssl.js";

function setup(): { dir: string; config: string; cache: string } {
  const dir = makeTempDir("credd-cache-e2e-");
  const config = writeConfig(
    dir,
    `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
smtp: { url: "smtp://127.0.0.1:9", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example] }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: ${SUBJECT_YAML}
`,
  );
  mkdirSync(join(dir, "state"));
  const cache = join(dir, "cache");
  mkdirSync(cache, { mode: 0o750 });
  return { dir, config, cache };
}

/** The database path `status` names when there is none: which state_dir the config it used holds. */
async function databaseNamed(config: string, cache: string): Promise<string> {
  const r = await runCredd(["--config", config, "status"], { CREDD_CACHE_DIR: cache });
  assert.equal(r.code, 3, r.stdout + r.stderr);
  return /no credd database at (\S+):/.exec(r.stderr)?.[1] ?? assert.fail(r.stderr);
}

test("status fills its own cache folder, then takes the config from it", async () => {
  const s = setup();
  assert.equal(await databaseNamed(s.config, s.cache), join(s.dir, "state", "credd.db"));
  const files = readdirSync(s.cache);
  assert.equal(files.length, 1, "one entry, no temp file");
  const file = join(s.cache, files[0]!);
  const entry = JSON.parse(readFileSync(file, "utf8")) as { variants: { config: { state_dir: string } }[] };
  entry.variants[0]!.config.state_dir = join(s.dir, "from-cache");
  writeFileSync(file, JSON.stringify(entry));
  mkdirSync(join(s.dir, "from-cache"));
  assert.equal(await databaseNamed(s.config, s.cache), join(s.dir, "from-cache", "credd.db"));

  // Without a cache folder: the same answer from the YAML, and no folder made.
  const none = join(s.dir, "no-cache");
  assert.equal(await databaseNamed(s.config, none), join(s.dir, "state", "credd.db"));
  assert.equal(existsSync(none), false);
});

test("a cache folder of another user (root running status beside the daemon): never written to", {
  skip: process.geteuid?.() !== 0 && "needs root to chown",
}, async () => {
  const s = setup();
  chownSync(s.cache, 4242, 4242);
  assert.equal(await databaseNamed(s.config, s.cache), join(s.dir, "state", "credd.db"));
  assert.deepEqual(readdirSync(s.cache), []);
});
