// Preload for `node --import`: appends the URL of every module the process loads to the file named
// by $CREDD_TRACE_MODULES, one per line. ESM (and CommonJS entered from ESM) through a load hook;
// CommonJS required from CommonJS, which Node 20's hooks do not see, from the require cache at exit.
import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";
import { pathToFileURL } from "node:url";

const out = process.env.CREDD_TRACE_MODULES;
if (!out) throw new Error("trace-modules.mjs: set CREDD_TRACE_MODULES to the file to write");
register(new URL("./trace-modules-hooks.mjs", import.meta.url), { data: { out } });
process.on("exit", () => {
  const cached = Object.keys(createRequire(import.meta.url).cache);
  appendFileSync(out, cached.map((file) => `${pathToFileURL(file).href}\n`).join(""));
});
