// The token client and the mTLS HTTPS adapter against real HTTPS servers on loopback: the fake
// Stellantis IDP/API (client certificates checked, tokens bound to them) and small scripted servers.
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import type { OAuthConfig, StellantisDn } from "../../src/config/types.js";
import { dnFor } from "../helpers/credd.js";
import { CreddError } from "../../src/errors.js";
import { describeErrorBody } from "../../src/oauth/errors.js";
import { httpsRequest, MAX_BODY_BYTES, tlsHandshake, tlsOptions, type TlsMaterial } from "../../src/oauth/http.js";
import { requestToken, TokenError } from "../../src/oauth/token-client.js";
import { makeCa, makeKeyAndCert, makeTempDir, opensslFingerprint, type KeyAndCert, type TestCa } from "../helpers/openssl.js";
import { startFakeStellantis, type FakeStellantis } from "../helpers/stellantis.js";
import { makeCert, makeServerTls, makeTestCa, removeTestPki, type ServerTls } from "../helpers/tls.js";

const DN: StellantisDn = dnFor("MZP128745");

let dir: string;
let clientCa: TestCa;
let good: KeyAndCert;
let other: KeyAndCert;
let foreign: KeyAndCert;
let fake: FakeStellantis;
/** Every error message produced in this file, checked at the end for secrets. */
const messages: string[] = [];
/** Every PEM key and token this file handled. */
const secrets: string[] = [];

function material(kc: KeyAndCert, caPems: string[] = [fake.serverCaPem]): TlsMaterial {
  const keyPem = readFileSync(kc.keyPath, "utf8");
  secrets.push(keyPem);
  return { certPem: kc.certPem, keyPem, caPems };
}

function oauth(over: Partial<OAuthConfig> = {}): OAuthConfig {
  return { token_url: fake.tokenUrl, client_id: "partner-client", scope: "openid", ...over };
}

async function rejection(p: Promise<unknown>): Promise<CreddError> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof CreddError, `expected a CreddError, got ${inspect(caught)}`);
  messages.push(caught.message);
  return caught;
}

async function tokenRejection(p: Promise<unknown>): Promise<TokenError> {
  const err = await rejection(p);
  assert.ok(err instanceof TokenError, `expected a TokenError, got ${inspect(err)}`);
  return err;
}

before(async () => {
  dir = makeTempDir("credd-oauth-");
  clientCa = makeCa(dir, { cn: "Test Stellantis Partner CA" });
  good = makeKeyAndCert(dir, DN, { ca: clientCa });
  other = makeKeyAndCert(dir, { ...DN, CN: "MZP999999" }, { ca: clientCa });
  foreign = makeKeyAndCert(dir, DN, { ca: makeCa(dir, { cn: "Some Other CA" }) });
  fake = await startFakeStellantis({ clientCaPem: clientCa.certPem });
  fake.register(opensslFingerprint(good.certPath));
});

after(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
  // No message may carry a private key, a token or PEM text.
  for (const m of messages) {
    assert.doesNotMatch(m, /PRIVATE KEY|BEGIN CERTIFICATE/, m);
    for (const s of [...secrets, ...fake.tokensIssued.map((t) => t.token)]) assert.ok(!m.includes(s), `secret leaked into: ${m}`);
  }
});

