// The built credd (dist/) that the bench measures: its paths, and its modules typed by their sources.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { join } from "node:path";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const DIST = join(ROOT, "dist");
export const CREDD_MAIN = join(DIST, "main.js");

/**
 * Imports `dist/<rel>` (the JavaScript tsc emitted, what ships) typed as `src/<rel>.ts`. In-process
 * figures use it so they measure the same code the whole-process ones run, not tsx's compile.
 */
export async function fromDist<T>(rel: string): Promise<T> {
  const file = join(DIST, rel);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
  return (await import(pathToFileURL(file).href)) as T;
}
