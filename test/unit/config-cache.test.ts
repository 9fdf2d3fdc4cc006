// The validated-config cache (src/config/cache.ts) against real files: a hit is what a fresh `yaml`
// parse gives, any change or doubt rebuilds it, a reader never creates it, and it holds no secret.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { cacheFileFor } from "../../src/config/cache.js";
import { loadCheckedConfig } from "../../src/config/load-checked.js";
import { ConfigInvalidError, loadConfig, parseConfig } from "../../src/config/load.js";

const ROOT = path.resolve(import.meta.dirname, "..", "..");
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "credd-config-cache-"));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let count = 0;
const isRoot = process.geteuid?.() === 0;

/** A folder with credd.yaml holding `text` and an empty cache folder; env points credd at it. */
function world(text: string): { dir: string; config: string; env: NodeJS.ProcessEnv; cacheFile: string } {
  const dir = path.join(tmpRoot, `w${count++}`);
  fs.mkdirSync(path.join(dir, "cache"), { recursive: true, mode: 0o750 });
  const config = path.join(dir, "credd.yaml");
  fs.writeFileSync(config, text);
  const env = { CREDD_CACHE_DIR: path.join(dir, "cache") };
  return { dir, config, env, cacheFile: cacheFileFor(config, env) };
}

const MINIMAL = `smtp:
  url: smtp://mail.partner.example
  from: credd@partner.example
alerts:
  to: ops@partner.example
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
`;

type Variant = { env: Record<string, string | null>; config: { state_dir: string } & Record<string, unknown> };
type Entry = { sha256: string; variants: Variant[] };
const entryOf = (file: string): Entry => JSON.parse(fs.readFileSync(file, "utf8")) as Entry;

/** Rewrites a cached state_dir: a later load showing it proves the load came from the cache. */
function mark(cacheFile: string, stateDir: string, variant = 0): void {
  const e = entryOf(cacheFile);
  e.variants[variant]!.config.state_dir = stateDir;
  fs.writeFileSync(cacheFile, JSON.stringify(e));
}

describe("a cache hit", () => {
  test("gives exactly the Config a fresh parse gives (the shipped example, and relative secret names)", () => {
    const texts = [fs.readFileSync(path.join(ROOT, "systemd", "credd.yaml.example"), "utf8"), MINIMAL];
    texts.push(MINIMAL.replace("  from: credd@partner.example\n", "  from: credd@partner.example\n  user: credd\n  password_file: smtp\n"));
    for (const text of texts) {
      const w = world(text);
      const env = { ...w.env, CREDENTIALS_DIRECTORY: "/run/credentials/credd.service" };
      const fresh = parseConfig(text, w.config, env);
      assert.deepEqual(loadConfig(w.config, env), fresh, "the first load parses");
      assert.ok(fs.existsSync(w.cacheFile), "and fills the cache");
      assert.deepEqual(entryOf(w.cacheFile).variants[0]!.config, fresh, "the cache holds the fresh Config");
      assert.deepEqual(loadConfig(w.config, env), fresh, "the second load comes from the cache, the same");
    }
  });

  test("is used: a load after the cache was filled returns what the cache holds", () => {
    const w = world(MINIMAL);
    loadConfig(w.config, w.env);
    mark(w.cacheFile, "/from/the/cache");
    assert.equal(loadConfig(w.config, w.env).state_dir, "/from/the/cache");
  });

  test("is written 0640, atomically (no temp file left), and only into a folder that exists and is this user's", () => {
    const w = world(MINIMAL);
    loadConfig(w.config, w.env);
    assert.equal(fs.statSync(w.cacheFile).mode & 0o777, 0o640);
    assert.deepEqual(fs.readdirSync(path.dirname(w.cacheFile)), [path.basename(w.cacheFile)]);

    const missing = { CREDD_CACHE_DIR: path.join(w.dir, "no-such-folder") };
    assert.equal(loadConfig(w.config, missing).state_dir, "/var/lib/credd");
    assert.equal(fs.existsSync(missing.CREDD_CACHE_DIR), false, "a reader never creates the cache folder");
  });

  test("of another user's folder is read, never written (root reading the credd user's cache)", { skip: !isRoot && "needs root to chown" }, () => {
    const w = world(MINIMAL);
    fs.chownSync(path.dirname(w.cacheFile), 4242, 4242);
    loadConfig(w.config, w.env);
    assert.equal(fs.existsSync(w.cacheFile), false, "not written into a folder owned by another user");
    // The folder owner's entry is trusted.
    fs.chownSync(path.dirname(w.cacheFile), process.geteuid!(), process.getegid!());
    loadConfig(w.config, w.env);
    mark(w.cacheFile, "/from/the/owner");
    fs.chownSync(w.cacheFile, 4242, 4242);
    fs.chownSync(path.dirname(w.cacheFile), 4242, 4242);
    assert.equal(loadConfig(w.config, w.env).state_dir, "/from/the/owner");
  });
});