describe("requestToken against the fake Stellantis IDP", () => {
  it("gets a token with a registered client certificate, which the IDP saw", async () => {
    const before = fake.tokensIssued.length;
    const resp = await requestToken(oauth(), material(good), { timeoutMs: 5000 });
    assert.equal(resp.token_type, "Bearer");
    assert.equal(resp.expires_in, 3600);
    assert.equal(resp.scope, "openid");
    assert.ok(resp.access_token.length >= 16);
    const issued = fake.tokensIssued[before];
    assert.ok(issued);
    assert.equal(issued.token, resp.access_token);
    assert.equal(issued.certSha256, opensslFingerprint(good.certPath));
    assert.equal(issued.clientId, "partner-client");
    assert.equal(issued.scope, "openid");
    const seen = fake.tokenRequests.at(-1);
    assert.equal(seen?.grantType, "client_credentials");
  });

  it("reports an unregistered certificate as invalid_client, not retryable", async () => {
    const err = await tokenRejection(requestToken(oauth(), material(other), { timeoutMs: 5000 }));
    assert.equal(err.code, "REFUSED");
    assert.equal(err.oauthError, "invalid_client");
    assert.equal(err.status, 401);
    assert.equal(err.retryable, false);
    assert.equal(err.info?.shape, "oauth");
    assert.match(err.message, /HTTP 401 invalid_client/);
    assert.match(err.message, /client_id "partner-client"/);
    // The IDP saw the other certificate, so the failure is about registration, not TLS.
    assert.equal(fake.tokenRequests.at(-1)?.certSha256, opensslFingerprint(other.certPath));
  });

  it("accepts any certificate of the client CA when the IDP matches by subject DN", async () => {
    fake.acceptAllFromCa = true;
    try {
      const resp = await requestToken(oauth(), material(other), { timeoutMs: 5000 });
      assert.equal(fake.tokensIssued.at(-1)?.certSha256, opensslFingerprint(other.certPath));
      assert.equal(fake.tokensIssued.at(-1)?.token, resp.access_token);
    } finally {
      fake.acceptAllFromCa = false;
    }
  });

  it("reports a scripted invalid_client for a registered certificate precisely", async () => {
    fake.failNextTokens(1, "invalid_client");
    const err = await tokenRejection(requestToken(oauth(), material(good), { timeoutMs: 5000 }));
    assert.equal(err.oauthError, "invalid_client");
    assert.equal(err.retryable, false);
    assert.match(err.message, /HTTP 401 invalid_client: Client authentication failed/);
  });

  it("treats a 500 as retryable", async () => {
    fake.failNextTokens(1, "500");
    const err = await tokenRejection(requestToken(oauth(), material(good), { timeoutMs: 5000 }));
    assert.equal(err.code, "NETWORK");
    assert.equal(err.status, 500);
    assert.equal(err.retryable, true);
    assert.equal(err.oauthError, undefined);
    assert.equal(err.info?.shape, "text");
    assert.match(err.message, /HTTP 500: 500 Internal Server Error Internal Server Error/);
    assert.doesNotMatch(err.message, /<[a-z]/i);
  });

  it("takes Retry-After from a 429", async () => {
    fake.failNextTokens(1, "429");
    const err = await tokenRejection(requestToken(oauth(), material(good), { timeoutMs: 5000 }));
    assert.equal(err.status, 429);
    assert.equal(err.retryAfterMs, 2000);
    assert.equal(err.retryable, true);
    assert.equal(err.code, "NETWORK");
    assert.match(err.message, /rate limited; retry after 2 s/);
  });

  it("times out a hanging IDP with one overall deadline", async () => {
    fake.failNextTokens(1, "hang");
    const started = Date.now();
    const err = await tokenRejection(requestToken(oauth(), material(good), { timeoutMs: 500 }));
    const took = Date.now() - started;
    assert.ok(took >= 450 && took < 3000, `took ${took} ms`);
    assert.equal(err.code, "NETWORK");
    assert.equal(err.retryable, true);
    assert.match(err.message, /timed out after 0\.5 s waiting for the response/);
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${fake.port}`));
  });

  it("reports a connection closed without an answer as a retryable network failure", async () => {
    fake.failNextTokens(1, "close");
    const err = await tokenRejection(requestToken(oauth(), material(good), { timeoutMs: 5000 }));
    assert.equal(err.code, "NETWORK");
    assert.equal(err.retryable, true);
    assert.match(err.message, /closed the connection without answering/);
  });

  it("says connection refused when the IDP is down, and works again when it is back", async () => {
    await fake.down();
    try {
      const err = await tokenRejection(requestToken(oauth(), material(good), { timeoutMs: 5000 }));
      assert.equal(err.code, "NETWORK");
      assert.equal(err.retryable, true);
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${fake.port}: connection refused`));
    } finally {
      await fake.up();
    }
    const resp = await requestToken(oauth(), material(good), { timeoutMs: 5000 });
    assert.ok(resp.access_token);
  });

  it("does not trust the test server with the system roots only (verification stays on)", async () => {
    const err = await tokenRejection(requestToken(oauth(), material(good, []), { timeoutMs: 5000 }));
    assert.equal(err.code, "NETWORK");
    assert.match(err.message, /server certificate is not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    assert.match(err.message, /is its CA in stellantis\.ca_file\?/);
  });

  it("trusts the system roots beside the Stellantis CA (ca is combined, not replaced), verification on", () => {
    const m: TlsMaterial = { certPem: "C", keyPem: "K", caPems: ["CA1", "CA2"] };
    const byName = tlsOptions("idfed-preprod.mpsa.com", m);
    assert.deepEqual(byName.ca, [...tls.rootCertificates, "CA1", "CA2"]);
    assert.ok(tls.rootCertificates.length > 10);
    assert.equal(byName.rejectUnauthorized, true);
    assert.equal(byName.servername, "idfed-preprod.mpsa.com");
    assert.equal(byName.cert, "C");
    assert.equal(byName.key, "K");
    // No SNI for IP addresses (RFC 6066).
    assert.equal(tlsOptions("127.0.0.1", m).servername, undefined);
    assert.equal(tlsOptions("::1", m).servername, undefined);
  });

  it("trusts every certificate in caPems", async () => {
    // Another, unrelated CA in caPems must not stop the right one from working.
    const unrelated = makeTestCa({ cn: "unrelated" });
    try {
      const resp = await requestToken(oauth(), material(good, [unrelated.caPem, fake.serverCaPem]), { timeoutMs: 5000 });
      assert.ok(resp.access_token);
    } finally {
      removeTestPki(unrelated.dir);
    }
  });

  for (const maxTlsVersion of ["TLSv1.2", "TLSv1.3"] as const) {
    it(`says the server refused a client certificate from a foreign CA (${maxTlsVersion})`, async () => {
      const strict = await startFakeStellantis({ clientCaPem: clientCa.certPem, maxTlsVersion });
      try {
        strict.acceptAllFromCa = true;
        const err = await tokenRejection(
          requestToken({ ...oauth(), token_url: strict.tokenUrl }, material(foreign, [strict.serverCaPem]), { timeoutMs: 5000 }),
        );
        if (err.oauthError !== undefined) {
          assert.equal(err.oauthError, "invalid_client");
        } else {
          assert.equal(err.code, "NETWORK");
          assert.match(err.message, /refused the client certificate/);
        }
        assert.equal(strict.tokensIssued.length, 0);
      } finally {
        await strict.close();
      }
    });
  }

  it("rejects a non-https token_url before sending anything", async () => {
    const err = await rejection(requestToken(oauth({ token_url: "http://127.0.0.1:1/as/token.oauth2" }), material(good), { timeoutMs: 1000 }));
    assert.equal(err.code, "CONFIG");
  });
});

