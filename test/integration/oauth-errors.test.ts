// describeErrorBody over every error shape Stellantis answers with, parseRetryAfter, and the
// network error wording for failures that are hard to stage on loopback (DNS, expired certificates).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeErrorBody, type ApiErrorInfo } from "../../src/oauth/errors.js";
import { toNetworkError, type FailureContext } from "../../src/oauth/http.js";
import { parseRetryAfter } from "../../src/oauth/token-client.js";

describe("describeErrorBody", () => {
  const cases: Array<{
    name: string;
    status: number;
    body: string;
    type?: string;
    want: Partial<Omit<ApiErrorInfo, "message">> & { message: string | RegExp };
  }> = [
    {
      name: "OAuth2 error with description",
      status: 401,
      body: '{"error":"invalid_client","error_description":"Client authentication failed"}',
      type: "application/json;charset=UTF-8",
      want: { shape: "oauth", code: "invalid_client", message: "HTTP 401 invalid_client: Client authentication failed" },
    },
    {
      name: "OAuth2 error without description",
      status: 401,
      body: '{"error":"invalid_token"}',
      want: { shape: "oauth", code: "invalid_token", message: "HTTP 401 invalid_token" },
    },
    {
      name: "OAuth2 error with a multi-line description",
      status: 400,
      body: '{"error":"invalid_request","error_description":"bad\\n  form\\r\\nfield"}',
      want: { shape: "oauth", code: "invalid_request", message: "HTTP 400 invalid_request: bad form field" },
    },
    {
      name: "gateway",
      status: 500,
      body: '{"httpCode":"500","httpMessage":"Internal Server Error","moreInformation":"backend unavailable"}',
      want: { shape: "gateway", code: "500", message: "HTTP 500 Internal Server Error: backend unavailable" },
    },
    {
      name: "gateway whose code differs from the status",
      status: 400,
      body: '{"httpCode":"401","httpMessage":"Unauthorized","moreInformation":"Client id not registered."}',
      type: "text/plain",
      want: { shape: "gateway", code: "401", message: "HTTP 400 (gateway 401) Unauthorized: Client id not registered." },
    },
    {
      name: "backend 495",
      status: 495,
      body: '{"code":495,"message":"Invalid or expired client certificate"}',
      want: { shape: "backend", code: "495", message: "HTTP 495 invalid or expired client certificate" },
    },
    {
      name: "backend 495 code inside another status, other wording",
      status: 403,
      body: '{"code":"495","message":"SSL certificate error"}',
      want: { shape: "backend", code: "495", message: "HTTP 403 invalid or expired client certificate: SSL certificate error" },
    },
    {
      name: "backend other code",
      status: 404,
      body: '{"code":40401,"message":"Fleet not found"}',
      want: { shape: "backend", code: "40401", message: "HTTP 404 40401: Fleet not found" },
    },
    {
      name: "backend wrapped in error",
      status: 502,
      body: '{"error":{"code":"502","message":"upstream timeout"}}',
      want: { shape: "backend", code: "502", message: "HTTP 502: upstream timeout" },
    },
    {
      name: "HTML page",
      status: 502,
      body: "<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>h1{color:red}</style></head><body><h1>Bad&nbsp;Gateway</h1><script>var x=1</script></body></html>",
      type: "text/html",
      want: { shape: "text", message: "HTTP 502: 502 Bad Gateway Bad Gateway" },
    },
    {
      name: "plain text",
      status: 503,
      body: "upstream connect error or disconnect/reset before headers\n",
      type: "text/plain",
      want: { shape: "text", message: "HTTP 503: upstream connect error or disconnect/reset before headers" },
    },
    {
      name: "long text cut to 200 characters",
      status: 500,
      body: "x".repeat(1000),
      want: { shape: "text", message: `HTTP 500: ${"x".repeat(200)}…` },
    },
    {
      name: "empty body",
      status: 503,
      body: "",
      want: { shape: "empty", message: "HTTP 503 Service Unavailable (empty body)" },
    },
    {
      name: "whitespace only",
      status: 401,
      body: "  \r\n",
      want: { shape: "empty", message: "HTTP 401 Unauthorized (empty body)" },
    },
    {
      name: "empty 495 still names the certificate",
      status: 495,
      body: "",
      want: { shape: "empty", message: /^HTTP 495 .*\(invalid or expired client certificate\)$/ },
    },
    {
      name: "JSON of unknown shape",
      status: 500,
      body: '{"fault":{"faultstring":"Rate limit quota violation"}}',
      want: { shape: "text", message: 'HTTP 500: {"fault":{"faultstring":"Rate limit quota violation"}}' },
    },
    {
      name: "broken JSON reads as text",
      status: 500,
      body: '{"error": "invalid_cl',
      type: "application/json",
      want: { shape: "text", message: 'HTTP 500: {"error": "invalid_cl' },
    },
    {
      name: "a token in an unknown JSON shape is redacted",
      status: 500,
      body: '{"access_token":"eyJhbGciOiJSUzI1NiJ9.payload.sig","note":"oops"}',
      want: { shape: "text", message: 'HTTP 500: {"access_token":"[redacted]","note":"oops"}' },
    },
    {
      name: "a token in text is redacted",
      status: 500,
      body: "debug: access_token=abcdef0123456789&token_type=Bearer; Authorization: Bearer abcdef0123456789",
      want: { shape: "text", message: "HTTP 500: debug: access_token=[redacted]&token_type=Bearer; Authorization: Bearer [redacted]" },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = describeErrorBody(c.status, c.body, c.type);
      assert.equal(got.status, c.status);
      if (c.want.shape) assert.equal(got.shape, c.want.shape);
      if ("code" in c.want) assert.equal(got.code, c.want.code);
      if (typeof c.want.message === "string") assert.equal(got.message, c.want.message);
      else assert.match(got.message, c.want.message);
      assert.doesNotMatch(got.message, /\n/);
      assert.ok(got.message.startsWith(`HTTP ${c.status}`));
      assert.ok(!got.message.includes("eyJhbGciOiJSUzI1NiJ9"));
      assert.ok(!got.message.includes("abcdef0123456789"));
    });
  }
});

