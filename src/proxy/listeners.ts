// The daemon's side of the proxy: one listener per credential that has `proxy:`, fed with the live
// certificate (cached per archive version) and the token manager's tokens. One credential's listener
// failing to start never stops the others or the daemon.
import { existsSync } from "node:fs";
import { readSecretFile } from "../config/load.js";
import type { CredentialConfig } from "../config/types.js";
import type { Ctx } from "../core/context.js";
import { tokensOf } from "../core/tokens-of.js";
import { NO_LISTEN_FDS, type ListenFds } from "../daemon/listen-fds.js";
import { errorMessage } from "../errors.js";
import { credentialPaths } from "../files/layout.js";
import { liveVersion } from "../files/live.js";
import { authorizationFor, type ApiAuth } from "../oauth/api.js";
import { tlsForVersion } from "../oauth/tls-material.js";
import { ProxyUnavailable } from "./errors.js";
import { startProxy, type ProxyListener, type ProxyDeps, type ProxyStats } from "./server.js";
import { writeProxyState } from "./state-file.js";
import type { LiveTls } from "./upstream.js";

export interface ProxyListeners {
  /** By credential name: what `status` and the metrics show. */
  stats(): Map<string, ProxyStats>;
  /** Writes each listener's state file now if it changed (the daemon does so every few seconds). */
  publish(): void;
  /**
   * Brings the listeners in line with ctx.config (a reload): starts the new ones, stops the ones
   * whose `proxy:` went, moves the ones whose listen address changed and hands the others their
   * new settings without closing them.
   */
  apply(): Promise<void>;
  close(): Promise<void>;
}

/** How long a token read for one request serves the next ones without looking again. */
const TOKEN_REUSE_MS = 1_000;

/** What one credential's listener is handed: reads from the database, the archive and the token files. */
export function proxyDeps(ctx: Ctx, cred: CredentialConfig, fds: ListenFds = NO_LISTEN_FDS): ProxyDeps {
  if (!cred.proxy || !cred.api) throw new Error(`${cred.name} has no proxy and api settings`);
  let cached: LiveTls | undefined;
  const paths = credentialPaths(ctx.config.state_dir, cred.name);
  const live = async (): Promise<LiveTls | undefined> => {
    let row: Awaited<ReturnType<typeof ctx.store.liveCertificate>>;
    try {
      row = await ctx.store.liveCertificate(cred.name);
    } catch (err) {
      throw new ProxyUnavailable("store_unavailable", `${cred.name}: the store cannot be read (${errorMessage(err)})`);
    }
    if (!row) return undefined;
    if (cached?.version === row.version) return cached;
    let version = row.version;
    // On a shared store the live version may be newer than this host's archive/ (followers write it
    // at their next tick): fetched now through follow.ts, else the version live/ has until it comes.
    if (ctx.config.store !== "sqlite" && !(existsSync(paths.key(version)) && existsSync(paths.cert(version)))) {
      try {
        await (await import("../core/follow.js")).fetchLiveArchive(ctx, cred, version, row.spki_sha256);
      } catch (err) {
        const onDisk = liveVersion(paths);
        ctx.log.warn(
          { credential: cred.name, version, serving: onDisk ?? null, err: errorMessage(err) },
          "proxy: the store's live version is not in archive/ yet; serving the version live/ has",
        );
        if (onDisk === undefined)
          throw new ProxyUnavailable("certificate_unavailable", `${cred.name}: version ${version} is not on this host yet (${errorMessage(err)})`);
        version = onDisk;
      }
    }
    if (cached?.version === version) return cached;
    try {
      cached = { version, material: tlsForVersion(ctx.config, cred, version) };
    } catch (err) {
      throw new ProxyUnavailable("certificate_unavailable", errorMessage(err));
    }
    return cached;
  };
  const tokens = tokensOf(ctx);
  /** The header of each token handed out, to its obtained_at: a refused one is not fetched twice. */
  const obtained = new Map<string, string>();
  let basic: ApiAuth | undefined;
  /**
   * The token handed out last, reused for up to TOKEN_REUSE_MS while the live version is the one it
   * was read under: the token file and two queries per request cost more than the rest of the proxy.
   * A refresh leaves the old token valid for a third of its life, so a second's delay is harmless.
   */
  let reuse: { header: string; version: number; until: number; expires: number } | undefined;
  /** The new token being fetched after a 401 invalid_token: the requests meanwhile wait for it, not send the refused one. */
  let renewing: Promise<string | undefined> | undefined;
  const authorization = (refused?: string): Promise<string | undefined> => {
    if (!cred.oauth) return headerFor(refused);
    if (renewing) return renewing;
    if (refused === undefined) return headerFor();
    reuse = undefined;
    const p = headerFor(refused).finally(() => {
      if (renewing === p) renewing = undefined;
    });
    renewing = p;
    return p;
  };
  const headerFor = async (refused?: string): Promise<string | undefined> => {
    if (cred.oauth) {
      const now = ctx.clock.now().getTime();
      const version = cached?.version;
      if (refused === undefined && reuse && reuse.version === version && now < reuse.until && now < reuse.expires) return reuse.header;
      const current = refused === undefined ? await tokens.current(cred) : undefined;
      // A refused token whose obtained_at is unknown: no reuse, a new one is asked for.
      const seen = refused === undefined ? null : obtained.get(refused);
      const why = refused ? "the API refused the token (401 invalid_token)" : "the proxy has no valid token";
      const t = current ?? (await tokens.fetch(cred, why, seen === undefined ? {} : { reuseOtherThan: { obtainedAt: seen } }));
      const header = `Bearer ${t.token}`;
      if (obtained.size > 16) obtained.clear();
      obtained.set(header, t.obtained_at);
      // Only while the live version is the one live() last saw: a token read across a rotation is not kept.
      const liveNow = (await ctx.store.liveCertificate(cred.name))?.version;
      reuse =
        liveNow !== undefined && liveNow === version
          ? { header, version: liveNow, until: now + TOKEN_REUSE_MS, expires: Date.parse(t.expires_at) - TOKEN_REUSE_MS }
          : undefined;
      return header;
    }
    if (cred.basic_auth) {
      basic ??= {
        basic: {
          user: cred.basic_auth.user,
          password: readSecretFile(cred.basic_auth.password_file, `credentials[${cred.name}].basic_auth.password_file`),
        },
      };
      return authorizationFor(basic, false);
    }
    return undefined;
  };
  return { cred: cred as ProxyDeps["cred"], live, authorization, log: ctx.log, fds };
}