describe("the fake Stellantis API with httpsRequest", () => {
  async function token(kc: KeyAndCert = good): Promise<string> {
    return (await requestToken(oauth(), material(kc), { timeoutMs: 5000 })).access_token;
  }

  it("answers a Bearer call with the client_id query parameter in hal+json", async () => {
    const t = await token();
    const res = await httpsRequest(`${fake.apiBaseUrl}/fleets?client_id=1a2b3c`, {
      method: "GET",
      headers: { Authorization: `Bearer ${t}`, Accept: "application/hal+json" },
      tls: material(good),
      timeoutMs: 5000,
    });
    assert.equal(res.status, 200);
    assert.match(String(res.headers["content-type"]), /^application\/hal\+json/);
    assert.deepEqual(JSON.parse(res.body), {
      _links: { self: { href: "/connectedcar/v3/fleets" } },
      _embedded: { fleets: [{ id: "fleet-1" }] },
    });
    assert.ok(res.durationMs >= 0 && res.durationMs < 5000);
    const call = fake.apiCalls.at(-1);
    assert.equal(call?.path, "/connectedcar/v3/fleets");
    assert.deepEqual(call?.query, { client_id: "1a2b3c" });
    assert.equal(call?.certSha256, opensslFingerprint(good.certPath));
    assert.equal(call?.status, 200);
  });

  it("refuses an unknown token with 401 invalid_token, which describeErrorBody reads as OAuth", async () => {
    const res = await httpsRequest(`${fake.apiBaseUrl}/fleets?client_id=1a2b3c`, {
      method: "GET",
      headers: { Authorization: "Bearer not-a-token-we-issued" },
      tls: material(good),
      timeoutMs: 5000,
    });
    assert.equal(res.status, 401);
    assert.equal(res.headers["www-authenticate"], 'Bearer error="invalid_token"');
    const info = describeErrorBody(res.status, res.body, String(res.headers["content-type"]));
    assert.equal(info.shape, "oauth");
    assert.equal(info.code, "invalid_token");
    assert.match(info.message, /^HTTP 401 invalid_token: unknown token$/);
  });

  it("refuses a token used with another client certificate (RFC 8705 binding)", async () => {
    fake.acceptAllFromCa = true;
    let t: string;
    try {
      t = await token(other);
    } finally {
      fake.acceptAllFromCa = false;
    }
    const res = await httpsRequest(`${fake.apiBaseUrl}/fleets?client_id=1a2b3c`, {
      method: "GET",
      headers: { Authorization: `Bearer ${t}` },
      tls: material(good),
      timeoutMs: 5000,
    });
    assert.equal(res.status, 401);
    const info = describeErrorBody(res.status, res.body);
    assert.equal(info.code, "invalid_token");
    assert.match(info.message, /bound to another client certificate/);
    assert.ok(!info.message.includes(t));
  });

  it("describes a scripted 401 invalid_token, 495 and gateway 500", async () => {
    const t = await token();
    const call = () =>
      httpsRequest(`${fake.apiBaseUrl}/fleets?client_id=1a2b3c`, {
        method: "GET",
        headers: { Authorization: `Bearer ${t}` },
        tls: material(good),
        timeoutMs: 5000,
      });
    fake.failNextApi(1, "401-invalid_token");
    const r401 = await call();
    assert.equal(r401.status, 401);
    assert.equal(describeErrorBody(r401.status, r401.body).code, "invalid_token");

    fake.failNextApi(1, "495");
    const r495 = await call();
    assert.equal(r495.status, 495);
    const i495 = describeErrorBody(r495.status, r495.body, String(r495.headers["content-type"]));
    assert.equal(i495.shape, "backend");
    assert.equal(i495.code, "495");
    assert.match(i495.message, /^HTTP 495 invalid or expired client certificate/);

    fake.failNextApi(1, "500-gateway");
    const r500 = await call();
    const i500 = describeErrorBody(r500.status, r500.body);
    assert.equal(i500.shape, "gateway");
    assert.equal(i500.message, "HTTP 500 Internal Server Error: backend unavailable");

    // The script is used up: the same token works again.
    assert.equal((await call()).status, 200);
  });

  it("wants the client_id query parameter (gateway-shaped 400)", async () => {
    const t = await token();
    const res = await httpsRequest(`${fake.apiBaseUrl}/fleets`, {
      method: "GET",
      headers: { Authorization: `Bearer ${t}` },
      tls: material(good),
      timeoutMs: 5000,
    });
    assert.equal(res.status, 400);
    const info = describeErrorBody(res.status, res.body);
    assert.equal(info.shape, "gateway");
    assert.match(info.message, /HTTP 400 Bad Request: client_id query parameter is required/);
  });

  it("expires tokens by the fake's clock", async () => {
    let clock = new Date("2030-01-01T00:00:00Z");
    const timed = await startFakeStellantis({ clientCaPem: clientCa.certPem, now: () => clock });
    try {
      timed.acceptAllFromCa = true;
      timed.expiresIn = 60;
      const tlsM = material(good, [timed.serverCaPem]);
      const resp = await requestToken({ ...oauth(), token_url: timed.tokenUrl }, tlsM, { timeoutMs: 5000 });
      assert.equal(resp.expires_in, 60);
      const call = () =>
        httpsRequest(`${timed.apiBaseUrl}/fleets?client_id=x`, {
          method: "GET",
          headers: { Authorization: `Bearer ${resp.access_token}` },
          tls: tlsM,
          timeoutMs: 5000,
        });
      assert.equal((await call()).status, 200);
      clock = new Date(clock.getTime() + 61_000);
      const res = await call();
      assert.equal(res.status, 401);
      assert.match(describeErrorBody(res.status, res.body).message, /expired/);
    } finally {
      await timed.close();
    }
  });

  it("accepts Basic auth when configured, and refuses a wrong password", async () => {
    const basic = await startFakeStellantis({ clientCaPem: clientCa.certPem, basic: { user: "MZP128745", password: "s3cret" } });
    try {
      const tlsM = material(good, [basic.serverCaPem]);
      const call = (pw: string) =>
        httpsRequest(`${basic.apiBaseUrl}/fleets?client_id=x`, {
          method: "GET",
          headers: { Authorization: `Basic ${Buffer.from(`MZP128745:${pw}`).toString("base64")}`, Accept: "application/hal+json" },
          tls: tlsM,
          timeoutMs: 5000,
        });
      assert.equal((await call("s3cret")).status, 200);
      const bad = await call("wrong");
      assert.equal(bad.status, 401);
      assert.equal(describeErrorBody(bad.status, bad.body).shape, "gateway");
    } finally {
      await basic.close();
    }
  });

  it("never puts the Authorization value in a timeout message", async () => {
    fake.failNextTokens(1, "hang");
    const bearer = "Bearer abcdefghijklmnopqrstuvwxyz0123456789";
    const err = await rejection(
      httpsRequest(fake.tokenUrl, {
        method: "POST",
        headers: { Authorization: bearer, "Content-Type": "application/x-www-form-urlencoded" },
        body: "grant_type=client_credentials&client_id=a&scope=b",
        tls: material(good),
        timeoutMs: 300,
      }),
    );
    assert.match(err.message, /timed out after 0\.3 s/);
    assert.ok(!err.message.includes("abcdefghijklmnopqrstuvwxyz0123456789"));
  });

  it("honours the caller's abort signal", async () => {
    fake.failNextTokens(1, "hang");
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 100);
    const err = await rejection(httpsRequest(fake.tokenUrl, { method: "POST", body: "", tls: material(good), timeoutMs: 5000, signal: ctl.signal }));
    assert.equal(err.code, "NETWORK");
    assert.match(err.message, /aborted/);
  });
});

