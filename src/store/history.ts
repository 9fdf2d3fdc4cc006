// The hook_runs and ingests tables: what deploy hooks did and what became of each file taken in.
import { prep, type Db } from "./db.js";

export interface HookRunRow {
  id: number;
  credential: string;
  version: number;
  serial: string;
  argv_json: string;
  ok: 0 | 1;
  exit_code: number | null;
  signal: string | null;
  duration_ms: number;
  error: string | null;
  output: string;
  started_at: string;
}

export function recordHookRun(db: Db, r: Omit<HookRunRow, "id">): void {
  prep(db, 
    `INSERT INTO hook_runs (credential, version, serial, argv_json, ok, exit_code, signal, duration_ms, error, output, started_at)
     VALUES (@credential, @version, @serial, @argv_json, @ok, @exit_code, @signal, @duration_ms, @error, @output, @started_at)`,
  ).run(r);
}

/** The hook runs of the most recent deploy (all rows sharing the latest started_at batch). */
export function lastHookRuns(db: Db, credential: string): HookRunRow[] {
  const last = db
    .prepare("SELECT version, started_at FROM hook_runs WHERE credential = ? ORDER BY id DESC LIMIT 1")
    .get(credential) as { version: number; started_at: string } | undefined;
  if (!last) return [];
  return db
    .prepare("SELECT * FROM hook_runs WHERE credential = ? AND started_at = ? ORDER BY id")
    .all(credential, last.started_at) as HookRunRow[];
}

export interface IngestRow {
  at: string;
  file: string;
  credential: string | null;
  outcome: "installed" | "chain" | "already-live" | "refused";
  check_name: string | null;
  reason: string | null;
  serial: string | null;
  sha256: string | null;
}

export function recordIngest(db: Db, r: IngestRow): void {
  prep(db, 
    `INSERT INTO ingests (at, file, credential, outcome, check_name, reason, serial, sha256)
     VALUES (@at, @file, @credential, @outcome, @check_name, @reason, @serial, @sha256)`,
  ).run(r);
}

/**
 * The last refused file that says something is wrong. A certificate that was live before, taken in
 * again (check "previously-live"), is not: the person is told at once, and status stays quiet.
 */
export function lastRefusal(db: Db, credential: string): (IngestRow & { id: number }) | undefined {
  return db
    .prepare(
      `SELECT * FROM ingests WHERE credential = ? AND outcome = 'refused' AND COALESCE(check_name, '') <> 'previously-live'
       ORDER BY id DESC LIMIT 1`,
    )
    .get(credential) as (IngestRow & { id: number }) | undefined;
}

/** The last refused file, if it came after the live certificate went live (else it is old news). */
export function refusalSinceLive(
  db: Db,
  credential: string,
  live: { went_live_at: string | null; installed_at: string } | undefined,
): (IngestRow & { id: number }) | undefined {
  const r = lastRefusal(db, credential);
  return r && (!live || r.at > (live.went_live_at ?? live.installed_at)) ? r : undefined;
}

/** "argv: what went wrong" for each failed hook run, for status and alerts. */
export function failedHookLines(runs: HookRunRow[]): string[] {
  return runs
    .filter((h) => !h.ok)
    .map((h) => `${(JSON.parse(h.argv_json) as string[]).join(" ")}: ${h.error ?? `exit ${h.exit_code ?? h.signal}`}`);
}
