// Prometheus metrics for node_exporter's textfile collector, rendered from the status view and
// written atomically. Names follow cert-manager's (certmanager_certificate_expiration_timestamp_seconds).
import { writeFileAtomic } from "../files/atomic.js";

/** The part of `credd status --json` (core/status.ts StatusView) the metrics are made from. */
export interface MetricsView {
  status: string;
  daemon: { last_check_at: string | null };
  outbox: { queued: number };
  /** Open alerts, when the status view has them (credential null: daemon-wide). */
  alerts?: readonly { severity: string; credential?: string | null; kind?: string }[];
  credentials: readonly {
    name: string;
    mzp: string;
    status: string;
    certificate: null | { serial: string; not_after: string };
    renewal: null | { state: string };
    next_renewal_at: string | null;
    /** Which certificate of the path expires first (status's field of that name). */
    next_renewal_set_by?: null | { certificate: string; not_after: string };
    /** `failures` only for OAuth2 credentials: consecutive failed refreshes. */
    token: { expires_at?: string | null; failures?: number };
    /** Credentials with `proxy:` only (null: no daemon has run the listener yet). */
    proxy?: null | { listening: boolean; requests: number; outcomes: Record<string, number> };
  }[];
}

/** A pending renewal's states, in order; `live` and `superseded` end it. */
export const RENEWAL_STATES = ["created", "sent", "signed", "registered"] as const;
/** Alert severities always present, so `credd_alerts_open{severity="critical"} > 0` never lacks a series. */
export const ALERT_SEVERITIES = ["warning", "critical"] as const;
const SEVERITY_CODE: Record<string, number> = { ok: 0, warning: 1, critical: 2, unknown: 3 };

type Labels = Record<string, string>;
interface Family {
  name: string;
  help: string;
  samples: { labels: Labels; value: number }[];
}