describe("tlsHandshake", () => {
  it("reports protocol and server certificate, with our certificate accepted", async () => {
    const hs = await tlsHandshake(fake.apiBaseUrl, material(good), 5000);
    assert.equal(hs.protocol, "TLSv1.3");
    assert.equal(hs.serverSubject, "CN=localhost");
    assert.equal(hs.serverIssuer, "CN=credd test CA");
    assert.ok(Date.parse(hs.serverNotAfter) > Date.now());
    assert.equal(hs.clientCertConfirmed, true);
    assert.ok(hs.durationMs >= 0 && hs.durationMs < 5000);
  });

  it("reports a refused client certificate (TLS 1.3 and 1.2)", async () => {
    for (const maxTlsVersion of ["TLSv1.3", "TLSv1.2"] as const) {
      const strict = await startFakeStellantis({ clientCaPem: clientCa.certPem, maxTlsVersion });
      try {
        const err = await rejection(tlsHandshake(strict.apiBaseUrl, material(foreign, [strict.serverCaPem]), 5000));
        assert.equal(err.code, "NETWORK");
        assert.match(err.message, /refused the client certificate/);
      } finally {
        await strict.close();
      }
    }
  });

  it("reports an untrusted server", async () => {
    const err = await rejection(tlsHandshake(fake.apiBaseUrl, material(good, []), 5000));
    assert.match(err.message, /not trusted/);
  });
});

