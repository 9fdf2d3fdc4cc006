// One credential's local listener: plain HTTP from applications on this host, forwarded to
// api.base_url's host over mutual TLS with the live certificate, Authorization set by credd, the
// client_id added, bodies streamed both ways. Handed its dependencies: it reads no file and no table.
import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { isLoopback, parseListen, type ListenAddress } from "../config/proxy.js";
import type { CredentialConfig, ProxyConfig } from "../config/types.js";
import { CreddError, errorMessage } from "../errors.js";
import type { ListenFds } from "../daemon/listen-fds.js";
import type { Logger } from "../log.js";
import { isInvalidToken, withClientId } from "../oauth/api.js";
import { errorBody, PROXY_ERROR_STATUS, ProxyUnavailable, upstreamErrorCode, upstreamMessage, type ProxyErrorCode } from "./errors.js";
import { endToEnd, loggablePath, replayable } from "./headers.js";
import { UpstreamPools, type LiveTls } from "./upstream.js";

export interface ProxyDeps {
  cred: CredentialConfig & { proxy: ProxyConfig; api: NonNullable<CredentialConfig["api"]> };
  /** The live certificate and key, or undefined when the credential has none yet. */
  live(): Promise<LiveTls | undefined>;
  /**
   * The Authorization header to send. `refused`: the header the API just refused with 401
   * invalid_token, so a new token is wanted (single-flight with the daemon's token manager).
   */
  authorization(refused?: string): Promise<string | undefined>;
  log: Logger;
  /** The sockets systemd handed over, for a `systemd:NAME` listen address. */
  fds?: ListenFds;
}

export interface ProxyStats {
  listening: string | null;
  requests: number;
  /** Requests by what came of them: the upstream's status class, or credd's own error code. */
  outcomes: Record<string, number>;
  retried_with_new_token: number;
  last_upstream_error: { at: string; error: ProxyErrorCode; message: string } | null;
  certificate_version: number | null;
  draining_pools: number;
}

export interface ProxyListener {
  /** "127.0.0.1:8301" or the socket path, once listening. */
  address(): string;
  stats(): ProxyStats;
  /**
   * New settings for the same listen address (a reload): requests from now on use them; the ones
   * in flight finish with the old, and the old connections to the API close once they have.
   */
  reconfigure(deps: ProxyDeps): void;
  /** Stops accepting, lets requests in flight finish for up to `graceMs`, then cuts the rest. */
  close(graceMs?: number): Promise<void>;
}

/** Counts bytes and fails the stream past `max`. */
class Cap extends Transform {
  bytes = 0;
  exceeded = false;
  constructor(private readonly max: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.max) {
      this.exceeded = true;
      cb(new CreddError("USAGE", "request body over the cap"));
      return;
    }
    cb(null, chunk);
  }
}

const MAX_HEADER_BYTES = 16 * 1024;

/**
 * A request body up to this size is read whole before it is sent, so that a 401 invalid_token can
 * be answered by sending it again with a new token; a larger one is streamed and not replayed.
 */
export const REPLAY_BODY_MAX = 64 * 1024;

/** The body as credd holds it: none, read whole (replayable), or streamed (read once). */
type Body = { kind: "none" } | { kind: "held"; data: Buffer } | { kind: "streamed"; stream: Readable };

/** No byte of the request body came for `timeout_ms` while credd read it whole. */
class BodyIdle extends Error {}

/**
 * Reads up to `hold` bytes of `req`: all of it when it ends by then, else what was read and a
 * stream of the whole body (what was read, then the rest). A client that goes away rejects, and
 * one that sends nothing for `idleMs` rejects with BodyIdle (streamed, the upstream deadline
 * holds it instead).
 */
async function readBody(req: IncomingMessage, hold: number, idleMs: number): Promise<Body> {
  const it = req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const read: Buffer[] = [];
  let bytes = 0;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BodyIdle()), idleMs);
    });
    const next = await Promise.race([it.next(), idle]).finally(() => clearTimeout(timer));
    if (next.done) return bytes === 0 ? { kind: "none" } : { kind: "held", data: Buffer.concat(read, bytes) };
    read.push(next.value);
    bytes += next.value.length;
    if (bytes > hold) break;
  }
  const rest = async function* () {
    yield* read;
    read.length = 0;
    for (let next = await it.next(); !next.done; next = await it.next()) yield next.value;
  };
  return { kind: "streamed", stream: Readable.from(rest(), { objectMode: false }) };
}

