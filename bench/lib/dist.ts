// The built credd that the bench measures: a private build (other developers rebuilding dist/ mid-run
// cannot pull it away), or the repository's dist/ with BENCH_NO_BUILD=1. Its modules are typed by their sources.
import { cpSync, existsSync, mkdirSync, symlinkSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
let dist = join(ROOT, "dist");

/** The dist/ folder in use. */
export const distDir = () => dist;
/** `dist/main.js`: the credd binary. */
export const creddMain = () => join(dist, "main.js");

/**
 * Compiles src/ with the project's tsconfig into `into/dist`, beside a copy of migrations/ and
 * package.json and a link to node_modules, the layout dist/ expects around it. Returns tsc's
 * complaints (it still emits on type errors, as `npm run build` does).
 */
export function buildPrivate(into: string): string | undefined {
  mkdirSync(into, { recursive: true });
  const out = join(into, "dist");
  const r = spawnSync(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", join(ROOT, "tsconfig.json"), "--outDir", out], { encoding: "utf8" });
  if (!existsSync(join(out, "main.js"))) throw new Error(`tsc emitted no main.js:\n${r.stdout}${r.stderr}`);
  cpSync(join(ROOT, "migrations"), join(into, "migrations"), { recursive: true });
  cpSync(join(ROOT, "package.json"), join(into, "package.json"));
  symlinkSync(join(ROOT, "node_modules"), join(into, "node_modules"));
  dist = out;
  return r.status === 0 ? undefined : `${r.stdout}${r.stderr}`.trim();
}

/**
 * Imports `dist/<rel>` (the JavaScript tsc emitted, what ships) typed as `src/<rel>.ts`. In-process
 * figures use it so they measure the same code the whole-process ones run, not tsx's compile.
 */
export async function fromDist<T>(rel: string): Promise<T> {
  const file = join(dist, rel);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (or drop BENCH_NO_BUILD)`);
  return (await import(pathToFileURL(file).href)) as T;
}
