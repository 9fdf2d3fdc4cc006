// One HTTPS exchange with mutual TLS (and a bare TLS handshake for `credd doctor`): the client
// certificate presented, the server checked against the system roots plus the Stellantis CA, one
// overall deadline, a capped body, and every failure turned into a CreddError("NETWORK") that
// names host:port and says what an ops person should look at.
import https from "node:https";
import { isIP } from "node:net";
import { performance } from "node:perf_hooks";
import tls from "node:tls";
import { CreddError } from "../errors.js";

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
  /** trusted besides the system roots (the Stellantis CA file's certificates) */
  caPems: string[];
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** ms from start to response end */
  durationMs: number;
}

export interface HttpRequestOptions {
  method: "GET" | "POST";
  headers?: Record<string, string>;
  body?: string;
  tls: TlsMaterial;
  /** One deadline for connect + TLS handshake + the whole response. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface HandshakeResult {
  /** ms from start to the end of the client's side of the handshake */
  durationMs: number;
  /** e.g. "TLSv1.3" */
  protocol: string;
  /** RFC 4514-ish, most significant RDN first as issued: "C=FR, O=Stellantis, CN=api.example" */
  serverSubject: string;
  serverIssuer: string;
  /** ISO 8601 */
  serverNotAfter: string;
  /**
   * True when the server is known to have accepted our client certificate: a TLS 1.2 handshake
   * completed, or a TLS 1.3 server sent its session ticket. False when TLS 1.3 gave no sign within
   * a short wait (the server may refuse the certificate only when the first request arrives).
   */
  clientCertConfirmed: boolean;
}

/** Largest response body read; a bigger one is cut off with an error. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** How long tlsHandshake waits after a TLS 1.3 handshake for the server's verdict on our certificate. */
const TLS13_VERDICT_WAIT_MS = 1000;

/** What was going on when a request failed, for timeout and reset messages. */
export type Phase = "connecting" | "TLS handshake" | "waiting for the response" | "reading the response";

/** What the error mapper needs to know about the attempt. */
export interface FailureContext {
  /** "host:port" */
  where: string;
  host: string;
  phase: Phase;
  timeoutMs: number;
  timedOut: boolean;
  aborted: boolean;
  /** The TLS protocol once the client side of the handshake completed. */
  protocol?: string;
  /** A TLS 1.3 session ticket arrived: the server accepted the handshake, client certificate included. */
  serverAcceptedHandshake: boolean;
  /** Configured extra CA certificates (stellantis.ca_file) were given. */
  extraCa: boolean;
}

export async function httpsRequest(url: string, opts: HttpRequestOptions): Promise<HttpResponse> {
  const target = parseHttpsUrl(url);
  const started = performance.now();
  const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 0 });
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.body !== undefined && !hasHeader(headers, "content-length")) {
    headers["Content-Length"] = String(Buffer.byteLength(opts.body));
  }
  const ctx: FailureContext = {
    where: target.where,
    host: target.host,
    phase: "connecting",
    timeoutMs: opts.timeoutMs,
    timedOut: false,
    aborted: false,
    serverAcceptedHandshake: false,
    extraCa: opts.tls.caPems.length > 0,
  };
  const secrets = secretValues(opts);

  return new Promise<HttpResponse>((resolve, reject) => {
    let settled = false;
    const finish = (outcome: { ok: HttpResponse } | { err: unknown }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      agent.destroy();
      if ("ok" in outcome) resolve(outcome.ok);
      else reject(toNetworkError(outcome.err, ctx, secrets));
    };

    const req = https.request({
      protocol: "https:",
      host: target.host,
      port: target.port,
      path: target.path,
      method: opts.method,
      headers,
      agent,
      ...tlsOptions(target.host, opts.tls),
    });

    const timer = setTimeout(() => {
      ctx.timedOut = true;
      req.destroy(new Error("overall deadline reached"));
    }, opts.timeoutMs);
    const onAbort = (): void => {
      ctx.aborted = true;
      req.destroy(new Error("aborted by the caller"));
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });

    req.on("socket", (socket) => {
      const s = socket as tls.TLSSocket;
      s.once("connect", () => {
        if (ctx.phase === "connecting") ctx.phase = "TLS handshake";
      });
      s.once("secureConnect", () => {
        ctx.phase = "waiting for the response";
        ctx.protocol = s.getProtocol() ?? undefined;
      });
      s.once("session", () => {
        ctx.serverAcceptedHandshake = true;
      });
    });
    req.on("error", (err) => finish({ err }));
    req.on("response", (res) => {
      ctx.phase = "reading the response";
      const chunks: Buffer[] = [];
      let size = 0;
      let ended = false;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          finish({
            err: new CreddError("NETWORK", `${ctx.where}: the response body is larger than ${MAX_BODY_BYTES / 1024 / 1024} MiB; not read further`),
          });
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on("end", () => {
        ended = true;
        finish({
          ok: {
            status: res.statusCode ?? 0,
            headers: { ...res.headers },
            body: Buffer.concat(chunks).toString("utf8"),
            durationMs: Math.round(performance.now() - started),
          },
        });
      });
      res.on("error", (err) => finish({ err }));
      res.on("close", () => {
        if (!ended) finish({ err: Object.assign(new Error("the connection closed before the response was complete"), { code: "ECONNRESET" }) });
      });
    });
    req.end(opts.body);
  });
}

