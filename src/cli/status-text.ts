// The text of `credd status`: one labelled fact per row, one time format (src/cli/format.ts).
import type { CredentialStatus, StatusView } from "../core/status.js";
import { testSwitchBanner } from "../test-switches.js";
import { visible } from "../domain/untrusted.js";
import { humanTimes, when } from "./format.js";

const up = (s: string) => s.toUpperCase();
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Every line of the report (no trailing newline); `push` is handed each in turn. */
export function statusText(v: StatusView, push: (line: string) => void): void {
  const row = (k: string, val: string) => push(`${k.padEnd(14)}${visible(humanTimes(val))}`);
  const banner = testSwitchBanner(v.test_switches);
  if (banner) push(banner);
  push(`credd status ${up(v.status)}`);
  row("generated", when(v.generated_at));
  row("config", v.config);
  const stale = v.daemon.last_check_at ? " (stale: more than two check_schedule periods ago; is `credd run` running?)" : " (is `credd run` running?)";
  row("last check", `${when(v.daemon.last_check_at)}${v.daemon.stale ? stale : ""}`);
  row("schedule", v.daemon.check_schedule);
  row("outbox", outbox(v.outbox.queued, v.outbox.last_error, v.outbox.oldest_queued_at));
  for (const a of v.alerts.filter((x) => x.credential === null)) row("alert", alert(a));
  if (v.mailbox)
    row(
      "mailbox",
      v.mailbox.reading
        ? `${v.mailbox.source}: read`
        : `${v.mailbox.source}: CANNOT READ since ${when(v.mailbox.failing_since)}: ${v.mailbox.last_error ?? ""}`,
    );
  // Every host of a shared store (one on SQLite: shown only when there are several or a warning).
  if (v.hosts.length > 1 || v.hosts_warning) {
    for (const h of v.hosts)
      row(
        "host",
        `${h.name} ${h.role === "leader" ? "LEADER" : "follower"} (pid ${h.pid}, credd ${h.version}, last heartbeat ${when(h.last_heartbeat_at)}${h.stale ? ", STALE" : ""})`,
      );
    if (v.hosts_warning) row("hosts", `WARNING: ${v.hosts_warning}`);
  }
  for (const c of v.credentials) credentialText(c, v.daemon.stale, push);
}

function outbox(queued: number, lastError: string | null, oldest?: string | null): string {
  if (queued === 0) return "nothing queued";
  return `${plural(queued, "email")} queued${oldest ? ` (oldest ${when(oldest)})` : ""}${lastError ? `; last error: ${lastError}` : ""}`;
}

const alert = (a: StatusView["alerts"][number]) => `${up(a.severity)}: ${a.title} (since ${when(a.opened_at)}, last sent ${when(a.last_sent_at)})`;

function credentialText(c: CredentialStatus, daemonStale: boolean, push: (line: string) => void): void {
  // Rows carry names someone else chose (an inbox file, a certificate's subject): control characters shown, never sent to the terminal.
  const row = (k: string, val: string) => push(`  ${k.padEnd(14)}${visible(humanTimes(val))}`);
  push("");
  push(`${c.name} (${c.mzp})  ${up(c.status)}`);
  const x = c.certificate;
  if (x) {
    row("certificate", `serial ${x.serial} (version ${x.version}, source: ${x.source}, installed ${when(x.installed_at)})`);
    row("expires", `${when(x.not_after)} (${x.days_left < 0 ? `expired ${plural(-x.days_left, "day")} ago` : `${plural(x.days_left, "day")} left`})`);
    if (c.next_renewal_at) row("renewal due", `${when(c.next_renewal_at)}${setBy(c.next_renewal_set_by)}`);
  } else row("certificate", "none yet");
  const r = c.renewal;
  if (r) {
    const state = r.awaiting_registration ? "awaiting IDP registration" : r.state;
    row("renewal", `#${r.id} (${r.kind}${r.forced ? ", asked by a person" : ""}): ${state} since ${when(r.since)}`);
    row("reason", r.reason);
    if (r.csr_sent_at || r.state !== "created") {
      row("csr sent", `${when(r.csr_sent_at)}${r.remind_count ? ` (reminded ${plural(r.remind_count, "time")}, last ${when(r.reminded_at)})` : ""}`);
    }
    if (r.awaiting_registration) {
      row(
        "registration",
        `certificate emailed to the contact ${when(r.registration_mailed_at, "not yet")}, ${plural(r.probe_attempts, "probe")} so far`,
      );
      if (r.last_probe_error) row("probe error", r.last_probe_error);
      row(
        "next probe",
        `${when(r.next_probe_at, "at the daemon's next check")}${daemonStale ? " (if `credd run` is running: it has not checked lately)" : ""}`,
      );
    }
  } else row("renewal", "none in progress");
  row("next step", c.next_step.reason);
  const t = c.token;
  if (t.expires_at !== undefined) {
    row("token", t.state);
    if (t.expires_at) row("token expires", `${when(t.expires_at)} (refresh due ${when(t.refresh_at ?? null)})`);
    if (t.failures)
      row(
        "token retry",
        `${when(t.next_attempt_at ?? null, "not scheduled")}, after ${plural(t.failures, "failure")}: ${t.last_error ?? "no reason recorded"}`,
      );
  } else row("token", t.state);
  if (c.last_hook) {
    const h = c.last_hook;
    row("deploy", `${h.ok ? "ok" : "FAILED"}, ${when(h.at)}, certificate ${h.serial}`);
    for (const run of h.runs) row("hook", `${run.argv.join(" ")}: ${run.ok ? "ok" : (run.error ?? `exit ${run.exit_code}`)} (${run.duration_ms} ms)`);
  }
  if (c.last_reply) {
    const m = c.last_reply;
    row("last reply", `${when(m.at)} from ${m.sender ?? "(unknown)"}: ${m.outcome}${m.reason ? `: ${m.reason}` : ""}`);
    if (m.config_lines.length) row("reply names", `${m.config_lines.join("; ")} (not in the config; add it, docs/mailbox.md)`);
  }
  if (c.last_refusal) {
    const f = c.last_refusal;
    row("refused", `${f.file}, ${when(f.at)}: ${f.check ? `[${f.check}] ` : ""}${f.reason ?? "no reason recorded"}`);
  }
  if (c.outbox.queued) row("outbox", outbox(c.outbox.queued, c.outbox.last_error));
  row("last check", when(c.last_check_at));
  if (c.last_error) row("last error", `${c.last_error} (${when(c.last_error_at)})`);
  for (const p of c.problems) row("problem", p);
  for (const a of c.alerts) row("alert", alert(a));
}

/** Names the CA certificate when one of the chain, expiring first, sets the renewal date. */
function setBy(by: CredentialStatus["next_renewal_set_by"]): string {
  if (!by || by.certificate === "leaf") return " (set by this certificate's own lifetime)";
  return ` (set by ${by.certificate} "${by.subject}", serial ${by.serial}, which expires ${when(by.not_after)}, before this certificate)`;
}
