// What crosses the proxy and what does not: hop-by-hop headers (RFC 9110 7.6.1) stop here, the
// application's Authorization is never forwarded, and logs see query keys, never their values.

/** Headers that describe one connection, not the message (RFC 9110 7.6.1, plus the usual proxy ones). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Never passed on upstream: credd sets them itself (Authorization, Host) or they would leak the local side. */
const REQUEST_DROPPED = new Set(["authorization", "host", "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip"]);

/** The header names a Connection header lists: hop-by-hop for this message too. */
function connectionListed(rawHeaders: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== "connection") continue;
    for (const t of rawHeaders[i + 1]!.split(",")) {
      const name = t.trim().toLowerCase();
      if (name) out.add(name);
    }
  }
  return out;
}

/**
 * The end-to-end headers of a message, as [name, value] pairs in their order (repeated names kept).
 * `request`: also drops what credd sets itself.
 */
export function endToEnd(rawHeaders: readonly string[], request: boolean): [string, string][] {
  const listed = connectionListed(rawHeaders);
  const out: [string, string][] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower) || (request && REQUEST_DROPPED.has(lower))) continue;
    out.push([name, rawHeaders[i + 1]!]);
  }
  return out;
}

/** "/connectedcar/v3/fleets?limit=&client_id=" from "/connectedcar/v3/fleets?limit=10&client_id=x": what a log may show. */
export function loggablePath(target: string): string {
  const q = target.indexOf("?");
  if (q < 0) return target;
  const keys = [...new URLSearchParams(target.slice(q + 1)).keys()];
  return `${target.slice(0, q)}?${keys.map((k) => `${encodeURIComponent(k)}=`).join("&")}`;
}

/** Methods a 401 invalid_token may replay once with a new token (RFC 9110 9.2.2: idempotent, and without a body here). */
export function replayable(method: string): boolean {
  return method === "GET" || method === "HEAD" || method === "OPTIONS";
}
