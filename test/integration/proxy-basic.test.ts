// A Basic-auth credential through the proxy: the Basic header comes from basic_auth.password_file,
// replaces the application's, and appears in no log line.
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { CredentialConfig } from "../../src/config/types.js";
import { proxyDeps } from "../../src/proxy/listeners.js";
import { startProxy, type ProxyListener } from "../../src/proxy/server.js";
import { call, makeProxyWorld, type ProxyWorld } from "../helpers/proxy.js";

const PASSWORD = "s3cret-pa55word";
let w: ProxyWorld;
let proxy: ProxyListener;

before(async () => {
  w = await makeProxyWorld(undefined, { basic: { user: "MZP128745", password: PASSWORD } });
  await w.rotate();
  const file = join(w.dir, "mzp-password");
  writeFileSync(file, `${PASSWORD}\n`, { mode: 0o600 });
  const { oauth: _oauth, ...rest } = w.ctx.config.credentials[0]!;
  const cred: CredentialConfig = { ...rest, client_id: "app-1a2b3c", basic_auth: { user: "MZP128745", password_file: file } };
  proxy = await startProxy(proxyDeps(w.ctx, cred));
});

after(async () => {
  await proxy.close(100);
  await w.fake.close();
  w.ctx.db.close();
  const logs = w.logLines.join("");
  const basic = Buffer.from(`MZP128745:${PASSWORD}`).toString("base64");
  assert.ok(!logs.includes(PASSWORD) && !logs.includes(basic), "no password or Basic header in the logs");
  rmSync(w.dir, { recursive: true, force: true });
});

test("Basic: the header from password_file, the credential's client_id, the app's Authorization dropped", async () => {
  const r = await call(proxy, "/connectedcar/v3/fleets", { headers: { Authorization: "Basic YXBwOmFwcA==" } });
  assert.equal(r.status, 200, r.body);
  const seen = w.fake.apiCalls.at(-1)!;
  assert.equal(seen.auth, `Basic ${Buffer.from(`MZP128745:${PASSWORD}`).toString("base64")}`);
  assert.equal(seen.query.client_id, "app-1a2b3c");
});