/** What one request is served with: swapped as a whole by a reload, read once per request. */
interface Site {
  deps: ProxyDeps;
  cred: ProxyDeps["cred"];
  cfg: ProxyConfig;
  base: URL;
  pools: UpstreamPools;
  /**
   * A live certificate was seen: one stays live from then on (a rotation or a rollback swaps it),
   * so the check before the token is skipped and each request reads the live row once, when sent.
   */
  seenLive: boolean;
}

export async function startProxy(first: ProxyDeps): Promise<ProxyListener> {
  const { log } = first;
  const name = first.cred.name;
  const listenAs = first.cred.proxy.listen;
  const siteOf = (deps: ProxyDeps, pools?: UpstreamPools): Site => {
    const base = new URL(deps.cred.api.base_url);
    return { deps, cred: deps.cred, cfg: deps.cred.proxy, base, pools: pools ?? new UpstreamPools(base.hostname), seenLive: false };
  };
  let site = siteOf(first);
  const stats: ProxyStats = {
    listening: null,
    requests: 0,
    outcomes: {},
    retried_with_new_token: 0,
    last_upstream_error: null,
    certificate_version: null,
    draining_pools: 0,
  };
  const count = (k: string) => {
    stats.outcomes[k] = (stats.outcomes[k] ?? 0) + 1;
  };

  const server = http.createServer(
    { maxHeaderSize: MAX_HEADER_BYTES, headersTimeout: 10_000, requestTimeout: 0, keepAliveTimeout: 5_000 },
    (req, res) => {
      handle(req, res).catch((err: unknown) => unexpected(req, res, err));
    },
  );
  // Malformed, over-long or smuggling-shaped requests: 400, the connection closed, nothing sent upstream.
  const refuse = (socket: Socket, message: string) => {
    count("bad_request");
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const body = errorBody("bad_request", message);
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  };
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    log.warn({ credential: name, parse_error: String(err.code ?? "") }, "proxy refused a malformed request");
    refuse(socket, "the request line or a header is malformed, too long, or ambiguous (e.g. both Content-Length and Transfer-Encoding)");
  });
  // CONNECT never reaches the request handler (Node would drop the connection without a word).
  server.on("connect", (_req: IncomingMessage, socket: Socket) => {
    log.warn({ credential: name, method: "CONNECT" }, "proxy refused a CONNECT request");
    refuse(socket, "CONNECT is not served: send the path only (origin-form, e.g. GET /connectedcar/v3/fleets)");
  });

  /** Whatever a request's handling threw (the store, archive/, a bug): a JSON 503, never an unhandled rejection. */
  function unexpected(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const code: ProxyErrorCode = err instanceof ProxyUnavailable ? err.code : "proxy_error";
    const message = err instanceof ProxyUnavailable ? err.message : `${name}: the proxy could not handle the request (${errorMessage(err)})`;
    count(code);
    log.error(
      { credential: name, method: req.method ?? "GET", path: loggablePath(req.url ?? "/"), error: code, err: message },
      "proxy request failed",
    );
    if (!res.headersSent) {
      const body = errorBody(code, message);
      res.writeHead(PROXY_ERROR_STATUS[code], { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    } else res.destroy();
    if (!req.complete) req.on("end", () => req.socket.destroy()).resume();
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The settings this request started with, whatever a reload does meanwhile.
    const s = site;
    const { deps, cred, cfg, base, pools } = s;
    const where = base.host;
    const started = performance.now();
    stats.requests++;
    const method = req.method ?? "GET";
    const target = req.url ?? "/";
    const path = loggablePath(target);
    let bytesIn = 0;
    let bytesOut = 0;
    let outcome = "";
    const done = (status: number) => {
      log.info(
        {
          credential: cred.name,
          method,
          path,
          status,
          ms: Math.round((performance.now() - started) * 10) / 10,
          bytes_in: bytesIn,
          bytes_out: bytesOut,
        },
        "proxy request",
      );
    };
    const fail = (code: ProxyErrorCode, message: string) => {
      outcome = code;
      count(code);
      const status = PROXY_ERROR_STATUS[code];
      if (!res.headersSent) {
        const body = errorBody(code, message);
        res.writeHead(status, {
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(body),
          ...(status === 400 || status === 408 || status === 413 ? { Connection: "close" } : {}),
        });
        res.end(body);
      } else res.destroy();
      // An unread request body would be parsed as the next request: the connection goes.
      if (!req.complete) req.on("end", () => req.socket.destroy()).resume();
      done(status);
    };

    // Smuggling-shaped or not for us: refused before anything is sent upstream.
    const te = req.headers["transfer-encoding"];
    if (te !== undefined && req.headers["content-length"] !== undefined)
      return fail("bad_request", "both Content-Length and Transfer-Encoding were sent");
    if (te !== undefined && te.toLowerCase().trim() !== "chunked")
      return fail("bad_request", `Transfer-Encoding "${te}" is not supported: send chunked or a Content-Length`);
    // "//host/..." or a backslash would make a URL parser pick another host: the token and the
    // client certificate must only ever go to api.base_url's host.
    if (!target.startsWith("/") || target.startsWith("//") || target.includes("\\") || method === "CONNECT") {
      return fail("bad_request", "send the path only (origin-form, e.g. GET /connectedcar/v3/fleets), not a full URL, //host or CONNECT");
    }
    const length = req.headers["content-length"];
    if (length !== undefined && Number(length) > cfg.max_body_bytes)
      return fail("body_too_large", `the body is ${length} bytes; the cap is proxy.max_body_bytes = ${cfg.max_body_bytes}`);
    const hasBody = te !== undefined || (length !== undefined && length !== "0");

    const noCredential = () => fail("no_credential", `${cred.name} has no live certificate yet (credd status ${cred.name} says why)`);
    if (!s.seenLive && !(await deps.live())) return noCredential();
    let authorization: string | undefined;
    try {
      authorization = await deps.authorization();
    } catch (err) {
      return fail("no_token", `${cred.name} has no valid token: ${errorMessage(err)}`);
    }

    // Concatenated, never resolved against the origin; checked again all the same.
    const url = withClientId(cred, new URL(base.origin + target));
    if (url.origin !== base.origin) return fail("bad_request", "the path does not stay on the API host");
    const headers = endToEnd(req.rawHeaders, true);
    // Read whole when small (a 401 invalid_token can then be answered by sending it again), else streamed.
    let body: Body = { kind: "none" };
    if (hasBody) {
      const known = length === undefined ? undefined : Number(length);
      try {
        body =
          known !== undefined && known > REPLAY_BODY_MAX
            ? { kind: "streamed", stream: req }
            : await readBody(req, Math.min(REPLAY_BODY_MAX, cfg.max_body_bytes), cfg.timeout_ms);
      } catch (err) {
        if (err instanceof BodyIdle) return fail("request_timeout", `no byte of the request body came for proxy.timeout_ms = ${cfg.timeout_ms} ms`);
        // The application went away in the middle of its body: nothing to answer, nothing sent.
        outcome = "client_gone";
        count(outcome);
        res.destroy();
        done(499);
        return;
      }
      if (body.kind === "held" && body.data.length > cfg.max_body_bytes)
        return fail("body_too_large", `the body is over proxy.max_body_bytes = ${cfg.max_body_bytes}`);
      if (body.kind === "held") bytesIn = body.data.length;
    }
    const held = body.kind !== "streamed";
    // Counted and capped as it streams; a body read whole was measured already.
    const cap = body.kind === "streamed" ? new Cap(cfg.max_body_bytes) : undefined;
    let attempt = 0;
    let tokenRetried = false;

    // The certificate is read after the token: a rotation in between gives a new certificate with
    // an old token at worst, which the API refuses with 401 invalid_token and the retry mends.
    const send = async (auth: string | undefined): Promise<void> => {
      attempt++;
      const live = await deps.live();
      if (live) s.seenLive = true;
      else {
        noCredential();
        return;
      }
      return new Promise<void>((resolve, reject) => {
        const pool = pools.acquire(live);
        stats.certificate_version = live.version;
        // With headers given as a list, Node adds no Host of its own.
        const out: [string, string][] = [["Host", base.host], ...headers, ...(auth ? [["Authorization", auth] as [string, string]] : [])];
        let timedOut = false;
        let settled = false;
        const up = https.request(url, { method, agent: pool.agent, headers: out.flat() as unknown as http.OutgoingHttpHeaders });
        // The deadline for the answer runs from the end of the request: a large upload is held to the
        // idle deadline below (no byte for timeout_ms), not to this one.
        let timer: NodeJS.Timeout | undefined;
        let responded = false;
        up.on("finish", () => {
          if (settled || responded) return;
          timer = setTimeout(() => {
            timedOut = true;
            up.destroy();
          }, cfg.timeout_ms);
        });
        const finish = () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          pool.release();
          resolve();
        };
        up.on("error", (err) => {
          if (res.headersSent || settled) {
            res.destroy();
            finish();
            return;
          }
          if (cap?.exceeded) {
            fail("body_too_large", `the body is over proxy.max_body_bytes = ${cfg.max_body_bytes}`);
            finish();
            return;
          }
          // A kept-alive connection the API had just closed: a request without a body goes again, once.
          if (up.reusedSocket && held && replayable(method) && attempt < 3 && !timedOut) {
            clearTimeout(timer);
            settled = true;
            pool.release();
            send(auth).then(resolve, reject);
            return;
          }
          const code = upstreamErrorCode(err, timedOut);
          const errCode = String((err as NodeJS.ErrnoException).code ?? "");
          const message = upstreamMessage(code, where, errCode);
          stats.last_upstream_error = { at: new Date().toISOString(), error: code, message };
          fail(code, message);
          finish();
        });
        up.on("response", (r) => {
          responded = true;
          clearTimeout(timer);
          const status = r.statusCode ?? 502;
          // 401 invalid_token: a new token once, the request again once when it can be replayed.
          if (auth?.startsWith("Bearer ") && !tokenRetried && isInvalidToken(status, r.headers["www-authenticate"])) {
            if (held) {
              r.resume();
              settled = true;
              pool.release();
              stats.retried_with_new_token++;
              tokenRetried = true;
              deps.authorization(auth).then(
                (fresh) => send(fresh).then(resolve, reject),
                (err) => {
                  fail("no_token", `the API refused the token (401 invalid_token) and no new one came: ${errorMessage(err)}`);
                  resolve();
                },
              );
              return;
            }
            // Not replayed: the next request gets a new token; the application is told why.
            deps.authorization(auth).catch(() => {});
            res.setHeader(
              "X-Credd-Reason",
              `invalid_token: credd is fetching a new token; this request was not replayed (its body was over ${REPLAY_BODY_MAX} bytes and streamed), send it again`,
            );
          }
          const respHeaders = endToEnd(r.rawHeaders, false);
          res.writeHead(status, respHeaders.flat() as unknown as http.OutgoingHttpHeaders);
          r.on("data", (c: Buffer) => {
            bytesOut += c.length;
          });
          r.pipe(res);
          r.on("end", () => {
            outcome = `${Math.floor(status / 100)}xx`;
            count(outcome);
            done(status);
            finish();
          });
          r.on("error", () => {
            res.destroy();
            finish();
          });
          r.on("close", finish);
        });
        res.on("close", () => {
          if (!res.writableFinished) up.destroy();
        });
        up.setTimeout(cfg.timeout_ms, () => {
          timedOut = true;
          up.destroy();
        });
        if (body.kind === "held") up.end(body.data);
        else if (body.kind === "streamed" && cap && attempt === 1) {
          cap.on("data", (c: Buffer) => {
            bytesIn += c.length;
          });
          body.stream.pipe(cap).pipe(up);
          cap.on("error", () => up.destroy());
        } else up.end();
      });
    };

    await send(authorization);
    if (!outcome && !res.writableEnded) res.destroy();
  }

  const addr = parseListen(listenAs);
  if (typeof addr === "string") throw new CreddError("CONFIG", `credentials[${name}].proxy.listen ${addr}`);
  await listen(server, addr, first);
  const shown = shownAddress(server, addr);
  stats.listening = shown;
  log.info(
    { credential: name, listen: shown, ...(addr.kind === "systemd" ? { systemd: addr.name } : {}), upstream: site.base.origin },
    "proxy listening",
  );

  return {
    address: () => shown,
    stats: () => ({ ...stats, outcomes: { ...stats.outcomes }, draining_pools: site.pools.stats().draining }),
    reconfigure(deps) {
      if (deps.cred.proxy.listen !== listenAs) throw new Error(`reconfigure ${name}: the listen address changed; start a new listener`);
      const old = site;
      // New connections from the next request on (the CA file, the key or the host may have
      // changed); the old ones close once their requests in flight have finished.
      old.pools.renew();
      const sameHost = new URL(deps.cred.api.base_url).hostname === old.base.hostname;
      site = siteOf(deps, sameHost ? old.pools : undefined);
    },
    async close(graceMs = 5_000) {
      stats.listening = null;
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const t = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(t);
      site.pools.destroy();
      // A socket file systemd made is systemd's to remove.
      if (addr.kind === "unix") removeSocket(addr.path);
    },
  };
}

