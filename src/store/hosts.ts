// The hosts table: every host running `credd run` on this state, its role and last heartbeat
// (docs/shared-store.md). One row per host name, replaced at each heartbeat.
import { prep, type Db } from "./db.js";

export interface HostRow {
  name: string;
  pid: number;
  role: "leader" | "follower";
  version: string;
  started_at: string;
  last_heartbeat_at: string;
}

export function heartbeatHost(db: Db, h: HostRow): void {
  prep(
    db,
    `INSERT INTO hosts (name, pid, role, version, started_at, last_heartbeat_at) VALUES (@name, @pid, @role, @version, @started_at, @last_heartbeat_at)
     ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, role = excluded.role, version = excluded.version,
       started_at = excluded.started_at, last_heartbeat_at = excluded.last_heartbeat_at`,
  ).run(h);
}

export function listHosts(db: Db): HostRow[] {
  // A database opened read-only (status) that no `credd run` of this version has migrated yet.
  if (!prep(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'hosts'").get()) return [];
  return prep(db, "SELECT name, pid, role, version, started_at, last_heartbeat_at FROM hosts ORDER BY name").all() as HostRow[];
}

/** One version's files as the store keeps them (PostgreSQL only; on SQLite archive/ is the only copy). */
export interface ArchiveParts {
  /** The private key, PEM: sealed by the store, never stored in clear. */
  key?: string;
  csr?: string;
  cert?: string;
  chain?: string;
}

/** SQLite: the archive lives in state_dir/credentials/NAME/archive/ alone; nothing to store. */
export function putArchive(_db: Db, _credential: string, _version: number, _parts: ArchiveParts): void {}

/** SQLite: nothing stored (archive/ is the truth). */
export function getArchive(_db: Db, _credential: string, _version: number): ArchiveParts | undefined {
  return undefined;
}