describe("parseRetryAfter", () => {
  const now = new Date("2031-05-01T10:00:00Z");
  const cases: Array<[string | undefined, number | undefined]> = [
    ["2", 2000],
    [" 120 ", 120_000],
    ["0", 0],
    ["Thu, 01 May 2031 10:01:00 GMT", 60_000],
    ["Thu, 01 May 2031 09:00:00 GMT", 0],
    ["soon", undefined],
    ["-5", undefined],
    [undefined, undefined],
  ];
  for (const [v, want] of cases) {
    it(`${JSON.stringify(v)} → ${String(want)}`, () => assert.equal(parseRetryAfter(v, now), want));
  }
});

describe("network error wording", () => {
  const ctx = (over: Partial<FailureContext> = {}): FailureContext => ({
    where: "idfed-preprod.mpsa.com:443",
    host: "idfed-preprod.mpsa.com",
    phase: "connecting",
    timeoutMs: 30_000,
    timedOut: false,
    aborted: false,
    serverAcceptedHandshake: false,
    extraCa: true,
    ...over,
  });
  const err = (code: string, message: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(message), { code, ...extra });
  const cases: Array<[string, Error, Partial<FailureContext>, RegExp]> = [
    [
      "DNS",
      err("ENOTFOUND", "getaddrinfo ENOTFOUND idfed-preprod.mpsa.com"),
      {},
      /^idfed-preprod\.mpsa\.com:443: DNS failure: the host name idfed-preprod\.mpsa\.com could not be resolved/,
    ],
    ["DNS temporary", err("EAI_AGAIN", "getaddrinfo EAI_AGAIN"), {}, /DNS failure.*temporary/],
    ["refused", err("ECONNREFUSED", "connect ECONNREFUSED"), {}, /:443: connection refused/],
    [
      "expired",
      err("CERT_HAS_EXPIRED", "certificate has expired"),
      { phase: "TLS handshake" },
      /not valid now \(CERT_HAS_EXPIRED: certificate has expired\)/,
    ],
    [
      "self-signed",
      err("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"),
      { phase: "TLS handshake" },
      /not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT.*is its CA in stellantis\.ca_file\?/,
    ],
    [
      "chain",
      err("SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain"),
      { phase: "TLS handshake" },
      /not trusted \(SELF_SIGNED_CERT_IN_CHAIN/,
    ],
    [
      "mismatch",
      err("ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match", {
        reason: "Host: idfed-preprod.mpsa.com. is not in the cert's altnames: DNS:other",
      }),
      { phase: "TLS handshake" },
      /does not match the host name idfed-preprod\.mpsa\.com \(Host: .*altnames/,
    ],
    [
      "TLS 1.3 certificate required",
      err("ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED", "error:0A00045C:SSL routines::tlsv13 alert certificate required"),
      { phase: "waiting for the response", protocol: "TLSv1.3" },
      /the server refused the client certificate \(TLS alert: certificate required\)/,
    ],
    [
      "TLS 1.2 unknown ca as EPROTO",
      err(
        "EPROTO",
        "write EPROTO 80FC:error:0A000418:SSL routines:ssl3_read_bytes:tlsv1 alert unknown ca:../rec_layer_s3.c:1601:SSL alert number 48\n",
      ),
      { phase: "TLS handshake" },
      /the server refused the client certificate \(TLS alert: unknown ca\)/,
    ],
    [
      "bad certificate",
      err("ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE", "sslv3 alert bad certificate", { library: "SSL routines", reason: "sslv3 alert bad certificate" }),
      { phase: "TLS handshake" },
      /refused the client certificate \(TLS alert: bad certificate\)/,
    ],
    [
      "TLS 1.3 reset after handshake",
      err("ECONNRESET", "socket hang up"),
      { phase: "waiting for the response", protocol: "TLSv1.3" },
      /refused the client certificate, most likely/,
    ],
    [
      "reset after an accepted handshake",
      err("ECONNRESET", "socket hang up"),
      { phase: "waiting for the response", protocol: "TLSv1.3", serverAcceptedHandshake: true },
      /closed the connection without answering/,
    ],
    [
      "reset during the handshake",
      err("ECONNRESET", "Client network socket disconnected before secure TLS connection was established"),
      { phase: "TLS handshake" },
      /during the TLS handshake: it most likely refused the client certificate/,
    ],
    [
      "not TLS",
      err("ERR_SSL_WRONG_VERSION_NUMBER", "error:0A00010B:SSL routines:ssl3_get_record:wrong version number:"),
      { phase: "TLS handshake" },
      /did not answer with TLS/,
    ],
    ["timeout connecting", new Error("x"), { timedOut: true, timeoutMs: 2500 }, /timed out after 2\.5 s while connecting/],
    ["timeout in handshake", new Error("x"), { timedOut: true, phase: "TLS handshake" }, /timed out after 30 s during the TLS handshake/],
  ];
  for (const [name, e, over, re] of cases) {
    it(name, () => {
      const out = toNetworkError(e, ctx(over));
      assert.equal(out.code, "NETWORK");
      assert.match(out.message, re);
      assert.equal(out.cause, e);
    });
  }

  it("removes header secrets from the message", () => {
    const out = toNetworkError(err("EX", "weird failure with Bearer SECRETVALUE123"), ctx(), ["Bearer SECRETVALUE123", "SECRETVALUE123"]);
    assert.ok(!out.message.includes("SECRETVALUE123"), out.message);
  });
});
