// A certificate rotation in the middle of a load run: no request fails, the ones sent after the
// switch use the new certificate and a token bound to it, and the old connection pool is closed.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import http from "node:http";
import { after, before, test } from "node:test";
import { proxyDeps } from "../../src/proxy/listeners.js";
import { startProxy, type ProxyListener } from "../../src/proxy/server.js";
import { call, makeProxyWorld, type ProxyWorld } from "../helpers/proxy.js";

let w: ProxyWorld;
let proxy: ProxyListener;
let oldFp: string;

before(async () => {
  // A generous deadline: the machine running the tests is shared; the test is about failures, not speed.
  w = await makeProxyWorld('{ listen: "127.0.0.1:8301", timeout_ms: 20000 }');
  oldFp = await w.rotate();
  proxy = await startProxy(proxyDeps(w.ctx, w.ctx.config.credentials[0]!));
});

after(async () => {
  await proxy.close(100);
  await w.fake.close();
  w.ctx.db.close();
  // The secret scan: no token of either certificate in any log line.
  const logs = w.logLines.join("");
  for (const t of w.fake.tokensIssued) assert.ok(!logs.includes(t.token), "a token in the logs");
  assert.doesNotMatch(logs, /PRIVATE KEY|Bearer /);
  rmSync(w.dir, { recursive: true, force: true });
});

test("rotation during 50 concurrent keep-alive clients: zero failures, new requests on the new certificate at once", async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  const statuses: number[] = [];
  let stop = false;
  let sent = 0;
  const client = async () => {
    while (!stop) {
      sent++;
      const r = await call(proxy, "/connectedcar/v3/fleets", { agent });
      statuses.push(r.status);
      if (r.status !== 200) stop = true;
    }
  };
  // The next certificate is made before the load starts: openssl blocks the event loop.
  const next = w.prepareRotation();
  const newFp = next.fp;
  const clients = Array.from({ length: 50 }, client);
  let beforeRotation = 0;
  let afterRotation = 0;
  try {
    // Load before, the rotation while requests are in flight, load after.
    while (statuses.length < 300 && !stop) await new Promise((r) => setImmediate(r));
    beforeRotation = w.fake.apiCalls.length;
    await next.goLive();
    afterRotation = w.fake.apiCalls.length;
    const answered = statuses.length;
    while (statuses.length < answered + 600 && !stop) await new Promise((r) => setImmediate(r));
  } finally {
    stop = true;
    await Promise.allSettled(clients);
    agent.destroy();
  }

  assert.equal(statuses.length, sent);
  assert.deepEqual(
    [...new Set(statuses)],
    [200],
    `failures: ${statuses.filter((s) => s !== 200).length} ${w.logLines
      .filter((l) => !l.includes('"status":200'))
      .slice(-6)
      .join("")} ${JSON.stringify(w.fake.apiCalls.filter((c) => c.status !== 200).slice(0, 3))}`,
  );
  assert.ok(statuses.length >= 900, `${statuses.length} requests`);
  const calls = w.fake.apiCalls.slice(afterRotation);
  const tail = calls.slice(-300);
  assert.ok(
    tail.every((c) => c.certSha256 === newFp),
    "requests after the switch use the new certificate",
  );
  const newTokens = new Set(w.fake.tokensIssued.filter((t) => t.certSha256 === newFp).map((t) => `Bearer ${t.token}`));
  assert.ok(
    tail.every((c) => newTokens.has(c.auth)),
    "and a token bound to it",
  );
  assert.notEqual(oldFp, newFp);
  assert.ok(w.fake.apiCalls.slice(0, beforeRotation).some((c) => c.certSha256 === oldFp));
  assert.equal(w.fake.apiCalls.filter((c) => c.status !== 200).length, 0, "the API refused nothing (no 401 bound to another certificate)");
  assert.equal(proxy.stats().draining_pools, 0, "the old pool is closed once its requests finished");
  assert.equal(proxy.stats().certificate_version, 2);
});
