// The daemon's side of the proxy: one listener per credential that has `proxy:`, fed with the live
// certificate (cached per archive version) and the token manager's tokens. One credential's listener
// failing to start never stops the others or the daemon.
import { readSecretFile } from "../config/load.js";
import type { CredentialConfig } from "../config/types.js";
import type { Ctx } from "../core/context.js";
import { tokensOf } from "../core/tokens-of.js";
import { errorMessage } from "../errors.js";
import { authorizationFor, type ApiAuth } from "../oauth/api.js";
import { tlsForVersion } from "../oauth/tls-material.js";
import { startProxy, type ProxyListener, type ProxyDeps, type ProxyStats } from "./server.js";
import { writeProxyState } from "./state-file.js";
import type { LiveTls } from "./upstream.js";

export interface ProxyListeners {
  /** By credential name: what `status` and the metrics show. */
  stats(): Map<string, ProxyStats>;
  /** Writes each listener's state file now if it changed (the daemon does so every few seconds). */
  publish(): void;
  close(): Promise<void>;
}

/** How long a token read for one request serves the next ones without looking again. */
const TOKEN_REUSE_MS = 1_000;

/** What one credential's listener is handed: reads from the database, the archive and the token files. */
export function proxyDeps(ctx: Ctx, cred: CredentialConfig): ProxyDeps {
  if (!cred.proxy || !cred.api) throw new Error(`${cred.name} has no proxy and api settings`);
  let cached: LiveTls | undefined;
  const live = async (): Promise<LiveTls | undefined> => {
    const row = await ctx.store.liveCertificate(cred.name);
    if (!row) return undefined;
    if (cached?.version !== row.version) cached = { version: row.version, material: tlsForVersion(ctx.config, cred, row.version) };
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
  const authorization = async (refused?: string): Promise<string | undefined> => {
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
  return { cred: cred as ProxyDeps["cred"], live, authorization, log: ctx.log };
}

/** How often the listeners' counters are written for `credd status` (when they changed). */
const STATE_EVERY_MS = 5_000;

export async function startProxies(ctx: Ctx): Promise<ProxyListeners> {
  const running = new Map<string, ProxyListener>();
  for (const cred of ctx.config.credentials) {
    if (!cred.proxy) continue;
    try {
      running.set(cred.name, await startProxy(proxyDeps(ctx, cred)));
    } catch (err) {
      ctx.log.error({ credential: cred.name, err: errorMessage(err) }, "proxy not started");
    }
  }
  const written = new Map<string, string>();
  const writeState = (): void => {
    for (const [name, p] of running) {
      const stats = p.stats();
      const key = JSON.stringify(stats);
      if (written.get(name) === key) continue;
      try {
        writeProxyState(ctx.config.runtime_dir, name, stats, ctx.clock.now());
        written.set(name, key);
      } catch (err) {
        ctx.log.warn({ credential: name, err: errorMessage(err) }, "cannot write the proxy's state for credd status");
      }
    }
  };
  writeState();
  const timer = setInterval(writeState, STATE_EVERY_MS);
  timer.unref();
  return {
    stats: () => new Map([...running].map(([name, p]) => [name, p.stats()])),
    publish: writeState,
    close: async () => {
      clearInterval(timer);
      await Promise.all([...running.values()].map((p) => p.close()));
      writeState(); // listening: null
      running.clear();
    },
  };
}