describe("a cache that does not fit is rebuilt, never an error", () => {
  test("the config's bytes changed (even a comment)", () => {
    const w = world(MINIMAL);
    loadConfig(w.config, w.env);
    const before = entryOf(w.cacheFile).sha256;
    fs.writeFileSync(w.config, `state_dir: /srv/credd\n${MINIMAL}`);
    assert.equal(loadConfig(w.config, w.env).state_dir, "/srv/credd");
    mark(w.cacheFile, "/stale");
    fs.writeFileSync(w.config, `# a comment\nstate_dir: /srv/credd\n${MINIMAL}`);
    assert.equal(loadConfig(w.config, w.env).state_dir, "/srv/credd");
    const after = entryOf(w.cacheFile);
    assert.notEqual(after.sha256, before);
    assert.equal(after.variants[0]!.config.state_dir, "/srv/credd", "rebuilt from the new bytes");
  });

  test("corrupt, foreign or old entries", () => {
    const bad = ["", "{", "null", "[]", '"x"', "{}", '{"format":1}', "\0\0\0"];
    const w = world(MINIMAL);
    loadConfig(w.config, w.env);
    const good = fs.readFileSync(w.cacheFile, "utf8");
    const e = JSON.parse(good) as Record<string, unknown>;
    const edited = [
      { ...e, format: 0 },
      { ...e, credd: "0.0.0-older" },
      { ...e, sha256: "0".repeat(64) },
      { ...e, file: "/etc/credd/other.yaml" },
      { ...e, variants: null },
      { ...e, variants: [] },
      { ...e, variants: [null, { env: null, config: {} }] },
      { ...e, variants: [{ env: {}, config: null }] },
      { ...e, variants: [{ env: {}, config: { ...(e.variants as Variant[])[0]!.config, file: "/elsewhere.yaml" } }] },
      { ...e, variants: [{ ...(e.variants as Variant[])[0]!, env: { CREDD_NOT_SET: "x" } }] },
    ].map((x) => JSON.stringify(x));
    for (const text of [...bad, ...edited]) {
      fs.writeFileSync(w.cacheFile, text, { mode: 0o640 });
      assert.equal(loadConfig(w.config, w.env).state_dir, "/var/lib/credd", JSON.stringify(text));
      assert.equal(fs.readFileSync(w.cacheFile, "utf8"), good, `rebuilt after ${JSON.stringify(text)}`);
    }
  });

  test("writable by others, a symlink, or owned by a stranger: ignored", () => {
    const w = world(MINIMAL);
    loadConfig(w.config, w.env);
    mark(w.cacheFile, "/tampered");
    fs.chmodSync(w.cacheFile, 0o666);
    assert.equal(loadConfig(w.config, w.env).state_dir, "/var/lib/credd", "group/world-writable");
    assert.equal(fs.statSync(w.cacheFile).mode & 0o777, 0o640, "and replaced");

    mark(w.cacheFile, "/tampered");
    const elsewhere = path.join(w.dir, "elsewhere.json");
    fs.renameSync(w.cacheFile, elsewhere);
    fs.symlinkSync(elsewhere, w.cacheFile);
    assert.equal(loadConfig(w.config, w.env).state_dir, "/var/lib/credd", "a symlink");
    assert.equal(fs.lstatSync(w.cacheFile).isSymbolicLink(), false, "replaced by a file");

    fs.rmSync(w.cacheFile);
    execFileSync("mkfifo", ["-m", "0600", w.cacheFile]);
    assert.equal(loadConfig(w.config, w.env).state_dir, "/var/lib/credd", "a FIFO: read without hanging");
    assert.ok(fs.lstatSync(w.cacheFile).isFile(), "replaced by a file");

    if (isRoot) {
      mark(w.cacheFile, "/tampered");
      fs.chownSync(w.cacheFile, 4242, 4242);
      assert.equal(loadConfig(w.config, w.env).state_dir, "/var/lib/credd", "another user's file in our folder");
    }
  });

  test("another CREDENTIALS_DIRECTORY, when validation read it", () => {
    const w = world(MINIMAL.replace("  from: credd@partner.example\n", "  from: credd@partner.example\n  user: credd\n  password_file: smtp\n"));
    const daemon = { ...w.env, CREDENTIALS_DIRECTORY: "/run/a" };
    assert.equal(loadConfig(w.config, daemon).smtp.password_file, "/run/a/smtp");
    assert.deepEqual(
      entryOf(w.cacheFile).variants.map((v) => v.env),
      [{ CREDENTIALS_DIRECTORY: "/run/a" }, { CREDENTIALS_DIRECTORY: null }],
      "as the daemon gets it, and as a person running credd status (no CREDENTIALS_DIRECTORY) gets it",
    );
    assert.deepEqual(entryOf(w.cacheFile).variants[1]!.config, parseConfig(fs.readFileSync(w.config, "utf8"), w.config, w.env));
    mark(w.cacheFile, "/as/the/daemon", 0);
    mark(w.cacheFile, "/as/a/person", 1);
    assert.equal(loadConfig(w.config, daemon).state_dir, "/as/the/daemon");
    assert.equal(loadConfig(w.config, w.env).state_dir, "/as/a/person");

    // A third value fits neither: parsed, its own path, and the entry rewritten for it.
    assert.equal(loadConfig(w.config, { ...w.env, CREDENTIALS_DIRECTORY: "/run/b" }).smtp.password_file, "/run/b/smtp");
    assert.deepEqual(entryOf(w.cacheFile).variants[0]!.env, { CREDENTIALS_DIRECTORY: "/run/b" });

    // Absolute paths only: the environment plays no part, and the one variant serves either.
    const abs = world(MINIMAL);
    loadConfig(abs.config, { ...abs.env, CREDENTIALS_DIRECTORY: "/run/a" });
    assert.deepEqual(
      entryOf(abs.cacheFile).variants.map((v) => v.env),
      [{}],
    );
    mark(abs.cacheFile, "/shared");
    assert.equal(loadConfig(abs.config, abs.env).state_dir, "/shared");
  });
});

