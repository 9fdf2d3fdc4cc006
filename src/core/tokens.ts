// Keeps one valid OAuth2 token per credential: fetch over mTLS, refresh at ~2/3 of its life, back off on
// failure. The orchestration lives here; the HTTP exchange, the TLS material and the token files are
// the oauth/ adapter's, and the token request itself is handed in (TokenClient).
import type { Config, CredentialConfig } from "../config/types.js";
import { TOKEN_LAPSE_WARNING_MS, tokenBackoffMs, tokenRefreshAt } from "../domain/token-timing.js";
import { CreddError, errorMessage } from "../errors.js";
import { tryFetchLock, waitForFetchLock } from "../oauth/fetch-lock.js";
import type { RequestTokenOptions, TokenResponse } from "../oauth/token-client.js";
import { readTokenFiles, tokenFilesPresent, writeTokenFiles, type TokenJson } from "../oauth/token-files.js";
import type { Ctx } from "./context.js";
import { crashPoint } from "./crash.js";
import type { TokenTiming } from "../store/store.js";

/** One token request to `cred`'s IDP with its archived certificate `version` (the transport of the manager). */
export type TokenClient = (config: Config, cred: CredentialConfig, version: number, opts: RequestTokenOptions) => Promise<TokenResponse>;

/**
 * The oauth/ adapter's request over mutual TLS. Its modules (and https, tls, http under them) are
 * loaded with the first token request: an idle daemon whose tokens are all valid never needs them.
 */
export const httpsTokenClient: TokenClient = async (config, cred, version, opts) => {
  if (!cred.oauth) throw new CreddError("STATE", `${cred.name} has no oauth settings`);
  const [{ requestToken }, { tlsForVersion }] = await Promise.all([import("../oauth/token-client.js"), import("../oauth/tls-material.js")]);
  return requestToken(cred.oauth, tlsForVersion(config, cred, version), opts);
};

export interface TokenManagerOptions {
  /** [0, 1) for refresh jitter; injected so tests are exact. */
  random?: () => number;
  timeoutMs?: number;
  /** How a token is asked for (default httpsTokenClient). */
  client?: TokenClient;
}

export class TokenManager {
  private readonly inflight = new Map<string, Promise<TokenJson>>();
  constructor(
    private readonly ctx: Ctx,
    private readonly opts: TokenManagerOptions = {},
  ) {}

  /** A valid token from the runtime files, if there is one. */
  async current(cred: CredentialConfig): Promise<TokenJson | undefined> {
    const t = readTokenFiles(this.ctx.config.runtime_dir, cred.name);
    if (!t || Date.parse(t.expires_at) <= this.ctx.clock.now().getTime()) return undefined;
    // A token from an older certificate may be bound to it (RFC 8705): after a certificate change
    // (or a crash between go-live and the new token) it is not handed out.
    const live = await this.ctx.store.liveCertificate(cred.name);
    const row = await this.ctx.store.getToken(cred.name);
    if (!live || row?.cert_version !== live.version || row.obtained_at !== t.obtained_at) return undefined;
    return t;
  }

  /**
   * Fetches a token with the live certificate now. One request in flight per credential, however
   * many callers ask: they all get the same answer.
   */
  fetch(cred: CredentialConfig, why: string, opts: { reuseOtherThan?: { obtainedAt: string | null } } = {}): Promise<TokenJson> {
    const running = this.inflight.get(cred.name);
    if (running) return running;
    const p = this.fetchLive(cred, why, opts.reuseOtherThan).finally(() => this.inflight.delete(cred.name));
    this.inflight.set(cred.name, p);
    return p;
  }

  /** What the daemon calls on its short tick: fetch where a token is missing, due, or from an older certificate. */
  async tick(): Promise<void> {
    // One query for every credential's live version and token row: the tick runs every second.
    const rows = new Map((await this.ctx.store.tokenTimings()).map((r) => [r.credential, r]));
    for (const cred of this.ctx.config.credentials) {
      if (!cred.oauth) continue;
      try {
        // Inside the try: one credential's trouble never stops the tick for the others.
        const reason = this.dueReason(cred, rows.get(cred.name));
        if (!reason) continue;
        await this.fetch(cred, reason);
      } catch {
        /* recorded and logged in fetchLive; the old token keeps being served */
      }
    }
  }

  /** Why `cred` needs a new token now, if it does; `row` is its line of tokenTimings (none: no live certificate). */
  private dueReason(cred: CredentialConfig, row: TokenTiming | undefined): string | undefined {
    if (!row || !cred.oauth) return undefined;
    const now = this.ctx.clock.now().getTime();
    if (row.next_attempt_at && Date.parse(row.next_attempt_at) > now) return undefined; // backing off
    if (!row.expires_at) return "no token yet";
    if (row.cert_version !== row.version) return "the live certificate changed";
    if (Date.parse(row.refresh_at ?? row.expires_at) <= now) return "refresh due";
    // A stat, not a read: every second for every credential (the files are written atomically).
    if (!tokenFilesPresent(this.ctx.config.runtime_dir, cred.name)) return "token files missing";
    return undefined;
  }