/** Connects and completes the TLS handshake with our client certificate, then hangs up (for `credd doctor`). */
export async function tlsHandshake(url: string, material: TlsMaterial, timeoutMs: number): Promise<HandshakeResult> {
  const target = parseHttpsUrl(url);
  const started = performance.now();
  const ctx: FailureContext = {
    where: target.where,
    host: target.host,
    phase: "connecting",
    timeoutMs,
    timedOut: false,
    aborted: false,
    serverAcceptedHandshake: false,
    extraCa: material.caPems.length > 0,
  };
  return new Promise<HandshakeResult>((resolve, reject) => {
    let settled = false;
    let result: HandshakeResult | undefined;
    let verdictTimer: NodeJS.Timeout | undefined;
    const socket = tls.connect({ host: target.host, port: target.port, ...tlsOptions(target.host, material) });
    const finish = (outcome: { ok: HandshakeResult } | { err: unknown }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(verdictTimer);
      socket.destroy();
      if ("ok" in outcome) resolve(outcome.ok);
      else reject(toNetworkError(outcome.err, ctx, []));
    };
    const timer = setTimeout(() => {
      ctx.timedOut = true;
      finish({ err: new Error("overall deadline reached") });
    }, timeoutMs);

    socket.once("connect", () => {
      ctx.phase = "TLS handshake";
    });
    socket.once("session", () => {
      ctx.serverAcceptedHandshake = true;
      if (result) finish({ ok: { ...result, clientCertConfirmed: true } });
    });
    socket.once("secureConnect", () => {
      const protocol = socket.getProtocol() ?? "unknown";
      ctx.protocol = protocol;
      ctx.phase = "waiting for the response";
      const peer = socket.getPeerX509Certificate();
      result = {
        durationMs: Math.round(performance.now() - started),
        protocol,
        serverSubject: peer ? oneLineName(peer.subject) : "",
        serverIssuer: peer ? oneLineName(peer.issuer) : "",
        serverNotAfter: peer ? new Date(peer.validTo).toISOString() : "",
        clientCertConfirmed: protocol !== "TLSv1.3" || ctx.serverAcceptedHandshake,
      };
      if (result.clientCertConfirmed) {
        finish({ ok: result });
        return;
      }
      // TLS 1.3: the server checks our certificate after the client considers the handshake done;
      // a refusal arrives as an alert or a reset, an acceptance usually as a session ticket.
      const done = result;
      verdictTimer = setTimeout(() => finish({ ok: done }), Math.min(TLS13_VERDICT_WAIT_MS, timeoutMs));
    });
    socket.on("error", (err) => finish({ err }));
    socket.on("close", () => {
      if (result) finish({ err: Object.assign(new Error("the server closed the connection after the handshake"), { code: "ECONNRESET" }) });
      else finish({ err: Object.assign(new Error("the server closed the connection during the handshake"), { code: "ECONNRESET" }) });
    });
  });
}