describe("what is never cached", () => {
  test("a bad config: nothing written, and the message keeps its line from the yaml parse", () => {
    const w = world(MINIMAL.replace("mzp: MZP128745", "mzp: 128745"));
    const fresh = (() => {
      try {
        parseConfig(fs.readFileSync(w.config, "utf8"), w.config, w.env);
      } catch (err) {
        return err as Error;
      }
      assert.fail("accepted");
    })();
    assert.throws(
      () => loadConfig(w.config, w.env),
      (err: Error) => {
        assert.ok(err instanceof ConfigInvalidError);
        assert.equal(err.message, fresh.message);
        assert.match(err.message, /credd\.yaml:8: credentials\[fleet-prod\]\.mzp/);
        return true;
      },
    );
    assert.deepEqual(fs.readdirSync(path.dirname(w.cacheFile)), []);
  });

  test("a secret: the cache holds the path to a password file, never its content; the file is checked on every checked load", () => {
    const w = world(MINIMAL.replace("  from: credd@partner.example\n", "  from: credd@partner.example\n  user: credd\n  password_file: smtp.pass\n"));
    fs.writeFileSync(path.join(w.dir, "smtp.pass"), "s3cret-Value-42\n", { mode: 0o600 });
    const env = { ...w.env, PATH: "/usr/bin:/bin" };
    const first = referenceProblems(w.config, env);
    assert.ok(fs.existsSync(w.cacheFile));
    assert.doesNotMatch(fs.readFileSync(w.cacheFile, "utf8"), /s3cret/);
    assert.ok(!first.some((p) => p.includes("smtp.password_file")), first.join("\n"));

    fs.rmSync(path.join(w.dir, "smtp.pass"));
    const second = referenceProblems(w.config, env);
    assert.ok(
      second.some((p) => /credd\.yaml:5: smtp\.password_file/.test(p)),
      `a cached config's references are still checked, on their lines:\n${second.join("\n")}`,
    );
  });
});

/** loadCheckedConfig's problems, one line each ([] when it passed). */
function referenceProblems(config: string, env: NodeJS.ProcessEnv): string[] {
  try {
    loadCheckedConfig(config, env);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, String(err));
    return err.message.split("\n");
  }
}
