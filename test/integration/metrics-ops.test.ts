// The series the Prometheus rules follow beside the status metrics: one credd_alert_firing per open
// alert (credential, kind, severity), and credd_token_refresh_failures for OAuth2 credentials only.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { renderMetrics, type MetricsView } from "../../src/daemon/metrics.js";
import { makeTempDir } from "../helpers/openssl.js";

const cred = (name: string, token: MetricsView["credentials"][number]["token"]): MetricsView["credentials"][number] => ({
  name,
  mzp: "MZP128745",
  status: "warning",
  certificate: null,
  renewal: null,
  next_renewal_at: null,
  token,
});

const view: MetricsView = {
  status: "critical",
  daemon: { last_check_at: "2026-11-25T15:00:00.000Z" },
  outbox: { queued: 1 },
  alerts: [
    { credential: "fleet-prod", kind: "token-failing", severity: "critical" },
    { credential: "fleet-prod", kind: "hook-failed", severity: "warning" },
    { credential: null, kind: "smtp-failing", severity: "warning" },
    { credential: null, kind: "smtp-failing", severity: "warning" },
  ],
  credentials: [cred("fleet-prod", { expires_at: "2026-11-25T15:05:00.000Z", failures: 4 }), cred("fleet-basic", {})],
};

test("one credd_alert_firing series per open alert; daemon-wide ones have an empty credential", () => {
  const text = renderMetrics(view);
  const firing = text.split("\n").filter((l) => l.startsWith("credd_alert_firing"));
  assert.deepEqual(firing, [
    'credd_alert_firing{credential="fleet-prod",kind="token-failing",severity="critical"} 1',
    'credd_alert_firing{credential="fleet-prod",kind="hook-failed",severity="warning"} 1',
    'credd_alert_firing{credential="",kind="smtp-failing",severity="warning"} 1',
  ]);
  assert.match(text, /^# TYPE credd_alert_firing gauge$/m);
  assert.match(text, /^credd_alerts_open\{severity="warning"\} 3$/m, "the count by severity is unchanged");
});

test("credd_token_refresh_failures only for credentials with an OAuth2 token state", () => {
  const text = renderMetrics(view);
  assert.match(text, /^credd_token_refresh_failures\{credential="fleet-prod"\} 4$/m);
  assert.ok(!text.includes('credd_token_refresh_failures{credential="fleet-basic"}'), "no series without OAuth2");
  assert.match(text, /^# TYPE credd_token_refresh_failures gauge$/m, "the family is declared even with no sample");
  assert.match(renderMetrics({ ...view, alerts: [] }), /^# TYPE credd_alert_firing gauge$/m);
});

test("promtool check metrics accepts the new families", (t) => {
  const file = join(makeTempDir("credd-metrics-ops-"), "credd.prom");
  writeFileSync(file, renderMetrics(view));
  const r = spawnSync("sh", ["-c", 'command -v promtool >/dev/null || exit 127; promtool check metrics < "$1"', "sh", file], { encoding: "utf8" });
  if (r.status === 127) return t.skip("promtool not installed (Debian package prometheus): the format was not checked by it");
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});