/** Label values escape backslash, double quote and newline (the text exposition format). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

const seconds = (iso: string): number => Date.parse(iso) / 1000;

function formatValue(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (!Number.isFinite(n)) return n > 0 ? "+Inf" : "-Inf";
  return String(n);
}

/** The textfile: every family with HELP and TYPE (all gauges), one sample per line. */
export function renderMetrics(v: MetricsView): string {
  const fam = (name: string, help: string): Family => ({ name, help, samples: [] });
  const expiry = fam("credd_certificate_expiration_timestamp_seconds", "The live certificate's notAfter, as a Unix timestamp.");
  const pathExpiry = fam(
    "credd_certificate_path_expiration_timestamp_seconds",
    "When the live certificate's path stops working: the earliest notAfter of the certificate and the CA certificates of its path, as a Unix timestamp; `certificate` says which (leaf, intermediate, anchor).",
  );
  const renewal = fam("credd_certificate_renewal_timestamp_seconds", "When the live certificate is (or was) due for renewal, as a Unix timestamp.");
  const pending = fam(
    "credd_renewal_pending",
    "1 for the state of the credential's pending renewal (created, sent, signed, registered); all 0 when none is pending.",
  );
  const token = fam("credd_token_expiration_timestamp_seconds", "When the current OAuth2 access token expires, as a Unix timestamp.");
  const severity = fam("credd_credential_status", "The credential's status as credd status reports it: 0 ok, 1 warning, 2 critical, 3 unknown.");
  const lastCheck = fam("credd_last_check_timestamp_seconds", "When the daemon last checked every credential, as a Unix timestamp.");
  const outbox = fam("credd_outbox_queued", "Emails waiting in the outbox (CSRs, reminders, alerts).");
  const alerts = fam("credd_alerts_open", "Open alerts by severity.");
  const failures = fam("credd_token_refresh_failures", "Consecutive failed token refreshes of an OAuth2 credential (0 after a success).");
  const firing = fam(
    "credd_alert_firing",
    "1 for each open alert, by credential (empty: daemon-wide), kind and severity, as `credd alerts` lists them.",
  );

  const proxyUp = fam("credd_proxy_listening", "1 when the credential's local API proxy is listening, 0 when it is configured but not.");
  const proxyRequests = fam(
    "credd_proxy_requests",
    "Requests through the credential's proxy since the daemon started, by outcome: the API's status class (2xx, 4xx, ...) or credd's own error code.",
  );

  for (const c of v.credentials) {
    if (c.proxy !== undefined) {
      proxyUp.samples.push({ labels: { credential: c.name }, value: c.proxy?.listening ? 1 : 0 });
      for (const [outcome, n] of Object.entries(c.proxy?.outcomes ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
        proxyRequests.samples.push({ labels: { credential: c.name, outcome }, value: n });
      }
    }
    if (c.certificate) {
      expiry.samples.push({ labels: { credential: c.name, mzp: c.mzp, serial: c.certificate.serial }, value: seconds(c.certificate.not_after) });
    }
    if (c.certificate && c.next_renewal_set_by) {
      // next_renewal_set_by names the certificate of the path that expires first (core/status.ts).
      const by = c.next_renewal_set_by;
      pathExpiry.samples.push({ labels: { credential: c.name, mzp: c.mzp, certificate: by.certificate }, value: seconds(by.not_after) });
    }
    if (c.next_renewal_at) renewal.samples.push({ labels: { credential: c.name }, value: seconds(c.next_renewal_at) });
    const states: string[] = [...RENEWAL_STATES];
    if (c.renewal && !states.includes(c.renewal.state)) states.push(c.renewal.state);
    for (const s of states) pending.samples.push({ labels: { credential: c.name, state: s }, value: c.renewal?.state === s ? 1 : 0 });
    if (c.token.expires_at) token.samples.push({ labels: { credential: c.name }, value: seconds(c.token.expires_at) });
    if (typeof c.token.failures === "number") failures.samples.push({ labels: { credential: c.name }, value: c.token.failures });
    severity.samples.push({ labels: { credential: c.name }, value: SEVERITY_CODE[c.status] ?? 3 });
  }
  if (v.daemon.last_check_at) lastCheck.samples.push({ labels: {}, value: seconds(v.daemon.last_check_at) });
  outbox.samples.push({ labels: {}, value: v.outbox.queued });
  const counts = new Map<string, number>(ALERT_SEVERITIES.map((s) => [s, 0]));
  for (const a of v.alerts ?? []) counts.set(a.severity, (counts.get(a.severity) ?? 0) + 1);
  for (const [s, n] of counts) alerts.samples.push({ labels: { severity: s }, value: n });
  // Per alert, so a Prometheus rule can follow one of credd's own alerts (a failed deploy hook, an unanswered CSR).
  // One series per (credential, kind, severity): a duplicate series would make node_exporter drop the file.
  const seen = new Set<string>();
  for (const a of v.alerts ?? []) {
    const labels = { credential: a.credential ?? "", kind: a.kind ?? "unknown", severity: a.severity };
    const key = JSON.stringify(labels);
    if (!seen.has(key)) firing.samples.push({ labels, value: 1 });
    seen.add(key);
  }

  const lines: string[] = [];
  // The proxy's families only when a credential has `proxy:`: files without one stay as they were.
  const proxied = v.credentials.some((c) => c.proxy !== undefined);
  for (const f of [
    expiry,
    pathExpiry,
    renewal,
    pending,
    token,
    failures,
    severity,
    lastCheck,
    outbox,
    alerts,
    firing,
    ...(proxied ? [proxyUp, proxyRequests] : []),
  ]) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} gauge`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, val]) => `${k}="${escapeLabelValue(val)}"`);
      lines.push(`${f.name}${labels.length ? `{${labels.join(",")}}` : ""} ${formatValue(s.value)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Temp file in the same folder (a name node_exporter ignores: it reads only *.prom), fsync,
 * rename. The mode is set with fchmod, which the umask (UMask=0027 under systemd) does not
 * reduce: node_exporter runs as another user and must be able to read the file.
 */
export function writeMetricsFile(path: string, text: string, mode = 0o644): void {
  writeFileAtomic(path, text, mode, { exactMode: true, createDir: false });
}
