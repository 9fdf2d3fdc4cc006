// The OAuth2 client-credentials request of the Stellantis seed (step 6) over mutual TLS
// (RFC 8705 tls_client_auth): one POST to token_url, the answer checked, every failure a
// TokenError saying whether it is worth retrying and what the IDP said.
import type { OAuthConfig } from "../config/types.js";
import { CreddError } from "../errors.js";
import { describeErrorBody, type ApiErrorInfo } from "./errors.js";
import { httpsRequest, type HttpResponse, type TlsMaterial } from "./http.js";

export interface TokenResponse {
  access_token: string;
  /** Always "Bearer" (the IDP's spelling is normalised). */
  token_type: string;
  /** Seconds. */
  expires_in: number;
  scope?: string;
}

export interface TokenErrorDetails {
  status?: number;
  oauthError?: string;
  retryAfterMs?: number;
  info?: ApiErrorInfo;
  retryable: boolean;
}

/**
 * A token request that did not give a token. `code` is "NETWORK" for transport failures and
 * answers worth retrying (5xx, 429), "REFUSED" when the IDP said no (400/401 invalid_client...).
 */
export class TokenError extends CreddError {
  readonly status?: number;
  /** e.g. "invalid_client" */
  readonly oauthError?: string;
  /** From Retry-After on 429/503, relative to the `now` given to requestToken. */
  readonly retryAfterMs?: number;
  readonly info?: ApiErrorInfo;
  readonly retryable: boolean;

  constructor(code: "NETWORK" | "REFUSED", message: string, details: TokenErrorDetails, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "TokenError";
    if (details.status !== undefined) this.status = details.status;
    if (details.oauthError !== undefined) this.oauthError = details.oauthError;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
    if (details.info !== undefined) this.info = details.info;
    this.retryable = details.retryable;
  }
}

export interface RequestTokenOptions {
  /** One deadline for the whole exchange. */
  timeoutMs: number;
  /** The clock for Retry-After dates. */
  now?: () => Date;
  signal?: AbortSignal;
}

export async function requestToken(oauth: OAuthConfig, tls: TlsMaterial, opts: RequestTokenOptions): Promise<TokenResponse> {
  const where = endpointName(oauth.token_url);
  const body = new URLSearchParams({
    client_id: oauth.client_id,
    grant_type: "client_credentials",
    scope: oauth.scope,
  }).toString();

  let res: HttpResponse;
  try {
    res = await httpsRequest(oauth.token_url, {
      method: "POST",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        Accept: "application/json",
      },
      body,
      tls,
      timeoutMs: opts.timeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    if (err instanceof CreddError && err.code !== "NETWORK") throw err; // e.g. CONFIG: not an https URL
    const msg = err instanceof Error ? err.message : String(err);
    throw new TokenError("NETWORK", `token request failed: ${msg}`, { retryable: true }, { cause: err });
  }

  if (res.status === 200) return parseTokenBody(res, where);
  throw errorFromResponse(res, oauth, where, (opts.now ?? (() => new Date()))());
}

/** Checks a 200 answer; never puts the token itself in a message. */
function parseTokenBody(res: HttpResponse, where: string): TokenResponse {
  const contentType = header(res, "content-type");
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body);
  } catch {
    // An HTML page with 200 is usually a proxy or a wrong URL, sometimes a passing glitch.
    const info = describeErrorBody(200, res.body, contentType);
    throw new TokenError(
      "NETWORK",
      `token request to ${where}: HTTP 200 but the answer is not JSON (${info.message}); is oauth.token_url the token endpoint?`,
      { status: 200, info, retryable: true },
    );
  }
  const j = (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? parsed : {}) as Record<string, unknown>;
  const problems: string[] = [];
  const token = j.access_token;
  if (typeof token !== "string" || token === "") problems.push("no access_token");
  const type = j.token_type;
  if (typeof type !== "string") problems.push("no token_type");
  else if (type.toLowerCase() !== "bearer") problems.push(`token_type ${JSON.stringify(type.slice(0, 40))} is not Bearer`);
  const expiresIn = toSeconds(j.expires_in);
  if (expiresIn === undefined) {
    problems.push(
      j.expires_in === undefined
        ? "no expires_in"
        : `expires_in ${JSON.stringify(String(j.expires_in).slice(0, 40))} is not a positive number of seconds`,
    );
  }
  if (problems.length > 0 || typeof token !== "string" || expiresIn === undefined) {
    throw new TokenError("REFUSED", `token request to ${where}: HTTP 200 but not a usable token: ${problems.join(", ")}`, {
      status: 200,
      retryable: false,
    });
  }
  const out: TokenResponse = { access_token: token, token_type: "Bearer", expires_in: expiresIn };
  if (typeof j.scope === "string") out.scope = j.scope;
  return out;
}