interface HttpsTarget {
  host: string;
  port: number;
  path: string;
  /** "host:port" for messages */
  where: string;
}

function parseHttpsUrl(url: string): HttpsTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch (err) {
    throw new CreddError("CONFIG", `not a valid URL: ${JSON.stringify(url)}`, { cause: err });
  }
  if (u.protocol !== "https:") throw new CreddError("CONFIG", `${u.protocol}//${u.host}: only https:// URLs are used (mutual TLS)`);
  // URL keeps IPv6 literals in brackets; sockets want them bare.
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port ? Number(u.port) : 443;
  return { host, port, path: `${u.pathname}${u.search}`, where: `${u.hostname}:${port}` };
}

/** The TLS settings shared by both calls: our certificate, roots plus the Stellantis CA, verification on. */
export function tlsOptions(host: string, material: TlsMaterial): tls.ConnectionOptions {
  return {
    cert: material.certPem,
    key: material.keyPem,
    // Node's `ca` replaces the system roots: keep them and add the configured CA certificates.
    ca: [...tls.rootCertificates, ...material.caPems],
    rejectUnauthorized: true,
    minVersion: "TLSv1.2",
    // SNI is for host names only (RFC 6066); the identity check still uses `host`.
    ...(isIP(host) === 0 ? { servername: host } : {}),
  };
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

/** Header values (Authorization and such) that must never appear in a message. */
function secretValues(opts: HttpRequestOptions): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    if (/^(authorization|proxy-authorization|cookie)$/i.test(k) && v) {
      out.push(v);
      const cred = v.replace(/^\S+\s+/, "");
      if (cred.length >= 8) out.push(cred);
    }
  }
  return out;
}

/** Node's X509Certificate name ("C=FR\nO=Org\nCN=x", issuance order) on one line. */
function oneLineName(name: string): string {
  return name.split("\n").filter(Boolean).join(", ");
}

// Verification results that mean "we do not trust the server's certificate chain".
const UNTRUSTED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "PATH_LENGTH_EXCEEDED",
  "CERT_CHAIN_TOO_LONG",
  "CERT_REVOKED",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
]);
const DATES = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "ERROR_IN_CERT_NOT_BEFORE_FIELD", "ERROR_IN_CERT_NOT_AFTER_FIELD"]);

// TLS alerts from the server about the certificate we presented, by OpenSSL reason text (Node's
// code is ERR_SSL_<REASON> in TLS 1.3 but often a bare EPROTO in TLS 1.2, so the text decides).
const CLIENT_CERT_ALERTS = [
  "bad certificate",
  "unsupported certificate",
  "certificate revoked",
  "certificate expired",
  "certificate unknown",
  "unknown ca",
  "access denied",
  "certificate required",
];

const CLIENT_CERT_HINT = "check that the live certificate and key belong together, are signed by the Stellantis CA and have not expired";

/**
 * Turns a socket, TLS or HTTP error into a CreddError("NETWORK") naming host:port and what to check.
 * Exported for table tests of the cases that are hard to stage (DNS, expired certificates).
 */
export function toNetworkError(err: unknown, ctx: FailureContext, secrets: string[] = []): CreddError {
  if (err instanceof CreddError) return err;
  const detail = describeFailure(err, ctx);
  return new CreddError("NETWORK", redact(`${ctx.where}: ${detail}`, secrets), { cause: err });
}

