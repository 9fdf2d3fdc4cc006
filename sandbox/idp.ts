// A stand-in for the Stellantis IDP and Fleet Owner API on loopback: mutual TLS against the
// partner client CA, `POST /as/token.oauth2` (client_credentials, RFC 8705 tls_client_auth with
// certificate-bound tokens), the API under /connectedcar/v3 with Bearer or Basic auth, and
// scripted failures. Used by the tests and by the sandbox. Fingerprints are SHA-256, uppercase hex
// with colons as openssl and Node's `fingerprint256` print them ("AB:CD:..."); register()/unregister()
// also take them without colons or in lower case.
import { randomBytes, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { makeServerTls, type ServerTls } from "./pki.js";

export const TOKEN_PATH = "/as/token.oauth2";
export const API_BASE_PATH = "/connectedcar/v3";

export type TokenFailure = "500" | "429" | "hang" | "invalid_client" | "close";
export type ApiFailure = "401-invalid_token" | "495" | "500-gateway" | "hang";

export interface IssuedToken {
  token: string;
  clientId: string;
  scope: string;
  certSha256: string;
  at: Date;
}

export interface ApiCall {
  path: string;
  query: Record<string, string>;
  /** The Authorization header as sent ("" when absent). */
  auth: string;
  certSha256: string;
  status: number;
  /** The method, and the request body's length in bytes. */
  method: string;
  bodyBytes: number;
}

export interface TokenRequest {
  clientId: string;
  scope: string;
  grantType: string;
  certSha256: string;
  status: number | "hang" | "close";
  /** Why a request was refused (empty when a token was issued). */
  error?: string;
}

export interface FakeStellantis {
  tokenUrl: string;
  /** https://127.0.0.1:PORT/connectedcar/v3 */
  apiBaseUrl: string;
  port: number;
  /** What the client must trust for the server certificate. */
  serverCaPem: string;
  serverCaPath: string;
  tokensIssued: IssuedToken[];
  apiCalls: ApiCall[];
  /** Token requests seen, answered or not (scripted failures included). */
  tokenRequests: TokenRequest[];
  /**
   * Client certificates the IDP accepts for tls_client_auth, by SHA-256 fingerprint (uppercase
   * hex with colons, as openssl prints it; without colons or lower case works too). Others get
   * 401 invalid_client.
   */
  register(certSha256: string): void;
  unregister(certSha256: string): void;
  /** The fingerprints register() accepted (normalised), in no particular order. */
  registered(): string[];
  /** When true, any certificate chaining to the client CA is accepted (RFC 8705 subject DN match); default false. */
  acceptAllFromCa: boolean;
  /** Seconds, default 3600. */
  expiresIn: number;
  /** Scripted failures for the next N token requests; 429 sends Retry-After: 2. */
  failNextTokens(n: number, how: TokenFailure): void;
  /** Scripted API answers for the next N calls. */
  failNextApi(n: number, how: ApiFailure): void;
  /** Stop listening (open connections are cut) / listen again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export interface FakeStellantisOptions {
  /** The CA that signs partner client certificates (requestCert + ca). */
  clientCaPem: string;
  port?: number;
  /** The clock for token expiry; real time by default. */
  now?: () => Date;
  /** Also accept Basic auth on the API (the older scheme). */
  basic?: { user: string; password: string };
  /** Cap the TLS version, e.g. "TLSv1.2" to see a refused client certificate during the handshake. */
  maxTlsVersion?: "TLSv1.2" | "TLSv1.3";
  /** The server certificate to present; a throwaway one (CA file in a temp folder) by default. */
  serverTls?: ServerTls & { caPath: string };
  /**
   * Where the client certificate is checked: "handshake" (default: TLS refuses it, with real-time
   * dates) or "request" (any certificate is let through TLS, then checked against the client CA and
   * `now`, so certificates dated by a virtual clock work; refused: 401 invalid_client / API 495).
   */
  clientCertCheck?: "handshake" | "request";
  /** Called for every token request as it is answered (the issued token too, on success). */
  onTokenRequest?: (r: TokenRequest, issued?: IssuedToken) => void;
  /** Called for every API call as it is answered. */
  onApiCall?: (c: ApiCall) => void;
  /** Listen on this address (default 127.0.0.1: loopback only). */
  host?: string;
}

const FLEETS_BODY = { _links: { self: { href: `${API_BASE_PATH}/fleets` } }, _embedded: { fleets: [{ id: "fleet-1" }] } };

/** "ab:cd…" or "ABCD…" → "AB:CD:…". */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/[^0-9a-f]/gi, "").toUpperCase();
  return hex.match(/.{2}/g)?.join(":") ?? "";
}

