// The Prometheus textfile: rendered from a real state (an imported certificate, a pending renewal)
// through buildStatus, written atomically with mode 0644 whatever the umask, accepted by promtool.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { ManualClock } from "../helpers/clock.js";
import { parseConfig } from "../../src/config/load.js";
import { checkAll } from "../../src/core/check.js";
import { sqliteCtx, type TestCtx } from "../helpers/ctx.js";
import { importCertificate } from "../../src/core/import.js";
import { buildStatus } from "../../src/core/status.js";
import { escapeLabelValue, renderMetrics, writeMetricsFile, type MetricsView } from "../../src/daemon/metrics.js";
import { createLogger } from "../../src/log.js";
import { makeMailerFactory } from "../../src/mail/factory.js";
import { openDb } from "../../src/store/db.js";
import { dnFor } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir } from "../helpers/openssl.js";

const DAY = 86_400_000;

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
  const dir = makeTempDir("credd-int-metrics-");
  const now = Date.parse("2026-11-25T15:00:00Z");
  const clock = new ManualClock(now);
  const config = parseConfig(
    `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
metrics_file: ${join(dir, "credd.prom")}
smtp: { url: "smtp://127.0.0.1:9", from: "credd <credd@partner.example>", timeout_ms: 1000 }
alerts: { to: [ops@partner.example] }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
  - name: fleet-test
    mzp: MZP654321
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
`,
    join(dir, "credd.yaml"),
    {},
  );
  const ctx: TestCtx = sqliteCtx({
    config,
    db: openDb(config.state_dir),
    clock,
    log: createLogger({ level: "silent" }),
    mailer: makeMailerFactory(config),
  });
  try {
    // Made by hand, 20 days left: the next check starts a renewal (key + CSR, email queued).
    const ca = makeCa(makeTempDir("credd-int-metrics-ca-"));
    const notAfter = new Date(now + 20 * DAY);
    const hand = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, notBefore: new Date(now - 345 * DAY), notAfter });
    const cred = config.credentials[0]!;
    const imported = await importCertificate(ctx, cred, {
      certText: readFileSync(hand.certPath, "utf8"),
      certFile: hand.certPath,
      keyText: readFileSync(hand.keyPath, "utf8"),
      keyFile: hand.keyPath,
    });
    await checkAll(ctx);

    const view = await buildStatus(ctx);
    const prod = view.credentials.find((c) => c.name === "fleet-prod")!;
    assert.equal(prod.renewal?.state, "created");
    const text = renderMetrics(view);
    writeMetricsFile(config.metrics_file!, text);
    const written = readFileSync(config.metrics_file!, "utf8");
    assert.equal(written, text);
    const s = samples(written);

    const serial = imported.serial;
    assert.equal(
      s.get(`credd_certificate_expiration_timestamp_seconds{credential="fleet-prod",mzp="MZP128745",serial="${serial}"}`),
      Math.floor(notAfter.getTime() / 1000),
    );
    assert.ok(
      ![...s.keys()].some((k) => k.startsWith('credd_certificate_expiration_timestamp_seconds{credential="fleet-test"')),
      "no certificate, no series",
    );
    assert.equal(s.get('credd_certificate_renewal_timestamp_seconds{credential="fleet-prod"}'), Date.parse(prod.next_renewal_at!) / 1000);
    // The path's earliest expiry: imported without a chain, the leaf's own.
    assert.equal(
      s.get('credd_certificate_path_expiration_timestamp_seconds{credential="fleet-prod",mzp="MZP128745",certificate="leaf"}'),
      Math.floor(notAfter.getTime() / 1000),
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
    await checkWithPromtool(t, config.metrics_file!);
  } finally {
    ctx.db.close();
  }
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