function toSeconds(v: unknown): number | undefined {
  const n = typeof v === "number" ? v : typeof v === "string" && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : NaN;
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

function errorFromResponse(res: HttpResponse, oauth: OAuthConfig, where: string, now: Date): TokenError {
  const status = res.status;
  const info = describeErrorBody(status, res.body, header(res, "content-type"));
  const oauthError = info.shape === "oauth" ? info.code : undefined;
  const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(header(res, "retry-after"), now) : undefined;
  const retryable = status >= 500 || status === 429 || status === 408;
  const details: TokenErrorDetails = { status, info, retryable };
  if (oauthError !== undefined) details.oauthError = oauthError;
  if (retryAfterMs !== undefined) details.retryAfterMs = retryAfterMs;

  let hint = "";
  if (status === 429) hint = `rate limited${retryAfterMs !== undefined ? `; retry after ${Math.ceil(retryAfterMs / 1000)} s` : ""}`;
  else if (retryable)
    hint = `a failure on the IDP side${retryAfterMs !== undefined ? `; retry after ${Math.ceil(retryAfterMs / 1000)} s` : ", worth retrying"}`;
  else if (status >= 300 && status < 400) {
    const location = header(res, "location");
    hint = `redirected${location ? ` to ${location.slice(0, 200)}` : ""}: set oauth.token_url to the token endpoint itself`;
  } else if (status === 404 || status === 405) hint = "check oauth.token_url";
  else if (oauthError) hint = OAUTH_HINTS[oauthError]?.(oauth) ?? "";

  const verb = retryable ? "failed" : "refused";
  const message = `token request to ${where} ${verb}: ${info.message}${hint ? ` (${hint})` : ""}`;
  return new TokenError(retryable ? "NETWORK" : "REFUSED", message, details);
}

const OAUTH_HINTS: Record<string, (oauth: OAuthConfig) => string> = {
  invalid_client: (o) =>
    `the IDP does not accept this client certificate for client_id ${JSON.stringify(o.client_id)}: check oauth.client_id, and that Stellantis has bound this certificate to it (seed step 5: send them the certificate)`,
  unauthorized_client: (o) => `client_id ${JSON.stringify(o.client_id)} may not use the client_credentials grant: ask the Stellantis contact`,
  invalid_scope: (o) => `check oauth.scope (${JSON.stringify(o.scope)}) against the one Stellantis gave`,
  invalid_request: () => "the IDP did not accept the request's form; check oauth.client_id and oauth.scope",
  unsupported_grant_type: () => "the IDP does not offer client_credentials here; check oauth.token_url",
};

/** Retry-After as delay-seconds or an HTTP date, in ms from `now` (never negative). */
export function parseRetryAfter(value: string | undefined, now: Date): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // An HTTP-date ("Thu, 01 May 2031 10:00:30 GMT") has a day name; Date.parse takes too much else ("-5").
  if (!/^[a-z]{3,9},?\s/i.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now.getTime());
}

function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function endpointName(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname}`;
  } catch {
    return url;
  }
}