/** "127.0.0.1:8301", "[::1]:8301" or the socket path; for a systemd socket, what it is bound to. */
function shownAddress(server: http.Server, addr: ListenAddress): string {
  if (addr.kind === "unix") return addr.path;
  const a = server.address();
  if (a === null || typeof a === "string") return a || `systemd:${addr.kind === "systemd" ? addr.name : ""}`;
  return `${a.address.includes(":") ? `[${a.address}]` : a.address}:${a.port}`;
}

function removeSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    /* gone already */
  }
}

async function listen(server: http.Server, addr: ListenAddress, deps: ProxyDeps): Promise<void> {
  if (addr.kind === "systemd") return listenSystemd(server, addr.name, deps);
  // A socket file left by a killed daemon would make listen fail with EADDRINUSE (the lock says none runs).
  if (addr.kind === "unix") removeSocket(addr.path);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    const ok = () => {
      server.off("error", reject);
      resolve();
    };
    if (addr.kind === "unix") server.listen(addr.path, ok);
    else server.listen(addr.port, addr.host, ok);
  }).catch((err: NodeJS.ErrnoException) => {
    const at = addr.kind === "unix" ? addr.path : `${addr.host}:${addr.port}`;
    throw new CreddError(
      "IO",
      `the proxy cannot listen on ${at}: ${err.code ?? errorMessage(err)} (fix: free the port or pick another proxy.listen)`,
      { cause: err },
    );
  });
  // Applications in credd's group connect; others do not.
  if (addr.kind === "unix") chmodSync(addr.path, 0o660);
}

