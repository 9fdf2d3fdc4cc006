// `credd status [NAME] [--json]`: where every credential stands; exits 0/1/2/3 like a monitoring plugin.
import { parseArgs } from "node:util";
import { clockFromEnv } from "../clock.js";
import { loadConfig } from "../config/load.js";
import { buildStatus, type CredentialStatus, type StatusView } from "../core/status.js";
import { CreddError, errorMessage } from "../errors.js";
import { sqliteCodeOf } from "../store/db-errors.js";
import { openDb } from "../store/db.js";
import { existsSync, statSync } from "node:fs";
import { dbPath, type Db } from "../store/db.js";
import { requireCredential } from "../config/lookup.js";
import type { Globals, Io } from "./io.js";

export const STATUS_HELP = `usage: credd status [NAME] [--json]

Shows every credential (or just NAME): the live certificate's serial, expiry
and days left, the renewal in progress with its reason and age, when the CSR
was sent and reminded, queued emails, the last error and when the daemon last
checked. Reads the database only; safe to run beside \`credd run\`.

  --json   machine-readable output (its shape: docs/status.md)

exit (monitoring-plugin convention):
  0 OK        every credential is fine
  1 WARNING   a renewal is pending or overdue, an email is failing, a check
              failed, or the daemon has not checked for two schedule periods
  2 CRITICAL  a certificate expires in under 7 days or has expired
  3 UNKNOWN   the config or the database cannot be read`;

