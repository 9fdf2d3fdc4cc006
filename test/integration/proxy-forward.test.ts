// The proxy in-process against the loopback IDP + API (mTLS checked, tokens bound to the
// certificate, client_id required): what an application sends, what reaches the API, what comes back.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import net from "node:net";
import { Readable } from "node:stream";
import { after, before, test } from "node:test";
import { proxyDeps } from "../../src/proxy/listeners.js";
import { startProxy, type ProxyListener } from "../../src/proxy/server.js";
import { call, makeProxyWorld, type ProxyWorld } from "../helpers/proxy.js";
import type { FakeStellantis } from "../helpers/stellantis.js";

let w: ProxyWorld;
let fake: FakeStellantis;
let proxy: ProxyListener;
let bare: ProxyListener;
let fp: string;
let logLines: string[];

before(async () => {
  w = await makeProxyWorld();
  ({ fake, logLines } = w);
  fp = await w.rotate();
  proxy = await startProxy(proxyDeps(w.ctx, w.ctx.config.credentials[0]!));
  bare = await startProxy(proxyDeps(w.ctx, w.ctx.config.credentials[1]!));
});

after(async () => {
  await proxy.close(100);
  await bare.close(100);
  await fake.close();
  w.ctx.db.close();
  // The secret scan: no token, key, Basic header or query value in any log line.
  const logs = logLines.join("");
  assert.match(logs, /"msg":"proxy request"/);
  for (const t of fake.tokensIssued) assert.ok(!logs.includes(t.token), "a token in the logs");
  assert.doesNotMatch(logs, /PRIVATE KEY|Bearer|Basic |secret-value|partner-client/);
  rmSync(w.dir, { recursive: true, force: true });
});

/** Raw bytes to the listener; the whole answer back. */
function raw(p: ProxyListener, text: string): Promise<string> {
  const [host, port] = p.address().split(":");
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), host, () => s.end(text));
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
    s.on("error", reject);
  });
}

test("GET: mTLS with the live certificate, the bound token, client_id added; the app's Authorization replaced", async () => {
  const r = await call(proxy, "/connectedcar/v3/fleets?limit=10&client_id=wrong", {
    headers: { Authorization: "Bearer secret-value", Accept: "application/hal+json", Connection: "close, X-Drop", "X-Drop": "1" },
  });
  assert.equal(r.status, 200, `${r.body} ${logLines.slice(-3).join("")}`);
  assert.match(String(r.headers["content-type"]), /hal\+json/);
  assert.equal(JSON.parse(r.body)._embedded.fleets[0].id, "fleet-1");
  const seen = fake.apiCalls.at(-1)!;
  assert.equal(seen.certSha256, fp.toUpperCase());
  assert.equal(seen.auth, `Bearer ${fake.tokensIssued.at(-1)!.token}`);
  assert.deepEqual(seen.query, { limit: "10", client_id: "partner-client" });
  assert.equal(proxy.stats().outcomes["2xx"], 1);
});

test("POST: the body is streamed up (32 MiB cap, 20 MiB sent chunked) and the API's answer comes back as it is", async () => {
  const size = 20 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const body = Readable.from(
    (function* () {
      for (let n = 0; n < size; n += chunk.length) yield chunk;
    })(),
  );
  const r = await call(proxy, "/connectedcar/v3/fleets", { method: "POST", headers: { "Content-Type": "application/json" }, body });
  assert.equal(r.status, 405, "the peer's own answer to POST");
  assert.match(r.body, /only GET here/);
  const seen = fake.apiCalls.at(-1)!;
  assert.equal(seen.method, "POST");
  assert.equal(seen.bodyBytes, size);
});

test("a body over max_body_bytes: 413, never sent when Content-Length says so", async () => {
  const before = fake.apiCalls.length;
  const r = await raw(proxy, "POST /connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\nContent-Length: 40000000\r\n\r\nabc");
  assert.match(r, /^HTTP\/1\.1 413 /);
  assert.match(r, /"error":"body_too_large"/);
  assert.equal(fake.apiCalls.length, before);
});