/** How often the listeners' counters are written for `credd status` (when they changed). */
const STATE_EVERY_MS = 5_000;

export async function startProxies(ctx: Ctx, fds: ListenFds = NO_LISTEN_FDS): Promise<ProxyListeners> {
  const { log } = ctx;
  /** By credential name: the listener and the listen address it was started with. */
  const running = new Map<string, { p: ProxyListener; listen: string }>();
  const written = new Map<string, string>();
  const start = async (cred: CredentialConfig): Promise<ProxyListener | undefined> => {
    try {
      return await startProxy(proxyDeps(ctx, cred, fds));
    } catch (err) {
      log.error({ credential: cred.name, err: errorMessage(err) }, "proxy not started");
      return undefined;
    }
  };
  const stopOne = async (name: string, p: ProxyListener): Promise<void> => {
    await p.close();
    written.delete(name);
    try {
      writeProxyState(ctx.config.runtime_dir, name, p.stats(), ctx.clock.now()); // listening: null
    } catch (err) {
      log.warn({ credential: name, err: errorMessage(err) }, "cannot write the proxy's state for credd status");
    }
  };
  const apply = async (): Promise<void> => {
    const wanted = new Map(ctx.config.credentials.filter((c) => c.proxy).map((c) => [c.name, c]));
    for (const [name, r] of [...running]) {
      if (wanted.has(name)) continue;
      running.delete(name);
      await stopOne(name, r.p);
      log.info({ credential: name, listen: r.listen }, "proxy stopped: no proxy in the config any more");
    }
    for (const [name, cred] of wanted) {
      const listen = cred.proxy!.listen;
      const r = running.get(name);
      if (!r) {
        const p = await start(cred);
        if (p) running.set(name, { p, listen });
      } else if (r.listen === listen) r.p.reconfigure(proxyDeps(ctx, cred, fds));
      else {
        // Moved: the new address first, so a failure (the port taken) leaves the old one serving.
        const p = await start(cred);
        if (!p) {
          log.error({ credential: name, listen: r.listen, wanted: listen }, "proxy not moved: still listening on the old address");
          r.p.reconfigure(proxyDeps(ctx, { ...cred, proxy: { ...cred.proxy!, listen: r.listen } }, fds));
          continue;
        }
        running.set(name, { p, listen });
        await stopOne(name, r.p);
        log.info({ credential: name, from: r.listen, to: listen }, "proxy moved");
      }
    }
    writeState();
  };
  const writeState = (): void => {
    for (const [name, { p }] of running) {
      const stats = p.stats();
      const key = JSON.stringify(stats);
      if (written.get(name) === key) continue;
      try {
        writeProxyState(ctx.config.runtime_dir, name, stats, ctx.clock.now());
        written.set(name, key);
      } catch (err) {
        log.warn({ credential: name, err: errorMessage(err) }, "cannot write the proxy's state for credd status");
      }
    }
  };
  // One change at a time: a reload's and the stop's.
  let busy: Promise<void> = apply();
  await busy;
  const timer = setInterval(writeState, STATE_EVERY_MS);
  timer.unref();
  return {
    stats: () => new Map([...running].map(([name, r]) => [name, r.p.stats()])),
    publish: writeState,
    apply: () => (busy = busy.then(apply)),
    close: () =>
      (busy = busy.then(async () => {
        clearInterval(timer);
        await Promise.all([...running].map(([name, r]) => stopOne(name, r.p)));
        running.clear();
      })),
  };
}
