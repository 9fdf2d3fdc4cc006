// The Prometheus textfile: rendered from a real state (an imported certificate, a pending renewal)
// through buildStatus, written atomically with mode 0644 whatever the umask, accepted by promtool.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { escapeLabelValue, renderMetrics, writeMetricsFile, type MetricsView } from "../../src/daemon/metrics.js";
import { realMetricsRun } from "../helpers/metrics-run.js";
import { makeTempDir } from "../helpers/openssl.js";

/** `promtool check metrics < file`; undefined when promtool is not installed. */
function promtool(file: string): { status: number | null; out: string } | undefined {
  const r = spawnSync("sh", ["-c", 'command -v promtool >/dev/null || exit 127; promtool check metrics < "$1"', "sh", file], { encoding: "utf8" });
  if (r.status === 127) return undefined;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A subtest of its own, so a host without promtool skips only this check, with a note. */
function checkWithPromtool(t: TestContext, file: string): Promise<void> {
  return t.test("promtool check metrics accepts the file", (st) => {
    const r = promtool(file);
    if (!r) return st.skip("promtool not installed (Debian package prometheus): the format was not checked by it");
    assert.equal(r.status, 0, `promtool check metrics:\n${r.out}`);
  });
}

/** Every sample line as "name{labels}" -> value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

test("a state with an imported certificate and a pending renewal: the expected series and values", async (t) => {
  // test/helpers/metrics-run.ts: fleet-prod imported with 20 days left, one check (a renewal starts).
  const { file, text: written, view, now, serial, notAfter } = await realMetricsRun();
  const prod = view.credentials.find((c) => c.name === "fleet-prod")!;
  assert.equal(prod.renewal?.state, "created");
  assert.equal(written, renderMetrics(view), "the file holds what renderMetrics made of the view");
  const s = samples(written);

  assert.equal(
    s.get(`credd_certificate_expiration_timestamp_seconds{credential="fleet-prod",mzp="MZP128745",serial="${serial}"}`),
    Math.floor(notAfter.getTime() / 1000),
  );
  assert.ok(
    ![...s.keys()].some((k) => k.startsWith('credd_certificate_expiration_timestamp_seconds{credential="fleet-test"')),
    "no certificate, no series",
  );
  assert.equal(s.get('credd_certificate_renewal_timestamp_seconds{credential="fleet-prod"}'), Date.parse(prod.next_renewal_at!) / 1000);
  // The path's earliest expiry: whichever certificate status names (next_renewal_set_by).
  const by = prod.next_renewal_set_by!;
  assert.equal(
    s.get(`credd_certificate_path_expiration_timestamp_seconds{credential="fleet-prod",mzp="MZP128745",certificate="${by.certificate}"}`),
    Date.parse(by.not_after) / 1000,
  );
  assert.ok(Date.parse(prod.next_renewal_at!) <= now, "the renewal was due");
  assert.equal(s.get('credd_renewal_pending{credential="fleet-prod",state="created"}'), 1);
  for (const st of ["sent", "signed", "registered"]) assert.equal(s.get(`credd_renewal_pending{credential="fleet-prod",state="${st}"}`), 0, st);
  for (const st of ["created", "sent", "signed", "registered"])
    assert.equal(s.get(`credd_renewal_pending{credential="fleet-test",state="${st}"}`), 0, st);
  assert.equal(s.get("credd_last_check_timestamp_seconds"), now / 1000);
  assert.equal(s.get("credd_outbox_queued"), view.outbox.queued);
  assert.ok(view.outbox.queued >= 1, "the CSR email is queued");
  assert.equal(s.get('credd_credential_status{credential="fleet-prod"}'), 1, "a pending renewal is a warning");
  const alerts = (view as { alerts?: { severity: string }[] }).alerts ?? [];
  for (const sev of ["warning", "critical"]) {
    assert.equal(s.get(`credd_alerts_open{severity="${sev}"}`), alerts.filter((a) => a.severity === sev).length, sev);
  }
  assert.ok(![...s.keys()].some((k) => k.startsWith("credd_token_expiration_timestamp_seconds")), "no OAuth2 credential, no token series");
  for (const name of ["credd_certificate_expiration_timestamp_seconds", "credd_renewal_pending", "credd_outbox_queued", "credd_alerts_open"]) {
    assert.match(written, new RegExp(`^# HELP ${name} .+\\n# TYPE ${name} gauge$`, "m"));
  }
  await checkWithPromtool(t, file);
});

test("label values are escaped; tokens and unknown states get series; promtool accepts it", async (t) => {
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  const view: MetricsView = {
    status: "critical",
    daemon: { last_check_at: null },
    outbox: { queued: 0 },
    alerts: [{ severity: "critical" }, { severity: "critical" }, { severity: "warning" }],
    credentials: [
      {
        name: "odd",
        mzp: 'MZP"1\\2\n3',
        status: "critical",
        certificate: { serial: "0A1B", not_after: "2027-01-01T00:00:00.500Z" },
        renewal: { state: "superseded-ish" },
        next_renewal_at: null,
        token: { expires_at: "2026-11-25T16:00:00.000Z" },
      },
    ],
  };
  const text = renderMetrics(view);
  assert.match(text, /^credd_certificate_expiration_timestamp_seconds\{credential="odd",mzp="MZP\\"1\\\\2\\n3",serial="0A1B"\} 1798761600\.5$/m);
  assert.match(text, /^credd_token_expiration_timestamp_seconds\{credential="odd"\} 1795622400$/m);
  assert.match(text, /^credd_renewal_pending\{credential="odd",state="superseded-ish"\} 1$/m);
  assert.match(text, /^credd_renewal_pending\{credential="odd",state="created"\} 0$/m);
  assert.match(text, /^credd_alerts_open\{severity="critical"\} 2$/m);
  assert.match(text, /^credd_alerts_open\{severity="warning"\} 1$/m);
  assert.match(text, /^credd_credential_status\{credential="odd"\} 2$/m);
  assert.ok(!/^credd_last_check_timestamp_seconds /m.test(text), "never checked: no sample, rather than a made-up time");
  const dir = makeTempDir("credd-int-metrics-escape-");
  const file = join(dir, "credd.prom");
  writeMetricsFile(file, text);
  await checkWithPromtool(t, file);
});

test("writeMetricsFile: 0644 even under a umask of 0077, replaced atomically, no temp file left", () => {
  const dir = makeTempDir("credd-int-metrics-write-");
  const file = join(dir, "credd.prom");
  const old = process.umask(0o077);
  try {
    writeMetricsFile(file, "# first\n");
    writeMetricsFile(file, "# second\n");
  } finally {
    process.umask(old);
  }
  assert.equal(readFileSync(file, "utf8"), "# second\n");
  assert.equal(statSync(file).mode & 0o777, 0o644);
  assert.deepEqual(readdirSync(dir), ["credd.prom"]);
  assert.throws(() => writeMetricsFile(join(dir, "missing", "credd.prom"), "x\n"), /ENOENT/);
});
