// The bash completion (scripts/gen-completion.ts) driven by bash itself: the file is sourced, the
// function registered with `complete`, and called with COMP_WORDS/COMP_CWORD set as bash sets them,
// on a few prefixes; credential names come from the built credd (`credd list`) reading a real config.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { bashCompletion } from "../../scripts/gen-completion.js";
import { COMMANDS } from "../../src/cli/commands.js";
import { CREDD_BIN, runCredd } from "../helpers/credd.js";
import { makeTempDir } from "../helpers/openssl.js";

const dir = makeTempDir("credd-completion-");
const bin = join(dir, "bin");
mkdirSync(bin);
writeFileSync(join(bin, "credd"), `#!/bin/sh\nexec "${process.execPath}" "${CREDD_BIN}" "$@"\n`);
chmodSync(join(bin, "credd"), 0o755);
const file = join(dir, "credd.bash");
writeFileSync(file, bashCompletion());
const work = join(dir, "work");
mkdirSync(work);
for (const f of ["cert.pem", "chain.pem", "key.pem", "signed cert.pem"]) writeFileSync(join(work, f), "");
mkdirSync(join(work, "certs"));

const config = (path: string, names: string[]) =>
  writeFileSync(
    path,
    `smtp: { url: "smtp://127.0.0.1:25", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example] }
credentials:
${names.map((n) => `  - { name: ${n}, mzp: MZP128745, subject: { C: FR, ST: X, L: Y, O: Z, emailAddress: it@partner.example } }`).join("\n")}
`,
  );
const mainConfig = join(dir, "credd.yaml");
config(mainConfig, ["fleet-prod", "fleet-test", "other"]);
const otherConfig = join(dir, "other.yaml");
config(otherConfig, ["fleet-staging"]);

/** What the completion offers for the command line `words` (the last one is being completed). */
function complete(...words: string[]): string[] {
  const script = `source "$1"; shift
complete -p credd >/dev/null || { echo "credd is not registered with complete" >&2; exit 9; }
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
_credd
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync("bash", ["--norc", "--noprofile", "-c", script, "bash", file, ...words], {
    cwd: work,
    encoding: "utf8",
    env: { PATH: `${bin}:${process.env.PATH}`, CREDD_CONFIG: mainConfig, HOME: dir },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, "", "nothing on stderr");
  return r.stdout.split("\n").filter(Boolean).sort();
}

test("command names, from the command table", () => {
  assert.deepEqual(complete("credd", "st"), ["status"]);
  assert.deepEqual(complete("credd", "re"), ["renew"]);
  assert.deepEqual(complete("credd", ""), [...COMMANDS.map((c) => c.name), "help"].sort());
  assert.deepEqual(complete("credd", "--config", mainConfig, "che"), ["check-config"]);
  assert.deepEqual(complete("credd", "-"), ["--config", "--help", "--version"]);
});

test("each command's options, and the global ones", () => {
  for (const c of COMMANDS) {
    const expected = [...Object.keys(c.options).map((o) => `--${o}`), "--config", "--help"].sort();
    assert.deepEqual(complete("credd", c.name, "--"), expected, c.name);
  }
  assert.deepEqual(complete("credd", "renew", "fleet-prod", "--f"), ["--force"]);
});

test("credential names from the config (credd list), --config honoured, and no more than the command takes", () => {
  assert.deepEqual(complete("credd", "status", "fl"), ["fleet-prod", "fleet-test"]);
  assert.deepEqual(complete("credd", "doctor", ""), ["fleet-prod", "fleet-test", "other"]);
  assert.deepEqual(complete("credd", "--config", otherConfig, "token", "f"), ["fleet-staging"]);
  assert.deepEqual(complete("credd", "token", "-c", otherConfig, "f"), ["fleet-staging"]);
  assert.deepEqual(complete("credd", "status", "fleet-prod", ""), [], "status takes one NAME");
  assert.deepEqual(complete("credd", "--config", join(dir, "missing.yaml"), "status", ""), [], "an unreadable config: no names, no error");
});

test("fixed words, files for FILE options and ingest, folders for --dir", () => {
  assert.deepEqual(complete("credd", "alerts", ""), ["test"]);
  assert.deepEqual(complete("credd", "help", "ch"), ["check-config"]);
  assert.deepEqual(complete("credd", "import", "fleet-prod", "--cert", "c"), ["cert.pem", "certs", "chain.pem"]);
  assert.deepEqual(complete("credd", "import", "fleet-prod", "--cert", "cert.pem", "--key", "k"), ["key.pem"]);
  assert.deepEqual(complete("credd", "sandbox", "--dir", "c"), ["certs"]);
  assert.deepEqual(complete("credd", "ingest", "f"), ["fleet-prod", "fleet-test"], "the first argument may be a NAME");
  assert.deepEqual(complete("credd", "ingest", "fleet-prod", "c"), ["cert.pem", "certs", "chain.pem"], "then files");
  assert.deepEqual(complete("credd", "sandbox", "--sign-delay", ""), [], "a number: nothing to offer");
  assert.deepEqual(complete("credd", "ingest", "fleet-prod", "s"), ["signed cert.pem"], "a file name with a space stays one word");
});

test("credd list: the names in config order; an unreadable config exits 1, a usage mistake 2", async () => {
  const ok = await runCredd(["--config", mainConfig, "list"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, "fleet-prod\nfleet-test\nother\n");
  const missing = await runCredd(["list", "--config", join(dir, "missing.yaml")]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, "");
  assert.match(missing.stderr, /missing\.yaml.*config file not found/);
  const bad = await runCredd(["list", "extra"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /list takes no arguments/);
});
