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
  prep(
    db,
    `INSERT INTO hook_runs (credential, version, serial, argv_json, ok, exit_code, signal, duration_ms, error, output, started_at)
     VALUES (@credential, @version, @serial, @argv_json, @ok, @exit_code, @signal, @duration_ms, @error, @output, @started_at)`,
  ).run(r);
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
  prep(
    db,
    `INSERT INTO ingests (at, file, credential, outcome, check_name, reason, serial, sha256)
     VALUES (@at, @file, @credential, @outcome, @check_name, @reason, @serial, @sha256)`,
  ).run(r);
}

/** The last refused file that matched no credential, if any. */
export function lastUnmatchedRefusal(db: Db): (IngestRow & { id: number }) | undefined {
  return prep(db, "SELECT * FROM ingests WHERE credential IS NULL AND outcome = 'refused' ORDER BY id DESC LIMIT 1").get() as
    | (IngestRow & { id: number })
    | undefined;
}

/** `r` (a credential's last refusal) if it came after the live certificate went live. */
export function refusalSince<R extends { at: string }>(
  r: R | undefined,
  live: { went_live_at: string | null; installed_at: string } | undefined,
): R | undefined {
  return r && (!live || r.at > (live.went_live_at ?? live.installed_at)) ? r : undefined;
}

/** "argv: what went wrong" for each failed hook run, for status and alerts. */
export function failedHookLines(runs: HookRunRow[]): string[] {
  return runs.filter((h) => !h.ok).map((h) => `${(JSON.parse(h.argv_json) as string[]).join(" ")}: ${h.error ?? `exit ${h.exit_code ?? h.signal}`}`);
}
