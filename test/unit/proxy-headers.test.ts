// What crosses the proxy: hop-by-hop headers (RFC 9110 7.6.1) and the ones credd sets itself stop;
// logs see query keys, never values.
import assert from "node:assert/strict";
import { test } from "node:test";
import { endToEnd, loggablePath, replayable } from "../../src/proxy/headers.js";

test("endToEnd drops hop-by-hop headers, those Connection names, and (requests) what credd sets", () => {
  const raw = [
    "Host",
    "127.0.0.1:8301",
    "Connection",
    "keep-alive, X-Hop",
    "X-Hop",
    "1",
    "Keep-Alive",
    "timeout=5",
    "TE",
    "trailers",
    "Transfer-Encoding",
    "chunked",
    "Upgrade",
    "h2c",
    "Proxy-Authorization",
    "Basic eA==",
    "Authorization",
    "Bearer app-token",
    "X-Forwarded-For",
    "10.0.0.1",
    "Accept",
    "application/hal+json",
    "X-Trace",
    "a",
    "X-Trace",
    "b",
  ];
  assert.deepEqual(endToEnd(raw, true), [
    ["Accept", "application/hal+json"],
    ["X-Trace", "a"],
    ["X-Trace", "b"],
  ]);
  // Responses keep Authorization-like and forwarding headers (they are the API's), not hop-by-hop ones.
  assert.deepEqual(endToEnd(["Connection", "close", "Content-Type", "application/json", "WWW-Authenticate", "Bearer"], false), [
    ["Content-Type", "application/json"],
    ["WWW-Authenticate", "Bearer"],
  ]);
});

test("loggablePath keeps the path and the query's keys, never a value", () => {
  const cases: [string, string][] = [
    ["/connectedcar/v3/fleets", "/connectedcar/v3/fleets"],
    ["/connectedcar/v3/fleets?limit=10&client_id=secret", "/connectedcar/v3/fleets?limit=&client_id="],
    ["/f?a%20b=c", "/f?a%20b="],
    ["/f?", "/f?"],
  ];
  for (const [target, logged] of cases) assert.equal(loggablePath(target), logged, target);
});

test("only idempotent methods without a body are replayed", () => {
  for (const m of ["GET", "HEAD", "OPTIONS"]) assert.equal(replayable(m), true, m);
  for (const m of ["POST", "PUT", "PATCH", "DELETE"]) assert.equal(replayable(m), false, m);
});
