// The answers credd itself gives an application: JSON with a stable `error` code and a message, and
// an HTTP status that says whose fault it is (400/408/413 the request, 503 no credential yet, 502/504 upstream).

export type ProxyErrorCode =
  | "bad_request"
  | "request_timeout"
  | "body_too_large"
  | "no_credential"
  | "no_token"
  | "store_unavailable"
  | "certificate_unavailable"
  | "proxy_error"
  | "upstream_unreachable"
  | "upstream_tls"
  | "upstream_timeout"
  | "upstream_reset";

export const PROXY_ERROR_STATUS: Readonly<Record<ProxyErrorCode, number>> = {
  bad_request: 400,
  request_timeout: 408,
  body_too_large: 413,
  no_credential: 503,
  no_token: 503,
  store_unavailable: 503,
  certificate_unavailable: 503,
  proxy_error: 503,
  upstream_unreachable: 502,
  upstream_tls: 502,
  upstream_timeout: 504,
  upstream_reset: 502,
};

/** An error whose answer is known: `live()` (listeners.ts) throws one when the store or archive/ cannot be read. */
export class ProxyUnavailable extends Error {
  constructor(
    readonly code: ProxyErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function errorBody(code: ProxyErrorCode, message: string): string {
  return `${JSON.stringify({ error: code, message })}\n`;
}

/** What went wrong talking to the upstream, from a Node socket/TLS error (its code, never its text). */
export function upstreamErrorCode(err: unknown, timedOut: boolean): ProxyErrorCode {
  if (timedOut) return "upstream_timeout";
  const code = String((err as { code?: unknown } | null)?.code ?? "");
  if (/^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_|SELF_SIGNED|ERR_OSSL|HOSTNAME_MISMATCH)/.test(code) || code === "ERR_TLS_CERT_ALTNAME_INVALID")
    return "upstream_tls";
  if (code === "ECONNRESET" || code === "EPIPE" || code === "UND_ERR_SOCKET") return "upstream_reset";
  if (code === "ETIMEDOUT") return "upstream_timeout";
  return "upstream_unreachable";
}

/** A plain-words message for each upstream failure, naming the host (never a header or a query value). */
export function upstreamMessage(code: ProxyErrorCode, where: string, errCode: string): string {
  const tail = errCode ? ` (${errCode})` : "";
  switch (code) {
    case "upstream_timeout":
      return `the API at ${where} did not answer in time${tail}`;
    case "upstream_tls":
      return `the TLS handshake with ${where} failed${tail}: check the live certificate and stellantis.ca_file (credd doctor)`;
    case "upstream_reset":
      return `the connection to ${where} was cut before the answer${tail}`;
    default:
      return `cannot reach the API at ${where}${tail}`;
  }
}