  /**
   * `reuseOtherThan`: the token a caller saw (or none) when it decided to fetch. A valid token other
   * than that one, found once the lock is taken, was obtained meanwhile by another process (which
   * finished before this one took the lock): use it instead of asking the IDP again.
   */
  private async fetchLive(cred: CredentialConfig, why: string, reuseOtherThan?: { obtainedAt: string | null }): Promise<TokenJson> {
    const runtime = this.ctx.config.runtime_dir;
    const startedAt = Date.now();
    const startedClock = this.ctx.clock.now().getTime();
    for (;;) {
      const release = tryFetchLock(runtime, cred.name);
      if (release) {
        try {
          crashPoint("token-locked");
          const fresh = reuseOtherThan ? await this.current(cred) : undefined;
          if (fresh && fresh.obtained_at !== reuseOtherThan!.obtainedAt) return fresh;
          const live = await this.ctx.store.liveCertificate(cred.name);
          if (!live) throw new CreddError("STATE", `${cred.name} has no live certificate to get a token with`);
          return await this.fetchWith(cred, live.version, why);
        } finally {
          release();
        }
      }
      // Another process is asking right now: use its answer rather than asking again.
      await waitForFetchLock(runtime, cred.name, (this.opts.timeoutMs ?? 30_000) + 5_000);
      const t = readTokenFiles(runtime, cred.name);
      if (t && Date.parse(t.obtained_at) >= startedClock - 1_000 && Date.parse(t.expires_at) > this.ctx.clock.now().getTime()) return t;
      if (Date.now() - startedAt > 2 * (this.opts.timeoutMs ?? 30_000)) {
        throw new CreddError("NETWORK", `${cred.name}: another process is fetching a token and has not finished`);
      }
    }
  }

  /** Asks the IDP with certificate `version` and, on success, writes the token files and the metadata. */
  async fetchWith(cred: CredentialConfig, version: number, why: string): Promise<TokenJson> {
    const { ctx } = this;
    if (!cred.oauth) throw new CreddError("STATE", `${cred.name} has no oauth settings`);
    const started = ctx.clock.now();
    try {
      const resp = await (this.opts.client ?? httpsTokenClient)(ctx.config, cred, version, {
        timeoutMs: this.opts.timeoutMs ?? 30_000,
        now: () => ctx.clock.now(),
      });
      return await this.store(cred, version, resp, started);
    } catch (err) {
      await this.recordFailure(cred, err);
      throw err;
    } finally {
      ctx.log.debug({ credential: cred.name, why }, "token request done");
    }
  }

  /** Writes a token obtained with certificate `version` (also used by the registration probe). */
  async store(cred: CredentialConfig, version: number, resp: TokenResponse, obtainedAt: Date): Promise<TokenJson> {
    const { ctx } = this;
    const expires = new Date(obtainedAt.getTime() + resp.expires_in * 1000);
    const refresh = tokenRefreshAt(obtainedAt, resp.expires_in, (this.opts.random ?? Math.random)());
    const t: TokenJson = {
      token: resp.access_token,
      type: resp.token_type,
      scope: resp.scope ?? cred.oauth?.scope ?? "",
      obtained_at: obtainedAt.toISOString(),
      expires_at: expires.toISOString(),
    };
    writeTokenFiles(ctx.config.runtime_dir, cred.name, t);
    crashPoint("token-after-files");
    const cert = await ctx.store.certificateByVersion(cred.name, version);
    await ctx.store.recordTokenSuccess({
      credential: cred.name,
      token_type: t.type,
      scope: t.scope,
      obtained_at: t.obtained_at,
      expires_at: t.expires_at,
      refresh_at: refresh.toISOString(),
      cert_version: version,
      cert_sha256: cert?.sha256 ?? "",
    });
    crashPoint("token-after-db");
    ctx.log.info(
      {
        credential: cred.name,
        event: "token-obtained",
        certVersion: version,
        expiresAt: t.expires_at,
        refreshAt: refresh.toISOString(),
        scope: t.scope,
      },
      "token obtained",
    );
    return t;
  }

  private async recordFailure(cred: CredentialConfig, err: unknown): Promise<void> {
    const { ctx } = this;
    const now = ctx.clock.now();
    const msg = errorMessage(err);
    const prev = await ctx.store.getToken(cred.name);
    // A TokenError's Retry-After (read by shape: token-client.js may not be loaded when this runs).
    const ra = (err as { retryAfterMs?: unknown } | null)?.retryAfterMs;
    const retryAfter = typeof ra === "number" ? ra : undefined;
    const next = new Date(now.getTime() + tokenBackoffMs((prev?.failures ?? 0) + 1, retryAfter));
    const failures = await ctx.store.recordTokenFailure(cred.name, msg, now.toISOString(), next.toISOString());
    const expires = prev?.expires_at ? Date.parse(prev.expires_at) : 0;
    const lapse = expires - now.getTime() <= TOKEN_LAPSE_WARNING_MS;
    ctx.log.error(
      { credential: cred.name, event: "token-failed", failures, retryAt: next.toISOString(), tokenExpiresAt: prev?.expires_at ?? null, err: msg },
      lapse ? "token refresh failing and no valid token will be left within 10 minutes" : "token refresh failed; the current token is still served",
    );
  }
}
