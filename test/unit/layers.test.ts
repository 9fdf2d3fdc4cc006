// The layers stay where docs/architecture.md says: SQL only in src/store/; core/, daemon/, cli/,
// mailbox/ and proxy/ reach the state only through the async Store (`ctx.store`): from src/store/
// they import store.ts, and sqlite-store.ts in cli/ (a command opens the store), anything else
// type-only; better-sqlite3 type-only; and no `ctx.db`. And the oauth/ adapter imports nothing from
// src/core/ (core orchestrates tokens and hands oauth what it needs).
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

/** Every module specifier a file imports at run time (an `import type` or `export type` is left out). */
function runtimeSpecifiers(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/\b(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) {
    const start = source.lastIndexOf("\n", m.index) + 1;
    const statement = source.slice(start, m.index + m[0].length);
    if (!/^\s*(?:import|export)\s+type\b/.test(statement) && !/^\s*\}/.test(statement)) out.push(m[1]!);
    else if (/^\s*\}/.test(statement)) {
      // The end of a multi-line import: look back to where it begins.
      const begin = source.lastIndexOf("import", m.index);
      if (!/^import\s+type\b/.test(source.slice(begin))) out.push(m[1]!);
    }
  }
  return out;
}

test("core/, daemon/, cli/, mailbox/, proxy/ use the async Store, never the SQLite modules or ctx.db", () => {
  const store = join(ROOT, "src", "store");
  const found: string[] = [];
  let files = 0;
  for (const layer of ["core", "daemon", "cli", "mailbox", "proxy"]) {
    const dir = join(ROOT, "src", layer);
    for (const f of readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((x) => x.endsWith(".ts"))) {
      files++;
      const file = join(dir, f);
      const name = relative(ROOT, file);
      const source = readFileSync(file, "utf8");
      if (/\bctx\.db\b/.test(source)) found.push(`${name} uses ctx.db`);
      for (const spec of runtimeSpecifiers(source)) {
        if (spec === "better-sqlite3") found.push(`${name} imports better-sqlite3`);
        if (!spec.startsWith(".")) continue;
        const target = resolve(dirname(file), spec);
        if (relative(store, target).startsWith("..")) continue;
        const mod = relative(store, target);
        if (mod === "store.js" || ((mod === "sqlite-store.js" || mod === "open.js") && layer === "cli")) continue;
        found.push(`${name} imports ${spec}`);
      }
    }
  }
  assert.ok(files > 50, "the scan reads the layers' files");
  assert.deepEqual(found, [], "go through ctx.store (src/store/store.ts); a new query goes into the Store and sqlite-store.ts");
});

test("the run-time import scan leaves type-only imports out", () => {
  const src = `import type { A } from "../store/a.js";
import { b, type C } from "../store/b.js";
import {
  type D,
} from "../store/d.js";
import type {
  E,
} from "../store/e.js";
export type { F } from "../store/f.js";`;
  assert.deepEqual(runtimeSpecifiers(src), ["../store/b.js", "../store/d.js"]);
});

test("the import scan sees static, type-only, re-exported and dynamic imports", () => {
  const src = `import type { Ctx } from "../core/context.js";
import { a } from '../core/a.js';
export { b } from "../core/b.js";
const c = await import("../core/c.js");
import "../core/d.js";`;
  assert.deepEqual(specifiers(src), ["../core/context.js", "../core/a.js", "../core/b.js", "../core/c.js", "../core/d.js"]);
});
