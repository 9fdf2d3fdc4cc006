// One call to the Stellantis API with the client certificate and Bearer or Basic auth; a 401 invalid_token
// right after a rotation means: get a new token once, then retry once.
import type { CredentialConfig } from "../config/types.js";
import { CreddError } from "../errors.js";
import { describeErrorBody, type ApiErrorInfo } from "./errors.js";
import { httpsRequest, type HttpResponse, type TlsMaterial } from "./http.js";

export interface ApiCallResult {
  url: string;
  response: HttpResponse;
  /** Present when the status is not 2xx. */
  error?: ApiErrorInfo;
  /** True when the first answer was 401 invalid_token and a new token was fetched for a second try. */
  retriedWithNewToken: boolean;
}

export interface ApiAuth {
  /** Bearer: the current token, or a fresh one when `fresh` is true. */
  bearer?: (fresh: boolean) => Promise<string>;
  /** Basic: user and password (from password_file). */
  basic?: { user: string; password: string };
}

export function apiUrl(cred: CredentialConfig, path?: string): string {
  if (!cred.api) throw new CreddError("CONFIG", `${cred.name} has no api settings (api.base_url, api.probe_path)`);
  const u = new URL(cred.api.base_url + (path ?? cred.api.probe_path));
  withClientId(cred, u);
  return u.toString();
}

/** Adds the client_id the API wants (a query parameter, as the Fleet Owner v2/v3 pages say); replaces one already there. */
export function withClientId(cred: CredentialConfig, u: URL): URL {
  const clientId = cred.client_id ?? cred.oauth?.client_id;
  if (clientId) u.searchParams.set("client_id", clientId);
  return u;
}

/** The Authorization header value for `auth` (a fresh Bearer token when `fresh`); undefined when there is no auth. */
export async function authorizationFor(auth: ApiAuth, fresh: boolean): Promise<string | undefined> {
  if (auth.bearer) return `Bearer ${await auth.bearer(fresh)}`;
  if (auth.basic) return `Basic ${Buffer.from(`${auth.basic.user}:${auth.basic.password}`).toString("base64")}`;
  return undefined;
}

/** A 401 whose WWW-Authenticate header (or JSON body, when given) says invalid_token. */
export function isInvalidToken(status: number, wwwAuthenticate: unknown, body = ""): boolean {
  if (status !== 401) return false;
  return /invalid_token/.test(String(wwwAuthenticate ?? "")) || /"error"\s*:\s*"invalid_token"/.test(body);
}

export async function callApi(
  cred: CredentialConfig,
  tls: TlsMaterial,
  auth: ApiAuth,
  opts: { timeoutMs: number; path?: string },
): Promise<ApiCallResult> {
  const url = apiUrl(cred, opts.path);
  const once = async (fresh: boolean) => {
    const headers: Record<string, string> = { Accept: "application/hal+json" };
    const authorization = await authorizationFor(auth, fresh);
    if (authorization) headers.Authorization = authorization;
    return httpsRequest(url, { method: "GET", headers, tls, timeoutMs: opts.timeoutMs });
  };
  let response = await once(false);
  let retried = false;
  if (auth.bearer && isInvalidToken(response.status, response.headers["www-authenticate"], response.body)) {
    retried = true;
    response = await once(true);
  }
  const ok = response.status >= 200 && response.status < 300;
  const ct = response.headers["content-type"];
  return {
    url,
    response,
    retriedWithNewToken: retried,
    ...(ok ? {} : { error: describeErrorBody(response.status, response.body, typeof ct === "string" ? ct : undefined) }),
  };
}