test("a chunked body over max_body_bytes: 413, below and above the size credd reads whole", async () => {
  const cred = { ...w.ctx.config.credentials[0]!, proxy: { ...w.ctx.config.credentials[0]!.proxy!, max_body_bytes: 1000 } };
  const p = await startProxy(proxyDeps(w.ctx, cred));
  try {
    for (const size of [1001, 100_000]) {
      const r = await call(p, "/connectedcar/v3/fleets", { method: "POST", body: Readable.from([Buffer.alloc(size, 0x65)]) }).catch((err: Error) => ({
        status: 0,
        body: err.message,
        headers: {},
      }));
      assert.equal(r.status, 413, `${size}: ${r.body}`);
      assert.equal(JSON.parse(r.body).error, "body_too_large");
    }
    const ok = await call(p, "/connectedcar/v3/fleets", { method: "POST", body: Readable.from([Buffer.alloc(1000, 0x65)]) });
    assert.equal(ok.status, 405, "the peer's answer: a body at the cap goes through");
  } finally {
    await p.close(100);
  }
});

test("smuggling-shaped and malformed requests: 400 with a JSON code, nothing reaches the API", async () => {
  const before = fake.apiCalls.length;
  const cases = [
    "POST /connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET /connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
    `GET /connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\nX-Long: ${"a".repeat(20_000)}\r\n\r\n`,
    "POST /connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "GET http://evil.example/connectedcar/v3/fleets HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    "GET //evil.example/connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /\\evil.example/connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "POST /connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\nab",
    "POST /connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
    "POST /connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "POST /connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "GET /connectedcar/v3/fleets HTTP/1.1\nHost: x\n\n",
    "CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n",
  ];
  for (const text of cases) {
    const r = await raw(proxy, text);
    assert.match(r, /^HTTP\/1\.1 400 /, `${JSON.stringify(text.slice(0, 80))} -> ${r.slice(0, 200)}`);
    assert.match(r, /"error":"bad_request"/);
  }
  assert.equal(fake.apiCalls.length, before, "none reached the API");
});

test("an HTTP/2 upgrade offer (Java's HttpClient sends one on http://) is answered as HTTP/1.1, the Upgrade not passed on", async () => {
  const r = await call(proxy, "/connectedcar/v3/fleets", {
    headers: { Connection: "Upgrade, HTTP2-Settings", Upgrade: "h2c", "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA" },
  });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.headers.upgrade, undefined);
});

test("no live certificate yet: 503 no_credential, at once", async () => {
  const r = await call(bare, "/connectedcar/v3/fleets");
  assert.equal(r.status, 503);
  assert.equal(JSON.parse(r.body).error, "no_credential");
});

test("the API down: 502 upstream_unreachable with a JSON body; back up: 200", async () => {
  await fake.down();
  try {
    const r = await call(proxy, "/connectedcar/v3/fleets");
    assert.equal(r.status, 502, r.body);
    assert.equal(JSON.parse(r.body).error, "upstream_unreachable");
    assert.equal(proxy.stats().last_upstream_error?.error, "upstream_unreachable");
  } finally {
    await fake.up();
  }
  assert.equal((await call(proxy, "/connectedcar/v3/fleets")).status, 200);
});

test("401 invalid_token: one new token and one retry for a GET", async () => {
  const issued = fake.tokensIssued.length;
  fake.failNextApi(1, "401-invalid_token");
  const r = await call(proxy, "/connectedcar/v3/fleets");
  assert.equal(r.status, 200, r.body);
  assert.equal(fake.tokensIssued.length, issued + 1, "one new token");
  assert.equal(fake.apiCalls.at(-1)!.auth, `Bearer ${fake.tokensIssued.at(-1)!.token}`);
  assert.equal(proxy.stats().retried_with_new_token, 1);
});

