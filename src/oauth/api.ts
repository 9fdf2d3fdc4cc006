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
  const clientId = cred.client_id ?? cred.oauth?.client_id;
  if (clientId) u.searchParams.set("client_id", clientId);
  return u.toString();
}

function isInvalidToken(r: HttpResponse): boolean {
  if (r.status !== 401) return false;
  const www = String(r.headers["www-authenticate"] ?? "");
  return /invalid_token/.test(www) || /"error"\s*:\s*"invalid_token"/.test(r.body);
}

export async function callApi(cred: CredentialConfig, tls: TlsMaterial, auth: ApiAuth, opts: { timeoutMs: number; path?: string }): Promise<ApiCallResult> {
  const url = apiUrl(cred, opts.path);
  const once = async (fresh: boolean) => {
    const headers: Record<string, string> = { Accept: "application/hal+json" };
    if (auth.bearer) headers.Authorization = `Bearer ${await auth.bearer(fresh)}`;
    else if (auth.basic) headers.Authorization = `Basic ${Buffer.from(`${auth.basic.user}:${auth.basic.password}`).toString("base64")}`;
    return httpsRequest(url, { method: "GET", headers, tls, timeoutMs: opts.timeoutMs });
  };
  let response = await once(false);
  let retried = false;
  if (auth.bearer && isInvalidToken(response)) {
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