function describeFailure(err: unknown, ctx: FailureContext): string {
  const e = (err ?? {}) as NodeJS.ErrnoException & { reason?: string };
  const code = typeof e.code === "string" ? e.code : "";
  const text = e instanceof Error ? e.message : String(err);
  const secs = String(Math.round(ctx.timeoutMs / 100) / 10);

  if (ctx.timedOut) {
    const during = {
      connecting: "while connecting (no answer: check host, port and firewall)",
      "TLS handshake": "during the TLS handshake",
      "waiting for the response": "waiting for the response (connected and TLS done; the server did not answer)",
      "reading the response": "while reading the response",
    }[ctx.phase];
    return `timed out after ${secs} s ${during}`;
  }
  if (ctx.aborted) return `request aborted (${ctx.phase})`;

  if (UNTRUSTED.has(code)) {
    return `the server certificate is not trusted (${code}: ${text}); is its CA in stellantis.ca_file?`;
  }
  if (DATES.has(code)) {
    return `the server certificate is not valid now (${code}: ${text}); the server must renew it, or the clock here is wrong`;
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return `the server certificate does not match the host name ${ctx.host} (${e.reason ?? text}); check the URL's host`;
  }
  const reason = sslReason(e, code, text);
  const alert = reason ? /^(?:sslv3|tlsv1|tlsv13) alert (.+)$/i.exec(reason)?.[1]?.toLowerCase() : undefined;
  if (alert && CLIENT_CERT_ALERTS.includes(alert)) {
    return `the server refused the client certificate (TLS alert: ${alert}); ${CLIENT_CERT_HINT}`;
  }
  if (alert === "handshake failure" && ctx.phase !== "waiting for the response") {
    return `the server ended the TLS handshake (alert: handshake failure): it may require a client certificate it did not get or accept, or we share no TLS version or cipher`;
  }
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused (nothing listens there: is the service up, and are the URL's host and port right?)";
    case "ENOTFOUND":
      return `DNS failure: the host name ${ctx.host} could not be resolved (ENOTFOUND); check the URL and the DNS settings`;
    case "EAI_AGAIN":
      return `DNS failure: the host name ${ctx.host} could not be resolved right now (EAI_AGAIN, temporary); check the DNS server`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `the host is unreachable from here (${code}: network, routing or firewall)`;
    case "ETIMEDOUT":
      return `the connection attempt timed out (ETIMEDOUT: check firewall and routing)`;
    case "EPIPE":
    case "ECONNRESET":
      return describeReset(ctx);
  }
  if (reason) {
    if (/wrong version number|packet length too long|unknown protocol|http request/i.test(reason)) {
      return `the server did not answer with TLS (${reason}); is this an https:// port?`;
    }
    return `the TLS handshake failed (${reason})`;
  }
  return `${ctx.phase} failed: ${code ? `${code}: ` : ""}${text}`;
}

/** OpenSSL's reason ("tlsv1 alert unknown ca") from Node's error fields or message, if it is a TLS error. */
function sslReason(e: { reason?: string; library?: string }, code: string, text: string): string | undefined {
  if (typeof e.reason === "string" && e.library === "SSL routines") return e.reason;
  const m = /SSL routines:[^:]*:([^:]+):/.exec(text);
  if (m?.[1]) return m[1].trim();
  if (code.startsWith("ERR_SSL_")) return code.slice("ERR_SSL_".length).replace(/_/g, " ").toLowerCase();
  return undefined;
}

function describeReset(ctx: FailureContext): string {
  if (ctx.phase === "connecting") return "the connection was reset while connecting";
  if (ctx.phase === "TLS handshake") {
    return `the server closed the connection during the TLS handshake: it most likely refused the client certificate (${CLIENT_CERT_HINT})`;
  }
  if (ctx.protocol === "TLSv1.3" && !ctx.serverAcceptedHandshake && ctx.phase === "waiting for the response") {
    // TLS 1.3 lets the client finish first; a refused certificate then shows as a reset before any answer.
    return `the connection was closed right after the TLS 1.3 handshake with no answer: the server refused the client certificate, most likely (${CLIENT_CERT_HINT})`;
  }
  if (ctx.phase === "reading the response") return "the connection was closed before the response was complete";
  return "the server closed the connection without answering";
}

function redact(s: string, secrets: string[]): string {
  let out = s;
  for (const v of secrets) if (v) out = out.split(v).join("[redacted]");
  return out;
}