test("401 invalid_token on a POST with a small body (Content-Length or chunked): replayed once, the same body, a new token", async () => {
  const bodies: [string, string | Readable][] = [
    ["Content-Length", JSON.stringify({ vins: ["VR3UHZKXZLT000001"], pad: "x".repeat(40_000) })],
    ["chunked", Readable.from([Buffer.alloc(30_000, 0x62), Buffer.alloc(30_000, 0x63)])],
  ];
  for (const [how, body] of bodies) {
    const size = typeof body === "string" ? Buffer.byteLength(body) : 60_000;
    const calls = fake.apiCalls.length;
    const issued = fake.tokensIssued.length;
    const retried = proxy.stats().retried_with_new_token;
    fake.failNextApi(1, "401-invalid_token");
    const r = await call(proxy, "/connectedcar/v3/fleets", { method: "POST", headers: { "Content-Type": "application/json" }, body });
    assert.equal(r.status, 405, `${how}: the peer's own answer to the replayed POST, not the 401: ${r.body}`);
    assert.equal(r.headers["x-credd-reason"], undefined, how);
    const [refused, replay] = fake.apiCalls.slice(calls);
    assert.equal(fake.apiCalls.length, calls + 2, `${how}: sent twice`);
    assert.equal(refused!.status, 401);
    assert.deepEqual([refused!.method, refused!.bodyBytes, replay!.method, replay!.bodyBytes], ["POST", size, "POST", size], how);
    assert.equal(fake.tokensIssued.length, issued + 1, `${how}: one new token`);
    assert.equal(replay!.auth, `Bearer ${fake.tokensIssued.at(-1)!.token}`);
    assert.notEqual(replay!.auth, refused!.auth);
    assert.equal(proxy.stats().retried_with_new_token, retried + 1);
  }
});

test("a client that leaves while its small body is read: nothing sent upstream, outcome client_gone", async () => {
  const before = fake.apiCalls.length;
  const gone = proxy.stats().outcomes.client_gone ?? 0;
  const [host, port] = proxy.address().split(":");
  const s = net.connect(Number(port), host, () =>
    s.write("POST /connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789", () => s.destroy()),
  );
  const started = Date.now();
  while ((proxy.stats().outcomes.client_gone ?? 0) === gone && Date.now() - started < 10_000) await new Promise((r) => setImmediate(r));
  assert.equal(proxy.stats().outcomes.client_gone, gone + 1);
  assert.equal(fake.apiCalls.length, before);
  assert.ok(logLines.some((l) => l.includes('"status":499')));
});

test("a client that stalls in the middle of a small body: 408 request_timeout at timeout_ms, the connection closed", async () => {
  // 100 ms: the lowest timeout_ms the validator takes; a real socket deadline, so real time.
  const cred = { ...w.ctx.config.credentials[0]!, proxy: { ...w.ctx.config.credentials[0]!.proxy!, timeout_ms: 100 } };
  const p = await startProxy(proxyDeps(w.ctx, cred));
  try {
    const before = fake.apiCalls.length;
    const [host, port] = p.address().split(":");
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(port), host, () =>
        s.write("POST /connectedcar/v3/fleets HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789"),
      );
      const chunks: Buffer[] = [];
      s.on("data", (c: Buffer) => chunks.push(c));
      s.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
      s.on("error", reject);
    });
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.match(answer, /"error":"request_timeout"/);
    assert.equal(fake.apiCalls.length, before, "nothing sent upstream");
  } finally {
    await p.close(100);
  }
});

test("401 invalid_token on a POST whose body is over 64 KiB: streamed, not replayed; the 401 with X-Credd-Reason", async () => {
  const bodies: [string, () => string | Readable][] = [
    ["Content-Length", () => "y".repeat(200_000)],
    ["chunked", () => Readable.from(Array.from({ length: 4 }, () => Buffer.alloc(50_000, 0x64)))],
  ];
  for (const [how, body] of bodies) {
    const calls = fake.apiCalls.length;
    const issued = fake.tokensIssued.length;
    fake.failNextApi(1, "401-invalid_token");
    const p = await call(proxy, "/connectedcar/v3/fleets", { method: "POST", body: body() });
    assert.equal(p.status, 401, how);
    assert.match(String(p.headers["x-credd-reason"]), /not replayed \(its body was over 65536 bytes and streamed\)/, how);
    assert.equal(fake.apiCalls.length, calls + 1, `${how}: sent once`);
    assert.equal(fake.apiCalls.at(-1)!.bodyBytes, 200_000, `${how}: the whole body reached the API`);
    // The next request has the new token, fetched once (it waits for the fetch the 401 started).
    const next = await call(proxy, "/connectedcar/v3/fleets");
    assert.equal(next.status, 200, how);
    assert.equal(fake.tokensIssued.length, issued + 1, `${how}: one new token`);
    assert.equal(fake.apiCalls.at(-1)!.auth, `Bearer ${fake.tokensIssued.at(-1)!.token}`, how);
  }
});

