// The layers stay where docs/architecture.md says: SQL only in src/store/, and the oauth/ adapter
// importing nothing from src/core/ (core orchestrates tokens and hands oauth what it needs).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

test("SQL only under src/store/: the check from issue 14, as anyone can run it", () => {
  // grep -rn "SELECT\|INSERT\|UPDATE\|DELETE" src --include=*.ts | grep -v ^src/store/
  const r = spawnSync("grep", ["-rn", "SELECT\\|INSERT\\|UPDATE\\|DELETE", "src", "--include=*.ts"], { cwd: ROOT, encoding: "utf8" });
  assert.ok(r.status === 0 || r.status === 1, `grep failed: ${r.stderr}`);
  const lines = r.stdout.split("\n").filter((l) => l !== "");
  assert.ok(
    lines.some((l) => l.startsWith("src/store/")),
    "the grep finds the store's own SQL (so it searches the right tree)",
  );
  const outside = lines.filter((l) => !l.startsWith("src/store/"));
  assert.deepEqual(outside, [], "SQL outside src/store/: move it into a store/ function");
});

/** Every module specifier a file imports or re-exports, static or dynamic. */
function specifiers(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/\b(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) out.push(m[1]!);
  return out;
}

test("src/oauth/ imports nothing from src/core/: it is an adapter, handed what it needs", () => {
  const oauth = join(ROOT, "src", "oauth");
  const core = join(ROOT, "src", "core");
  const files = readdirSync(oauth, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
  assert.ok(files.length > 0);
  const found: string[] = [];
  for (const f of files) {
    const file = join(oauth, f);
    for (const spec of specifiers(readFileSync(file, "utf8"))) {
      if (!spec.startsWith(".")) continue;
      const target = resolve(dirname(file), spec);
      if (target === core || !relative(core, target).startsWith("..")) found.push(`${relative(ROOT, file)} imports ${spec}`);
    }
  }
  assert.deepEqual(found, []);
});

test("the import scan sees static, type-only, re-exported and dynamic imports", () => {
  const src = `import type { Ctx } from "../core/context.js";
import { a } from '../core/a.js';
export { b } from "../core/b.js";
const c = await import("../core/c.js");
import "../core/d.js";`;
  assert.deepEqual(specifiers(src), ["../core/context.js", "../core/a.js", "../core/b.js", "../core/c.js", "../core/d.js"]);
});