describe("httpsRequest against scripted servers", () => {
  let pki: ServerTls;
  before(() => {
    pki = makeServerTls();
  });
  after(() => removeTestPki(pki.dir));

  /** A plain HTTPS server (no client certificate asked) with the given certificate and handler. */
  async function serve(
    cert: { certPem: string; keyPem: string },
    handler: (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void,
  ): Promise<{ url: string; close: () => Promise<void> }> {
    const srv = https.createServer({ cert: cert.certPem, key: cert.keyPem }, handler);
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as AddressInfo).port;
    return {
      url: `https://127.0.0.1:${port}/`,
      close: () =>
        new Promise<void>((r) => {
          srv.closeAllConnections();
          srv.close(() => r());
        }),
    };
  }

  const client = (): TlsMaterial => material(good, [pki.caPem]);

  it("reports a host name mismatch", async () => {
    const wrongName = makeCert(pki.ca, { subject: "/CN=api.other.example", san: ["DNS:api.other.example"], usage: "server" });
    const s = await serve(wrongName, (_q, r) => r.end("{}"));
    try {
      const err = await rejection(httpsRequest(s.url, { method: "GET", tls: client(), timeoutMs: 5000 }));
      assert.match(err.message, /does not match the host name 127\.0\.0\.1/);
    } finally {
      await s.close();
    }
  });

  it("reports an expired server certificate with its verify code", async () => {
    const ca = makeCa(dir, { cn: "Expired Server CA" });
    const expired = makeKeyAndCert(
      dir,
      { ...DN, CN: "127.0.0.1" },
      {
        ca,
        clientAuth: false,
        notBefore: new Date(Date.now() - 10 * 86_400_000),
        notAfter: new Date(Date.now() - 86_400_000),
      },
    );
    const s = await serve({ certPem: expired.certPem, keyPem: readFileSync(expired.keyPath, "utf8") }, (_q, r) => r.end("{}"));
    try {
      const err = await rejection(httpsRequest(s.url, { method: "GET", tls: material(good, [ca.certPem]), timeoutMs: 5000 }));
      assert.match(err.message, /CERT_HAS_EXPIRED/);
    } finally {
      await s.close();
    }
  });

  it("caps the response body at 1 MiB", async () => {
    const big = Buffer.alloc(MAX_BODY_BYTES + 64 * 1024, 0x61);
    const s = await serve(pki, (_q, r) => r.end(big));
    try {
      const err = await rejection(httpsRequest(s.url, { method: "GET", tls: client(), timeoutMs: 5000 }));
      assert.match(err.message, /larger than 1 MiB/);
    } finally {
      await s.close();
    }
  });

  it("reads a body of exactly 1 MiB", async () => {
    const s = await serve(pki, (_q, r) => r.end(Buffer.alloc(MAX_BODY_BYTES, 0x62)));
    try {
      const res = await httpsRequest(s.url, { method: "GET", tls: client(), timeoutMs: 5000 });
      assert.equal(res.body.length, MAX_BODY_BYTES);
    } finally {
      await s.close();
    }
  });

  describe("token answers the IDP might give", () => {
    async function withAnswer(status: number, body: string, headers: Record<string, string>, fn: (url: string) => Promise<void>): Promise<void> {
      const s = await serve(pki, (req, res) => {
        req.resume();
        req.on("end", () => {
          res.writeHead(status, headers);
          res.end(body);
        });
      });
      try {
        await fn(s.url);
      } finally {
        await s.close();
      }
    }
    const ask = (url: string, now?: () => Date) => requestToken(oauth({ token_url: url }), client(), { timeoutMs: 5000, ...(now ? { now } : {}) });

    it("accepts expires_in as a numeric string and token_type in any case", async () => {
      await withAnswer(
        200,
        '{"access_token":"tok-123456789","token_type":"bearer","expires_in":"1799"}',
        { "Content-Type": "application/json" },
        async (url) => {
          assert.deepEqual(await ask(url), { access_token: "tok-123456789", token_type: "Bearer", expires_in: 1799 });
        },
      );
    });

    const badOnes: Array<[string, string, RegExp]> = [
      ["no access_token", '{"token_type":"Bearer","expires_in":3600}', /no access_token/],
      ["empty access_token", '{"access_token":"","token_type":"Bearer","expires_in":3600}', /no access_token/],
      ["token_type MAC", '{"access_token":"SECRETTOKEN12345","token_type":"mac","expires_in":3600}', /token_type "mac" is not Bearer/],
      ["expires_in 0", '{"access_token":"SECRETTOKEN12345","token_type":"Bearer","expires_in":0}', /expires_in "0" is not a positive number/],
      ["expires_in missing", '{"access_token":"SECRETTOKEN12345","token_type":"Bearer"}', /no expires_in/],
      ["expires_in words", '{"access_token":"SECRETTOKEN12345","token_type":"Bearer","expires_in":"soon"}', /expires_in "soon"/],
    ];
    for (const [name, body, re] of badOnes) {
      it(`refuses a 200 with ${name}`, async () => {
        await withAnswer(200, body, { "Content-Type": "application/json" }, async (url) => {
          const err = await tokenRejection(ask(url));
          assert.equal(err.code, "REFUSED");
          assert.equal(err.retryable, false);
          assert.match(err.message, re);
          assert.ok(!err.message.includes("SECRETTOKEN12345"));
        });
      });
    }

    it("calls a 200 HTML page a retryable failure and says what came back", async () => {
      await withAnswer(200, "<html><body><h1>Welcome to the portal</h1></body></html>", { "Content-Type": "text/html" }, async (url) => {
        const err = await tokenRejection(ask(url));
        assert.equal(err.retryable, true);
        assert.match(err.message, /not JSON \(HTTP 200: Welcome to the portal\)/);
      });
    });

    it("takes a Retry-After HTTP date on 503 relative to the given clock", async () => {
      const now = new Date("2031-05-01T10:00:00Z");
      await withAnswer(503, "", { "Retry-After": "Thu, 01 May 2031 10:00:30 GMT" }, async (url) => {
        const err = await tokenRejection(ask(url, () => now));
        assert.equal(err.retryAfterMs, 30_000);
        assert.equal(err.retryable, true);
        assert.equal(err.info?.shape, "empty");
        assert.match(err.message, /HTTP 503 Service Unavailable \(empty body\)/);
      });
    });

    it("reports invalid_scope and a 400 invalid_client as refusals, not retryable", async () => {
      await withAnswer(
        400,
        '{"error":"invalid_scope","error_description":"scope not allowed"}',
        { "Content-Type": "application/json" },
        async (url) => {
          const err = await tokenRejection(ask(url));
          assert.equal(err.oauthError, "invalid_scope");
          assert.equal(err.retryable, false);
          assert.match(err.message, /check oauth\.scope \("openid"\)/);
        },
      );
      await withAnswer(400, '{"error":"invalid_client"}', { "Content-Type": "application/json" }, async (url) => {
        const err = await tokenRejection(ask(url));
        assert.equal(err.oauthError, "invalid_client");
        assert.equal(err.retryable, false);
        assert.equal(err.code, "REFUSED");
      });
    });

    it("redacts a token that an error body carries", async () => {
      await withAnswer(502, '{"weird":true,"access_token":"LEAKEDTOKEN987654"}', { "Content-Type": "application/json" }, async (url) => {
        const err = await tokenRejection(ask(url));
        assert.equal(err.retryable, true);
        assert.ok(!err.message.includes("LEAKEDTOKEN987654"), err.message);
      });
    });
  });
});