test("200 concurrent GETs, then 200 concurrent POSTs with small bodies: every one answered, every body whole", async () => {
  const rs = await Promise.all(Array.from({ length: 200 }, () => call(proxy, "/connectedcar/v3/fleets")));
  assert.deepEqual([...new Set(rs.map((r) => r.status))], [200]);
  const calls = fake.apiCalls.length;
  const posts = await Promise.all(
    Array.from({ length: 200 }, (_, i) => call(proxy, "/connectedcar/v3/fleets", { method: "POST", body: "p".repeat(1000 + i) })),
  );
  assert.deepEqual([...new Set(posts.map((r) => r.status))], [405], "the peer's own answer to POST");
  const sizes = fake.apiCalls
    .slice(calls)
    .map((c) => c.bodyBytes)
    .sort((a, b) => a - b);
  assert.deepEqual(
    sizes,
    Array.from({ length: 200 }, (_, i) => 1000 + i),
  );
});

test("an expired token is replaced before the request goes out: the application sees a 200", async () => {
  const issued = fake.tokensIssued.length;
  const calls = fake.apiCalls.length;
  w.clock.advance(3_601_000); // past the token's hour; the certificate has a year
  const r = await call(proxy, "/connectedcar/v3/fleets");
  assert.equal(r.status, 200, r.body);
  assert.equal(fake.tokensIssued.length, issued + 1, "one new token");
  assert.equal(fake.apiCalls.length, calls + 1, "no refused first attempt");
  assert.equal(fake.apiCalls.at(-1)!.auth, `Bearer ${fake.tokensIssued.at(-1)!.token}`);
});

test("a unix socket listener: mode 0660, requests answered, the file removed at close", async () => {
  const { statSync, existsSync } = await import("node:fs");
  const { join } = await import("node:path");
  const http = await import("node:http");
  const cred = { ...w.ctx.config.credentials[0]!, proxy: { ...w.ctx.config.credentials[0]!.proxy!, listen: join(w.dir, "fleet-prod.sock") } };
  const p = await startProxy(proxyDeps(w.ctx, cred));
  try {
    assert.equal(statSync(cred.proxy.listen).mode & 0o777, 0o660);
    const status = await new Promise<number>((resolve, reject) => {
      http
        .get({ socketPath: cred.proxy.listen, path: "/connectedcar/v3/fleets" }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        })
        .on("error", reject);
    });
    assert.equal(status, 200);
  } finally {
    await p.close(100);
  }
  assert.equal(existsSync(cred.proxy.listen), false);
});

test("the API not answering: 504 upstream_timeout at the deadline, never a hang", async () => {
  // 100 ms: the lowest timeout_ms the validator takes; a real socket deadline, so real time.
  const cred = { ...w.ctx.config.credentials[0]!, proxy: { ...w.ctx.config.credentials[0]!.proxy!, timeout_ms: 100 } };
  const p = await startProxy(proxyDeps(w.ctx, cred));
  try {
    fake.failNextApi(1, "hang");
    const r = await call(p, "/connectedcar/v3/fleets");
    assert.equal(r.status, 504, r.body);
    assert.equal(JSON.parse(r.body).error, "upstream_timeout");
    assert.equal((await call(p, "/connectedcar/v3/fleets")).status, 200, "the next request is fine");
  } finally {
    await p.close(100);
  }
});
