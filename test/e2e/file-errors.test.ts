// Raw "ENOENT: no such file or directory" never reaches a person: the built binary names the file,
// what credd wanted from it and the fix; `doctor` before any certificate says what to run.
import assert from "node:assert/strict";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fsFound } from "../../src/files/file-errors.js";
import { runCredd, smallConfigYaml, startCreddDaemon } from "../helpers/credd.js";
import { makeTempDir } from "../helpers/openssl.js";

function setup(): { dir: string; config: string } {
  const dir = makeTempDir("credd-e2e-file-errors-");
  const config = join(dir, "credd.yaml");
  writeFileSync(config, smallConfigYaml({ top: [`state_dir: ${join(dir, "state")}`, `runtime_dir: ${join(dir, "run")}`] }));
  return { dir, config };
}

test("doctor before any certificate: no live certificate yet, run credd enroll NAME; after enroll: what it waits for", async () => {
  const { config } = setup();
  const r = await runCredd(["--config", config, "doctor", "fleet-prod"]);
  assert.equal(r.code, 1);
  assert.match(
    r.stdout,
    /^FAIL {2}key matches the live certificate +\d+ ms {2}no live certificate yet: run credd enroll fleet-prod \(or credd import fleet-prod --cert F --key F for one made by hand\)$/m,
  );
  assert.doesNotMatch(r.stdout + r.stderr, /ENOENT|no such file/);
  assert.equal((await runCredd(["--config", config, "enroll", "fleet-prod", "--no-send"])).code, 0);
  const after = await runCredd(["--config", config, "doctor", "fleet-prod"]);
  assert.match(
    after.stdout,
    /no live certificate yet: renewal #1 is created since \d{4}-\d\d-\d\d \d\d:\d\d UTC; when Stellantis sends the signed certificate, drop it in the inbox or run credd ingest FILE/,
  );
});

test("import and ingest of a file that is not there: the file, what credd wanted, the fix", async () => {
  const { dir, config } = setup();
  const cert = join(dir, "MZP128745.pem");
  const imp = await runCredd(["--config", config, "import", "fleet-prod", "--cert", cert, "--key", join(dir, "k.pem")]);
  assert.equal(imp.code, 1);
  assert.equal(
    imp.stderr.trim(),
    `credd: cannot read the certificate to import (--cert): ${cert} does not exist (fix: check the path given to --cert)`,
  );
  const ing = await runCredd(["--config", config, "ingest", dir]);
  assert.equal(ing.code, 1);
  assert.equal(
    ing.stderr.trim(),
    `credd: cannot read the signed certificate to take in: ${dir} is a folder, not a file (fix: name the file itself, not the folder ${dir})`,
  );
});

test("fsFound: each failure in plain words", () => {
  const dir = makeTempDir("credd-e2e-fsfound-");
  writeFileSync(join(dir, "f"), "x");
  const err = (code: string) => Object.assign(new Error(code), { code });
  assert.equal(fsFound(err("ENOENT"), "/x"), "does not exist");
  assert.equal(fsFound(err("EISDIR"), "/x"), "is a folder, not a file");
  assert.equal(fsFound(err("ENOTDIR"), join(dir, "f", "g", "h")), `cannot exist: ${join(dir, "f")} is a file, not a folder`);
  assert.match(fsFound(err("EACCES"), "/x"), /^cannot be read by (user \S+ \(uid \d+\)|uid \d+): permission denied/);
  assert.equal(fsFound(err("ENOSPC"), "/x", "written"), "cannot be written: the disk is full");
});

test("metrics_file's folder removed while credd runs: logged once, naming the folder, without raw ENOENT", { timeout: 60_000 }, async (t) => {
  const dir = makeTempDir("credd-e2e-metrics-gone-");
  const metrics = join(dir, "textfile");
  mkdirSync(metrics);
  const config = join(dir, "credd.yaml");
  writeFileSync(
    config,
    smallConfigYaml({
      top: [
        `state_dir: ${join(dir, "state")}`,
        `runtime_dir: ${join(dir, "run")}`,
        `metrics_file: ${join(metrics, "credd.prom")}`,
        'check_schedule: "* * * * * *"',
      ],
    }),
  );
  const d = startCreddDaemon(["--config", config, "run"]);
  t.after(() => {
    if (d.child.exitCode === null) d.child.kill("SIGKILL");
  });
  await d.waitForLog((l) => l.msg === "check done");
  rmSync(metrics, { recursive: true });
  const logged = await d.waitForLog((l) => l.msg === "cannot publish status and metrics", 15_000);
  assert.equal(
    logged.err,
    `metrics_file ${join(metrics, "credd.prom")} cannot be written: its folder ${metrics} does not exist ` +
      "(fix: create the folder or let credd's user write it, or correct metrics_file; credd check-config checks it)",
  );
  // Three more checks: the same failure is not logged again.
  const at = d.lines.indexOf(logged);
  for (let i = 0; i < 3; i++) await d.waitForLog((l) => l.msg === "check done", 10_000, d.lines.map((l) => l.msg).lastIndexOf("check done") + 1);
  assert.equal(d.lines.slice(at).filter((l) => l.msg === "cannot publish status and metrics").length, 1);
  assert.ok(!d.lines.some((l) => /ENOENT/.test(JSON.stringify(l))));
  assert.equal(await d.stop(), 0);
});