export async function startFakeStellantis(opts: FakeStellantisOptions): Promise<FakeStellantis> {
  let tempDir: string | undefined;
  const throwaway = async (): Promise<ServerTls & { caPath: string }> => {
    const made = await makeServerTls();
    tempDir = mkdtempSync(join(tmpdir(), "credd-idp-"));
    const caPath = join(tempDir, "server-ca.pem");
    writeFileSync(caPath, made.caPem);
    return { ...made, caPath };
  };
  const serverTls = opts.serverTls ?? (await throwaway());
  const host = opts.host ?? "127.0.0.1";
  const now = opts.now ?? (() => new Date());
  const checkInRequest = opts.clientCertCheck === "request";
  const clientCas = splitPem(opts.clientCaPem).map((p) => new X509Certificate(p));
  const registered = new Set<string>();
  const tokens = new Map<string, { clientId: string; scope: string; certSha256: string; expiresAt: number }>();
  const tokenScript: TokenFailure[] = [];
  const apiScript: ApiFailure[] = [];
  const sockets = new Set<Socket>();

  const server = https.createServer({
    key: serverTls.keyPem,
    cert: serverTls.certPem,
    requestCert: true,
    rejectUnauthorized: !checkInRequest,
    ca: opts.clientCaPem,
    ...(opts.maxTlsVersion ? { maxVersion: opts.maxTlsVersion } : {}),
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  // A refused client certificate or a client hanging up mid-handshake: nothing to do here.
  server.on("tlsClientError", () => {});

  const fake: FakeStellantis = {
    tokenUrl: "",
    apiBaseUrl: "",
    port: 0,
    serverCaPem: serverTls.caPem,
    serverCaPath: serverTls.caPath,
    tokensIssued: [],
    apiCalls: [],
    tokenRequests: [],
    acceptAllFromCa: false,
    expiresIn: 3600,
    register(fp) {
      registered.add(normalizeFingerprint(fp));
    },
    unregister(fp) {
      registered.delete(normalizeFingerprint(fp));
    },
    registered() {
      return [...registered];
    },
    failNextTokens(n, how) {
      for (let i = 0; i < n; i++) tokenScript.push(how);
    },
    failNextApi(n, how) {
      for (let i = 0; i < n; i++) apiScript.push(how);
    },
    async down() {
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
    async up() {
      if (server.listening) return;
      await listen(fake.port);
    },
    async close() {
      await fake.down();
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    },
  };

  async function listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once("error", onError);
      server.listen(port, host, () => {
        server.off("error", onError);
        resolve();
      });
    });
    fake.port = (server.address() as AddressInfo).port;
    fake.tokenUrl = `https://${host}:${fake.port}${TOKEN_PATH}`;
    fake.apiBaseUrl = `https://${host}:${fake.port}${API_BASE_PATH}`;
  }

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "https://127.0.0.1");
      const certSha256 = peerFingerprint(req);
      if (url.pathname === TOKEN_PATH) {
        handleToken(req, res, Buffer.concat(chunks).toString("utf8"), certSha256);
      } else if (url.pathname === API_BASE_PATH || url.pathname.startsWith(`${API_BASE_PATH}/`)) {
        handleApi(
          req,
          res,
          url,
          certSha256,
          chunks.reduce((n, c) => n + c.length, 0),
        );
      } else {
        sendJson(res, 404, { httpCode: "404", httpMessage: "Not Found", moreInformation: `no resource ${url.pathname}` });
      }
    });
  });

  function handleToken(req: IncomingMessage, res: ServerResponse, body: string, certSha256: string): void {
    const form = new URLSearchParams(body);
    const seen = {
      clientId: form.get("client_id") ?? "",
      scope: form.get("scope") ?? "",
      grantType: form.get("grant_type") ?? "",
      certSha256,
    };
    const record = (status: number | "hang" | "close", error?: string, issued?: IssuedToken): void => {
      const r: TokenRequest = { ...seen, status, ...(error ? { error } : {}) };
      fake.tokenRequests.push(r);
      opts.onTokenRequest?.(r, issued);
    };
    if (req.method !== "POST") {
      record(405);
      sendJson(res, 405, { error: "invalid_request", error_description: "the token endpoint takes POST" }, { Allow: "POST" });
      return;
    }
    const scripted = tokenScript.shift();
    switch (scripted) {
      case "hang":
        record("hang");
        return; // never answers; down()/close() cut the connection
      case "close":
        record("close");
        // A moment later, as a backend dying mid-request would (the handshake has long succeeded).
        setTimeout(() => req.socket.destroy(), 50);
        return;
      case "500":
        record(500);
        res.writeHead(500, { "Content-Type": "text/html" });
        res.end(
          "<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1><p>The server encountered an internal error.</p></body></html>",
        );
        return;
      case "429":
        record(429);
        sendJson(res, 429, { httpCode: "429", httpMessage: "Too Many Requests", moreInformation: "rate limit exceeded" }, { "Retry-After": "2" });
        return;
      case "invalid_client":
        record(401);
        sendJson(res, 401, { error: "invalid_client", error_description: "Client authentication failed" });
        return;
      case undefined:
        break;
    }
    if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers["content-type"] ?? "")) {
      record(400);
      sendJson(res, 400, { error: "invalid_request", error_description: "expected application/x-www-form-urlencoded" });
      return;
    }
    if (seen.grantType !== "client_credentials") {
      record(400);
      sendJson(res, 400, { error: "unsupported_grant_type", error_description: `grant_type ${seen.grantType || "(missing)"} is not supported` });
      return;
    }
    if (!seen.clientId) {
      record(400);
      sendJson(res, 400, { error: "invalid_request", error_description: "client_id is required" });
      return;
    }
    if (!seen.scope) {
      record(400);
      sendJson(res, 400, { error: "invalid_scope", error_description: "scope is required" });
      return;
    }
    const certProblem = checkInRequest ? clientCertProblem(req, clientCas, now()) : "";
    if (certProblem) {
      record(401, certProblem);
      sendJson(res, 401, { error: "invalid_client", error_description: `Client authentication failed: ${certProblem}` });
      return;
    }
    if (!certSha256 || !(fake.acceptAllFromCa || registered.has(certSha256))) {
      record(401, "certificate not registered for this client");
      sendJson(res, 401, { error: "invalid_client", error_description: "Client authentication failed: certificate not registered for this client" });
      return;
    }
    const token = randomBytes(24).toString("base64url");
    const at = now();
    tokens.set(token, { clientId: seen.clientId, scope: seen.scope, certSha256, expiresAt: at.getTime() + fake.expiresIn * 1000 });
    const issued: IssuedToken = { token, clientId: seen.clientId, scope: seen.scope, certSha256, at };
    fake.tokensIssued.push(issued);
    record(200, undefined, issued);
    sendJson(
      res,
      200,
      { access_token: token, token_type: "Bearer", expires_in: fake.expiresIn, scope: seen.scope },
      { "Cache-Control": "no-store", Pragma: "no-cache" },
    );
  }

  function handleApi(req: IncomingMessage, res: ServerResponse, url: URL, certSha256: string, bodyBytes: number): void {
    const auth = req.headers.authorization ?? "";
    const query = Object.fromEntries(url.searchParams);
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}, contentType = "application/json"): void => {
      const call: ApiCall = { path: url.pathname, query, auth, certSha256, status, method: req.method ?? "", bodyBytes };
      fake.apiCalls.push(call);
      opts.onApiCall?.(call);
      sendJson(res, status, body, headers, contentType);
    };
    if (checkInRequest && clientCertProblem(req, clientCas, now())) {
      answer(495, { code: 495, message: "Invalid or expired client certificate" });
      return;
    }
    const scripted = apiScript.shift();
    if (scripted === "401-invalid_token") {
      answer(401, { error: "invalid_token", error_description: "The access token expired" }, { "WWW-Authenticate": 'Bearer error="invalid_token"' });
      return;
    }
    if (scripted === "495") {
      answer(495, { code: 495, message: "Invalid or expired client certificate" });
      return;
    }
    if (scripted === "hang") return; // never answers; down()/close() cut the connection
    if (scripted === "500-gateway") {
      answer(500, { httpCode: "500", httpMessage: "Internal Server Error", moreInformation: "backend unavailable" });
      return;
    }
    if (req.method !== "GET") {
      answer(405, { httpCode: "405", httpMessage: "Method Not Allowed", moreInformation: "only GET here" });
      return;
    }
    if (!query.client_id) {
      answer(400, { httpCode: "400", httpMessage: "Bad Request", moreInformation: "client_id query parameter is required" });
      return;
    }
    const bearer = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
    const basic = /^Basic\s+(\S+)$/i.exec(auth)?.[1];
    if (basic !== undefined && opts.basic) {
      const [user, ...rest] = Buffer.from(basic, "base64").toString("utf8").split(":");
      if (user !== opts.basic.user || rest.join(":") !== opts.basic.password) {
        answer(
          401,
          { httpCode: "401", httpMessage: "Unauthorized", moreInformation: "invalid user or password" },
          { "WWW-Authenticate": 'Basic realm="connectedcar"' },
        );
        return;
      }
    } else {
      const t = bearer !== undefined ? tokens.get(bearer) : undefined;
      const problem =
        bearer === undefined
          ? "missing bearer token"
          : !t
            ? "unknown token"
            : t.expiresAt <= now().getTime()
              ? "The access token expired"
              : t.certSha256 !== certSha256
                ? "token is bound to another client certificate"
                : "";
      if (problem) {
        answer(401, { error: "invalid_token", error_description: problem }, { "WWW-Authenticate": 'Bearer error="invalid_token"' });
        return;
      }
    }
    const self = url.pathname === `${API_BASE_PATH}/fleets` ? FLEETS_BODY : { ...FLEETS_BODY, _links: { self: { href: url.pathname } } };
    answer(200, self, {}, "application/hal+json");
  }

  await listen(opts.port ?? 0);
  return fake;
}

function peerFingerprint(req: IncomingMessage): string {
  const sock = req.socket as TLSSocket;
  const cert = sock.getPeerCertificate();
  return cert && typeof cert.fingerprint256 === "string" ? normalizeFingerprint(cert.fingerprint256) : "";
}

/** Request-time check of the client certificate (clientCertCheck "request"): issued by a client CA, valid at `now`. */
function clientCertProblem(req: IncomingMessage, cas: X509Certificate[], now: Date): string {
  const peer = (req.socket as TLSSocket).getPeerCertificate(false);
  if (!peer?.raw) return "no client certificate";
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(peer.raw);
  } catch {
    return "the client certificate does not parse";
  }
  const issuer = cas.find((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
  if (!issuer) return "the client certificate was not issued by the partner CA";
  const t = now.getTime();
  for (const c of [leaf, issuer]) {
    if (Date.parse(c.validFrom) > t) return `certificate ${c.serialNumber} is not valid before ${new Date(c.validFrom).toISOString()}`;
    if (Date.parse(c.validTo) < t) return `certificate ${c.serialNumber} expired on ${new Date(c.validTo).toISOString()}`;
  }
  return "";
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, contentType = "application/json"): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": contentType, "Content-Length": String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}