/**
 * A socket systemd opened (socket activation): taken by its FileDescriptorName=. Its mode and
 * owner are the socket unit's (SocketMode=, SocketGroup=); a TCP one must be loopback unless
 * allow_remote, as for an address in the config.
 */
async function listenSystemd(server: http.Server, fdName: string, deps: ProxyDeps): Promise<void> {
  const key = `credentials[${deps.cred.name}].proxy.listen`;
  const unitFix = `(fix: a socket unit with FileDescriptorName=${fdName} listed in credd.service's Sockets=, e.g. systemd/credd-proxy@.socket, then systemctl restart credd; docs/proxy.md)`;
  const fd = deps.fds?.take(fdName);
  if (fd === undefined && deps.fds?.taken(fdName))
    throw new CreddError(
      "CONFIG",
      `${key} is "systemd:${fdName}", whose socket credd has closed already (a reload stopped this listener, or it was refused before); systemd hands a socket over only at the start (fix: systemctl restart credd)`,
    );
  if (fd === undefined) {
    const names = deps.fds?.names() ?? [];
    const what = names.length > 0 ? `it passed ${names.map((n) => `"${n}"`).join(", ")}` : (deps.fds?.why ?? "systemd passed no sockets");
    throw new CreddError("CONFIG", `${key} is "systemd:${fdName}", but systemd passed no socket of that name: ${what} ${unitFix}`);
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ fd }, () => {
      server.off("error", reject);
      resolve();
    });
  }).catch((err: NodeJS.ErrnoException) => {
    throw new CreddError(
      "IO",
      `${key}: the socket systemd passed as "${fdName}" (fd ${fd}) cannot be listened on: ${err.code ?? errorMessage(err)} (fix: ListenStream= with Accept=no in the socket unit)`,
      { cause: err },
    );
  });
  const a = server.address();
  if (a !== null && typeof a !== "string" && !isLoopback(a.address) && !deps.cred.proxy.allow_remote) {
    server.close();
    throw new CreddError(
      "CONFIG",
      `${key}: the socket systemd passed as "${fdName}" is bound to ${a.address}:${a.port}, not a loopback address: anyone who can reach it calls the API as ${deps.cred.name} (fix: ListenStream=127.0.0.1:${a.port} in the socket unit, or allow_remote: true if the network is trusted)`,
    );
  }
}
