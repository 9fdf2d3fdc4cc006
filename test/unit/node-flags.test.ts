// V8 flags are set where an operator sees them, in the unit's ExecStart, never at run time from
// inside credd; the bench's idle figure starts credd with exactly the unit's flags.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { unitNodeFlags } from "../../bench/lib/unit.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

test("nothing in src/ sets V8 flags at run time", () => {
  const offenders = sources(join(ROOT, "src")).filter((f) => /setFlagsFromString|from "(node:)?v8"/.test(readFileSync(f, "utf8")));
  assert.deepEqual(offenders, []);
});

test("the unit's ExecStart gives node --no-opt, and the bench reads exactly that", () => {
  const unit = readFileSync(join(ROOT, "systemd", "credd.service"), "utf8");
  assert.match(unit, /^ExecStart=\/usr\/bin\/node --no-opt \/usr\/lib\/credd\/dist\/main\.js --config \/etc\/credd\/credd\.yaml run$/m);
  assert.deepEqual(unitNodeFlags(unit), ["--no-opt"]);
  assert.deepEqual(unitNodeFlags(), ["--no-opt"], "read from systemd/credd.service");
  assert.deepEqual(unitNodeFlags("ExecStart=/usr/bin/node /usr/lib/credd/dist/main.js run\n"), []);
  assert.deepEqual(unitNodeFlags("ExecStart=/usr/bin/node --no-opt --max-old-space-size=64 /opt/credd/dist/main.js --config x run\n"), [
    "--no-opt",
    "--max-old-space-size=64",
  ]);
  assert.throws(() => unitNodeFlags("ExecStart=/usr/bin/credd run\n"), /no "ExecStart=NODE \[FLAGS\] \.\.\.\/dist\/main\.js/);
});
