// The steps of `credd status` (src/cli/status.ts) in a fresh process, each timed: loadConfig,
// openStoreForReading (SQLite or PostgreSQL, as the config says), buildStatus. Prints
// {"loadConfig": ms, "openStore": ms, "buildStatus": ms} on stderr.
// usage: node bench/status-phases.mjs DIST_DIR CONFIG
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [dist, config] = process.argv.slice(2);
const load = (rel) => import(pathToFileURL(join(dist, rel)).href);
const { loadConfig } = await load("config/load.js");
const { openStoreForReading } = await load("store/open.js");
const { buildStatus } = await load("core/status.js");
const { clockFromEnv } = await load("test-switches.js");
const t0 = performance.now();
const cfg = loadConfig(config);
const t1 = performance.now();
const { store } = await openStoreForReading(cfg);
const t2 = performance.now();
const view = await buildStatus({ config: cfg, store, clock: clockFromEnv() });
const t3 = performance.now();
await store.close();
if (view.credentials.length === 0) process.exit(1);
process.stderr.write(`${JSON.stringify({ loadConfig: t1 - t0, openStore: t2 - t1, buildStatus: t3 - t2 })}\n`);
