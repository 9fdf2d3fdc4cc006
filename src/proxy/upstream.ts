// The keep-alive connections to the API, one pool per certificate version: when live/ switches, new
// requests go out on a pool made with the new certificate at once, and the old pool is closed once
// its last request in flight has finished.
import https from "node:https";
import tls from "node:tls";
import type { TlsMaterial } from "../oauth/http.js";
import { tlsOptions } from "../oauth/http.js";

export interface LiveTls {
  /** The archive version of the live certificate. */
  version: number;
  material: TlsMaterial;
}

interface Pool {
  version: number;
  agent: https.Agent;
  inflight: number;
  retired: boolean;
}

export interface PoolStats {
  /** The certificate version new requests use (null before the first request). */
  version: number | null;
  /** Pools of older versions still finishing requests. */
  draining: number;
}

export class UpstreamPools {
  private current: Pool | undefined;
  private readonly draining = new Set<Pool>();

  constructor(
    private readonly host: string,
    private readonly maxSockets = 256,
  ) {}

  /** The pool for `live`, made (and the previous one retired) when the version changed. */
  acquire(live: LiveTls): { agent: https.Agent; release: () => void } {
    let pool = this.current;
    if (!pool || pool.version !== live.version) {
      if (pool) this.retire(pool);
      pool = {
        version: live.version,
        agent: this.agentFor(live),
        inflight: 0,
        retired: false,
      };
      this.current = pool;
    }
    const p = pool;
    p.inflight++;
    let released = false;
    return {
      agent: p.agent,
      release: () => {
        if (released) return;
        released = true;
        p.inflight--;
        if (p.retired && p.inflight === 0) this.close(p);
      },
    };
  }

  /**
   * One secure context per version, made once: with cert/key/ca as agent options, Node would build
   * the pool's key from the whole CA list (system roots included) on every request, some 2 ms each.
   */
  private agentFor(live: LiveTls): https.Agent {
    const { cert, key, ca, minVersion, servername, rejectUnauthorized } = tlsOptions(this.host, live.material);
    return new https.Agent({
      keepAlive: true,
      maxSockets: this.maxSockets,
      maxFreeSockets: this.maxSockets,
      scheduling: "lifo",
      secureContext: tls.createSecureContext({ cert, key, ca, minVersion }),
      rejectUnauthorized,
      ...(servername ? { servername } : {}),
    });
  }

  stats(): PoolStats {
    return { version: this.current?.version ?? null, draining: this.draining.size };
  }

  /**
   * The next request makes a new pool even for the same version (a reload may have changed the CA
   * file or the key's passphrase); the current one drains as after a rotation.
   */
  renew(): void {
    if (this.current) this.retire(this.current);
    this.current = undefined;
  }

  /** Closes every pool now (the daemon stops after its listeners have finished). */
  destroy(): void {
    for (const p of [...this.draining]) this.close(p);
    this.current?.agent.destroy();
    this.current = undefined;
  }

  private retire(p: Pool): void {
    p.retired = true;
    if (p.inflight === 0) p.agent.destroy();
    else this.draining.add(p);
  }

  private close(p: Pool): void {
    this.draining.delete(p);
    p.agent.destroy();
  }
}
