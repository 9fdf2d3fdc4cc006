// What a credential's proxy listener is doing, as `runtime_dir/NAME/proxy.json`: written by the
// daemon (atomically, on change, at most every few seconds), read by `credd status` in another process.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../files/atomic.js";
import type { ProxyStats } from "./server.js";

export interface ProxyStateFile extends ProxyStats {
  /** When the daemon wrote this. */
  updated_at: string;
}

export function proxyStatePath(runtimeDir: string, credential: string): string {
  return join(runtimeDir, credential, "proxy.json");
}

export function writeProxyState(runtimeDir: string, credential: string, stats: ProxyStats, now: Date): void {
  const body: ProxyStateFile = { ...stats, updated_at: now.toISOString() };
  writeFileAtomic(proxyStatePath(runtimeDir, credential), `${JSON.stringify(body)}\n`, 0o640);
}

/** The last state the daemon wrote, or undefined (no daemon has run the proxy, or the file is unreadable). */
export function readProxyState(runtimeDir: string, credential: string): ProxyStateFile | undefined {
  try {
    const v = JSON.parse(readFileSync(proxyStatePath(runtimeDir, credential), "utf8")) as ProxyStateFile;
    return typeof v === "object" && v !== null && typeof v.requests === "number" ? v : undefined;
  } catch {
    return undefined;
  }
}
