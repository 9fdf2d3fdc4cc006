// The proxy in `credd status --json` and the metrics file: what the daemon's listeners write to
// runtime_dir/NAME/proxy.json, read back by the status view in the way another process would.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, test } from "node:test";
import { buildStatus } from "../../src/core/status.js";
import { renderMetrics } from "../../src/daemon/metrics.js";
import { startProxies, type ProxyListeners } from "../../src/proxy/listeners.js";
import { call, makeProxyWorld, type ProxyWorld } from "../helpers/proxy.js";

let w: ProxyWorld;
let listeners: ProxyListeners;

before(async () => {
  w = await makeProxyWorld();
  await w.rotate();
});

after(async () => {
  await w.fake.close();
  w.ctx.db.close();
  rmSync(w.dir, { recursive: true, force: true });
});

test("status: no state before a daemon ran the proxy; then listening, requests by outcome, the last upstream error", async () => {
  assert.equal((await buildStatus(w.ctx)).credentials[0]!.proxy, null);
  listeners = await startProxies(w.ctx);
  const at = (name: string) => ({ address: () => listeners.stats().get(name)!.listening! });
  assert.equal((await call(at("fleet-prod"), "/connectedcar/v3/fleets")).status, 200);
  assert.equal((await call(at("fleet-new"), "/connectedcar/v3/fleets")).status, 503);
  await w.fake.down();
  assert.equal((await call(at("fleet-prod"), "/connectedcar/v3/fleets")).status, 502);
  await w.fake.up();
  listeners.publish();

  const view = await buildStatus(w.ctx);
  const prod = view.credentials[0]!.proxy!;
  assert.equal(prod.listening, true);
  assert.equal(prod.listen, "127.0.0.1:0");
  assert.match(prod.address ?? "", /^127\.0\.0\.1:[1-9]\d*$/);
  assert.equal(prod.requests, 2);
  assert.deepEqual(prod.outcomes, { "2xx": 1, upstream_unreachable: 1 });
  assert.equal(prod.last_upstream_error?.error, "upstream_unreachable");
  assert.equal(prod.certificate_version, 1);
  assert.deepEqual(view.credentials[1]!.proxy!.outcomes, { no_credential: 1 });

  const metrics = renderMetrics(view);
  assert.match(metrics, /^credd_proxy_listening\{credential="fleet-prod"\} 1$/m);
  assert.match(metrics, /^credd_proxy_requests\{credential="fleet-prod",outcome="2xx"\} 1$/m);
  assert.match(metrics, /^credd_proxy_requests\{credential="fleet-new",outcome="no_credential"\} 1$/m);

  await listeners.close();
  assert.equal((await buildStatus(w.ctx)).credentials[0]!.proxy!.listening, false, "written once more at stop");
});
