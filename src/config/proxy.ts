// `credentials[].proxy`: where the local plain-HTTP listener of a credential listens. Loopback or a
// unix socket unless allow_remote says otherwise: the listener hands out the credential's authority.
import { isAbsolute } from "node:path";
import { isIP } from "node:net";
import { bool, get, int, isUnset, mapping, str } from "./checks.js";
import { child, type At, type Issues } from "./issues.js";
import type { ProxyConfig } from "./types.js";

export const PROXY_DEFAULT_TIMEOUT_MS = 30_000;
export const PROXY_DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * A parsed listen address: a TCP host and port, a unix socket path, or a socket systemd opened and
 * handed over (socket activation), named by the socket unit's FileDescriptorName=.
 */
export type ListenAddress = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string } | { kind: "systemd"; name: string };

export const SYSTEMD_PREFIX = "systemd:";

/**
 * A FileDescriptorName= systemd takes (sd_listen_fds(3), systemd.socket(5)): 1 to 255 printable
 * ASCII characters, no ":" (LISTEN_FDNAMES separates names with it); no space here either.
 */
const FDNAME = /^[\x21-\x39\x3b-\x7e]{1,255}$/;

/**
 * Parses (port 0: any free port, for tests) "127.0.0.1:8301", "[::1]:8301", "localhost:8301",
 * "/run/credd/fleet.sock" or "systemd:fleet-prod"; a problem as a string.
 */
export function parseListen(s: string): ListenAddress | string {
  if (s.startsWith(SYSTEMD_PREFIX)) {
    const name = s.slice(SYSTEMD_PREFIX.length);
    return FDNAME.test(name)
      ? { kind: "systemd", name }
      : `is "${s}": after "systemd:" comes the socket unit's FileDescriptorName= (1 to 255 printable characters, no ":" or space)`;
  }
  if (s.startsWith("/")) return isAbsolute(s) ? { kind: "unix", path: s } : "must be an absolute path";
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) return `must be HOST:PORT (e.g. 127.0.0.1:8301), an absolute unix socket path or systemd:NAME, got "${s}"`;
  const host = m[1] ?? m[2] ?? "";
  const port = Number(m[3]);
  if (port > 65535) return `has port ${m[3]}, which is not from 1 to 65535`;
  if (m[1] !== undefined && isIP(host) !== 6) return `"[${host}]" is not an IPv6 address`;
  return { kind: "tcp", host, port };
}

/** True for 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

export function checkProxy(ix: Issues, at: At, v: unknown, api: unknown): ProxyConfig | undefined {
  const example = 'e.g. proxy: { listen: "127.0.0.1:8301" }';
  const m = mapping(ix, at, v, { known: ["listen", "allow_remote", "timeout_ms", "max_body_bytes"] }, example);
  if (!m) return undefined;
  const before = ix.list.length;
  if (isUnset(api))
    ix.add(
      at,
      "needs api.base_url: the proxy forwards to it",
      "add api: { base_url: https://api-cert.groupe-psa.com/connectedcar/v3 }, or remove proxy",
    );
  const listenAt = child(at, "listen");
  const raw = get(m, "listen");
  let listen: string | undefined;
  if (isUnset(raw))
    ix.add(listenAt, "is missing", 'listen: "127.0.0.1:8301" (or a unix socket path such as /run/credd/fleet-prod.sock, or "systemd:fleet-prod")');
  else listen = str(ix, listenAt, raw, 'e.g. listen: "127.0.0.1:8301"');
  const allowRemote = isUnset(get(m, "allow_remote")) ? false : bool(ix, child(at, "allow_remote"), get(m, "allow_remote"));
  const timeout = isUnset(get(m, "timeout_ms"))
    ? PROXY_DEFAULT_TIMEOUT_MS
    : int(ix, child(at, "timeout_ms"), get(m, "timeout_ms"), 100, 600_000, "milliseconds");
  const maxBody = isUnset(get(m, "max_body_bytes"))
    ? PROXY_DEFAULT_MAX_BODY_BYTES
    : int(ix, child(at, "max_body_bytes"), get(m, "max_body_bytes"), 0, 1024 * 1024 * 1024, "bytes");
  if (listen !== undefined) {
    const parsed = parseListen(listen);
    if (typeof parsed === "string")
      ix.add(
        listenAt,
        parsed,
        parsed.startsWith('is "systemd:')
          ? 'e.g. listen: "systemd:fleet-prod" with FileDescriptorName=fleet-prod in the socket unit (docs/proxy.md)'
          : 'listen: "127.0.0.1:8301", listen: /run/credd/NAME.sock or listen: "systemd:NAME"',
      );
    else if (parsed.kind === "tcp" && parsed.port === 0)
      ix.add(listenAt, "has port 0, which is not from 1 to 65535: applications need a fixed port", 'e.g. listen: "127.0.0.1:8301"');
    else if (parsed.kind === "tcp" && !isLoopback(parsed.host) && allowRemote !== true) {
      ix.add(
        listenAt,
        `is "${listen}", not a loopback address: anyone who can reach it calls the API as this credential`,
        `listen on 127.0.0.1:${parsed.port} or a unix socket; or, if other hosts must connect and the network is trusted, add allow_remote: true`,
      );
    }
  }
  if (ix.list.length > before || listen === undefined || allowRemote === undefined || timeout === undefined || maxBody === undefined)
    return undefined;
  return { listen, allow_remote: allowRemote, timeout_ms: timeout, max_body_bytes: maxBody };
}
