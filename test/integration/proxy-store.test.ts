// The proxy when the store or archive/ cannot give it the live certificate (docs/proxy.md): a JSON
// 503 with a stable code, never an unhandled rejection; and on a shared store, a live version this
// host has not followed yet is served with the version live/ has until its files come.
import assert from "node:assert/strict";
import { renameSync, rmSync } from "node:fs";
import { after, before, test } from "node:test";
import type { Ctx } from "../../src/core/context.js";
import { switchToVersion } from "../../src/core/golive.js";
import { credentialPaths } from "../../src/files/layout.js";
import { proxyDeps } from "../../src/proxy/listeners.js";
import { startProxy, type ProxyListener } from "../../src/proxy/server.js";
import { call, makeProxyWorld, type ProxyWorld } from "../helpers/proxy.js";

let w: ProxyWorld;
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);

before(async () => {
  process.on("unhandledRejection", onUnhandled);
  w = await makeProxyWorld('{ listen: "127.0.0.1:8301", timeout_ms: 20000 }');
  await w.rotate();
});

after(async () => {
  process.off("unhandledRejection", onUnhandled);
  await w.fake.close();
  w.ctx.db.close();
  rmSync(w.dir, { recursive: true, force: true });
});

test("the store cannot be read: 503 store_unavailable, the proxy keeps serving", async () => {
  const cred = w.ctx.config.credentials[0]!;
  let broken = true;
  const store = Object.create(w.ctx.store) as Ctx["store"];
  store.liveCertificate = (name: string) =>
    broken ? Promise.reject(new Error("connection terminated unexpectedly")) : w.ctx.store.liveCertificate(name);
  const proxy: ProxyListener = await startProxy(proxyDeps({ ...w.ctx, store }, cred));
  try {
    const r = await call(proxy, "/connectedcar/v3/fleets");
    assert.equal(r.status, 503);
    assert.equal(r.headers["content-type"], "application/json");
    const body = JSON.parse(r.body) as { error: string; message: string };
    assert.equal(body.error, "store_unavailable");
    assert.match(body.message, /the store cannot be read \(connection terminated unexpectedly\)/);
    broken = false;
    assert.equal((await call(proxy, "/connectedcar/v3/fleets")).status, 200, "served again once the store answers");
    assert.equal(proxy.stats().outcomes.store_unavailable, 1);
    assert.deepEqual(unhandled, []);
  } finally {
    await proxy.close(100);
  }
});

test("shared store: the store's live version not on this host yet is served with the version live/ has", async () => {
  const cred = w.ctx.config.credentials[0]!;
  const oldFp = w.fake.apiCalls.at(-1)?.certSha256;
  await w.rotate(); // version 2 live in the store
  const paths = credentialPaths(w.ctx.config.state_dir, cred.name);
  // A follower before its next tick: live/ still on version 1, archive/ without version 2, and the
  // store (here SQLite, which keeps no archive parts) cannot give them yet.
  await switchToVersion(w.ctx, cred, 1);
  renameSync(paths.key(2), `${paths.key(2)}.away`);
  renameSync(paths.cert(2), `${paths.cert(2)}.away`);
  const shared = {
    ...w.ctx,
    config: { ...w.ctx.config, store: { postgres: { url_file: "/dev/null", key_encryption_key_file: "/dev/null" } } },
  } as Ctx;
  const proxy = await startProxy(proxyDeps(shared, cred));
  try {
    const calls = w.fake.apiCalls.length;
    const r = await call(proxy, "/connectedcar/v3/fleets");
    // The token here was fetched for version 2 (by rotate()), so the API may refuse it: what matters
    // is that the request went out with version 1's certificate instead of failing in credd.
    assert.ok(w.fake.apiCalls.length > calls, `sent to the API: ${r.status} ${r.body}`);
    assert.equal(w.fake.apiCalls[calls]?.certSha256, oldFp, "with the certificate this host has");
    assert.notEqual(JSON.parse(r.body || "{}").error, "certificate_unavailable");
    // The files arrive (the next follow tick): the next request uses version 2.
    renameSync(`${paths.key(2)}.away`, paths.key(2));
    renameSync(`${paths.cert(2)}.away`, paths.cert(2));
    const later = w.fake.apiCalls.length;
    await call(proxy, "/connectedcar/v3/fleets");
    assert.notEqual(w.fake.apiCalls[later]?.certSha256, oldFp, "version 2 once its files are there");
    assert.equal(proxy.stats().certificate_version, 2);
    assert.deepEqual(unhandled, []);
  } finally {
    await proxy.close(100);
  }
});
