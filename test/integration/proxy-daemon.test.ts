// `credd run`'s part: the daemon starts a listener for each credential with `proxy:` and closes it
// (state file marked not listening) before it closes the database at stop.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, test } from "node:test";
import { startDaemon } from "../../src/daemon/run.js";
import { readProxyState } from "../../src/proxy/state-file.js";
import { call, makeProxyWorld, type ProxyWorld } from "../helpers/proxy.js";

let w: ProxyWorld;

before(async () => {
  w = await makeProxyWorld();
  await w.rotate();
});

after(async () => {
  await w.fake.close();
  rmSync(w.dir, { recursive: true, force: true });
});

test("startDaemon listens for each proxied credential and stops the listeners at stop", async () => {
  const d = await startDaemon(w.ctx, { outboxTickMs: 3_600_000, inboxPollMs: 3_600_000, tokenTickMs: 3_600_000 });
  let state = readProxyState(w.ctx.config.runtime_dir, "fleet-prod");
  // The listeners start asynchronously (a lazy import, then listen): wait for both log lines; the
  // state file is written in the same turn as the last one.
  const started = Date.now();
  const up = () => w.logLines.filter((l) => l.includes('"msg":"proxy listening"')).length;
  while (up() < 2 && Date.now() - started < 30_000) await new Promise((r) => setImmediate(r));
  state = readProxyState(w.ctx.config.runtime_dir, "fleet-prod");
  try {
    assert.ok(state?.listening, "fleet-prod's listener is up");
    const at = { address: () => state!.listening! };
    assert.equal((await call(at, "/connectedcar/v3/fleets")).status, 200);
  } finally {
    await d.stop("test");
  }
  assert.equal(readProxyState(w.ctx.config.runtime_dir, "fleet-prod")?.listening, null, "marked not listening at stop");
});