export async function cmdStatus(argv: string[], g: Globals, io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
  });
  if (values.help) {
    io.out(STATUS_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new CreddError("USAGE", `status takes at most one NAME\n\n${STATUS_HELP}`);
  let view: StatusView;
  try {
    const config = loadConfig(g.configPath);
    if (positionals[0]) requireCredential(config, positionals[0]);
    const fresh = !existsSync(dbPath(config.state_dir));
    // A fresh install has no database yet: open it writable once so its schema exists.
    const db = fresh ? openDb(config.state_dir) : openReadonly(config.state_dir);
    try {
      view = buildStatus({ config, db, clock: clockFromEnv() }, positionals[0]);
    } finally {
      db.close();
    }
  } catch (err) {
    const msg = errorMessage(err);
    if (values.json) io.out(JSON.stringify({ version: 1, status: "unknown", exit_code: 3, error: msg }, null, 2));
    else io.err(`credd status: UNKNOWN: ${msg}`);
    return 3;
  }
  if (values.json) io.out(JSON.stringify(view, null, 2));
  else {
    // One write, not one per line: 1,000 credentials are some 8,000 lines.
    const lines: string[] = [];
    printView(view, { out: (l) => lines.push(l), err: io.err });
    io.out(lines.join("\n"));
  }
  return view.exit_code;
}

/**
 * Read-only, also for a user who may read the state but not write its folder (group credd): with
 * no credd process holding the WAL database open SQLite would have to create its -shm file, so
 * such a reader gets an in-memory copy instead; the file is complete then (no -wal left behind).
 */
function openReadonly(stateDir: string): Db {
  const db = openDb(stateDir, { readonly: true });
  try {
    db.prepare("SELECT count(*) FROM sqlite_master").get();
    return db;
  } catch (err) {
    db.close();
    const code = sqliteCodeOf(err);
    const wal = `${dbPath(stateDir)}-wal`;
    const walEmpty = !existsSync(wal) || statSync(wal).size === 0;
    if (/^SQLITE_(READONLY|CANTOPEN)/.test(code) && walEmpty) return openDb(stateDir, { readonly: true, snapshot: true });
    throw new CreddError(
      "IO",
      `cannot read the database in ${stateDir}: ${errorMessage(err)} (run status as credd's user, e.g. sudo -u credd credd status, or while credd run is running)`,
      { cause: err },
    );
  }
}

const up = (s: string) => s.toUpperCase();
/** "2026-11-25T10:03:07.123Z" as "2026-11-25 10:03 UTC" (sliced: status prints thousands of them). */
const day = (iso: string | null): string => {
  if (!iso) return "never";
  if (iso.length === 24 && iso[10] === "T" && iso[23] === "Z") return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
  return iso.replace("T", " ").replace(/:\d\d\.\d{3}Z$/, " UTC");
};

function printView(v: StatusView, io: Io): void {
  io.out(`credd status ${up(v.status)}  (${day(v.generated_at)}, config ${v.config})`);
  io.out(
    `daemon: last check ${day(v.daemon.last_check_at)}${v.daemon.stale ? " (STALE: is credd run running?)" : ""}; ` +
      `outbox: ${v.outbox.queued} queued${v.outbox.last_error ? `, last error: ${v.outbox.last_error}` : ""}`,
  );
  for (const a of v.alerts.filter((x) => x.credential === null)) {
    io.out(`alert: ${up(a.severity)} ${a.title} (since ${day(a.opened_at)}, last sent ${day(a.last_sent_at)})`);
  }
  for (const c of v.credentials) printCredential(c, io);
}

function printCredential(c: CredentialStatus, io: Io): void {
  io.out("");
  io.out(`${c.name} (${c.mzp})  ${up(c.status)}`);
  const row = (k: string, val: string) => io.out(`  ${k.padEnd(12)}${val}`);
  if (c.certificate) {
    const x = c.certificate;
    row("certificate", `serial ${x.serial}, expires ${day(x.not_after)} (${x.days_left} days left), ${x.source}`);
  } else row("certificate", "none");
  if (c.renewal) {
    const r = c.renewal;
    row("renewal", `#${r.id} ${r.kind} ${r.awaiting_registration ? "AWAITING IDP REGISTRATION" : r.state} since ${day(r.since)}: ${r.reason}`);
    if (r.awaiting_registration) {
      row("registration", `certificate emailed ${day(r.registration_mailed_at)}, ${r.probe_attempts} probe(s), next ${day(r.next_probe_at)}${r.last_probe_error ? `: ${r.last_probe_error}` : ""}`);
    }
    row("csr sent", `${day(r.csr_sent_at)}${r.remind_count ? `, reminded ${r.remind_count}x (last ${day(r.reminded_at)})` : ""}`);
  } else row("renewal", c.next_renewal_at ? `none; due ${day(c.next_renewal_at)}` : "none");
  row("next step", c.next_step.reason);
  const t = c.token;
  row("token", t.expires_at !== undefined ? `${t.state}${t.expires_at ? `, expires ${day(t.expires_at)}, refresh ${day(t.refresh_at ?? null)}` : ""}${t.failures ? `, ${t.failures} failure(s), retry ${day(t.next_attempt_at ?? null)}: ${t.last_error}` : ""}` : t.state);
  if (c.last_hook) {
    const h = c.last_hook;
    row("deploy", `${h.ok ? "ok" : "FAILED"} at ${day(h.at)} for ${h.serial}: ` + h.runs.map((r) => `${r.argv.join(" ")} → ${r.ok ? "ok" : (r.error ?? `exit ${r.exit_code}`)} (${r.duration_ms} ms)`).join("; "));
  }
  if (c.last_refusal) row("refused", `${c.last_refusal.file} at ${day(c.last_refusal.at)}: [${c.last_refusal.check}] ${c.last_refusal.reason}`);
  if (c.outbox.queued) row("outbox", `${c.outbox.queued} queued${c.outbox.last_error ? `: ${c.outbox.last_error}` : ""}`);
  row("last check", day(c.last_check_at));
  if (c.last_error) row("last error", `${c.last_error} (${day(c.last_error_at)})`);
  for (const p of c.problems) row("problem", p);
  for (const a of c.alerts) row("alert", `${up(a.severity)} ${a.title} (since ${day(a.opened_at)}, last sent ${day(a.last_sent_at)})`);
}
