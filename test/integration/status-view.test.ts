// `credd status` from a real SQLite file and a real config, at an injected time: the registration
// probe time is the daemon's (the first scheduled check once the backoff has passed), the next step
// agrees with the state, hints name the credential, and the text has one labelled fact per row and
// one time format.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ManualClock } from "../helpers/clock.js";
import { when } from "../../src/cli/format.js";
import { statusText } from "../../src/cli/status-text.js";
import { loadConfig } from "../../src/config/load.js";
import type { Ctx } from "../../src/core/context.js";
import { probeDue } from "../../src/core/registration.js";
import { runsAfter } from "../../src/core/schedule.js";
import { buildStatus } from "../../src/core/status.js";
import { renderMetrics } from "../../src/daemon/metrics.js";
import { createLogger } from "../../src/log.js";
import { insertInstalledCertificate, makeLive } from "../../src/store/certificates.js";
import { getCheckPeriodMs, recordCheck, setCheckPeriodMs, setMeta } from "../../src/store/checks.js";
import { sqliteStore } from "../../src/store/sqlite-store.js";
import { openDb, type Db } from "../../src/store/db.js";
import { getRenewal, insertRenewal, markCsrSent, markRegistrationMailed, recordProbeFailure, setRenewalState } from "../../src/store/renewals.js";
import { credentialYaml } from "../helpers/credd.js";

// Local time, as node-cron runs check_schedule: a check every 10 minutes, and "now" is 10:03.
const NOW = new Date(2026, 10, 25, 10, 3, 0);
const at = (h: number, m: number, s = 0) => new Date(2026, 10, 25, h, m, s);
const DAY = 86_400_000;

function setup(schedule = "*/10 * * * *") {
  const dir = mkdtempSync(join(tmpdir(), "credd-status-view-"));
  const file = join(dir, "credd.yaml");
  writeFileSync(
    file,
    [
      `state_dir: ${join(dir, "state")}`,
      `check_schedule: "${schedule}"`,
      'smtp: { url: "smtp://127.0.0.1:9", from: "credd <credd@partner.example>" }',
      "alerts: { to: [ops@partner.example] }",
      "stellantis: { contact: connectedcar@stellantis.example }",
      "credentials:",
      credentialYaml("fleet-oauth", "MZP000001", "oauth: { token_url: https://idp.example/as/token.oauth2, client_id: c, scope: openid }"),
      credentialYaml("fleet-basic", "MZP000002", "basic_auth: { user: MZP000002, password_file: /dev/null }"),
      credentialYaml("fleet-new", "MZP000003"),
      "",
    ].join("\n"),
  );
  const config = loadConfig(file);
  const db = openDb(config.state_dir);
  const clock = new ManualClock(NOW);
  return { config, db, store: sqliteStore(db), clock };
}

function cert(db: Db, credential: string, version: number, live: boolean): void {
  insertInstalledCertificate(db, {
    credential,
    version,
    serial: `0${version}AB`,
    not_before: new Date(NOW.getTime() - 300 * DAY).toISOString(),
    not_after: new Date(NOW.getTime() + 60 * DAY).toISOString(),
    subject: "CN=x",
    issuer: "CN=ca",
    spki_sha256: `spki-${credential}-${version}`,
    sha256: `${credential}-${version}`,
    source: version === 1 ? "import" : "renewal",
    installed_at: new Date(NOW.getTime() - DAY).toISOString(),
    renewal_id: null,
  });
  if (live) makeLive(db, credential, version, new Date(NOW.getTime() - 300 * DAY).toISOString());
}

/** A renewal whose certificate (version 2) is signed and installed, the IDP probe backing off until `backoff`. */
function signed(db: Db, credential: string, backoff?: Date): number {
  cert(db, credential, 1, true);
  const id = insertRenewal(db, {
    credential,
    version: 2,
    kind: "renew",
    forced: 0,
    reason: "certificate 01AB: 60 days left, renewal due since 2026-11-20T10:00:00.000Z",
    spki_sha256: `spki-${credential}-2`,
    key_type: "rsa2048",
    created_at: new Date(NOW.getTime() - 5 * DAY).toISOString(),
  });
  markCsrSent(db, id, new Date(NOW.getTime() - 5 * DAY).toISOString());
  cert(db, credential, 2, false);
  setRenewalState(db, id, "signed", new Date(NOW.getTime() - DAY).toISOString());
  if (backoff) {
    markRegistrationMailed(db, id, new Date(NOW.getTime() - DAY).toISOString());
    recordProbeFailure(db, id, "invalid_client: certificate not bound to the client", backoff.toISOString());
  }
  return id;
}

test("the probe time shown is the first scheduled check at or after the probe's backoff, as the daemon runs it", async () => {
  const cases: { name: string; schedule?: string; backoff?: Date; want: Date }[] = [
    { name: "backoff ends between two checks: the next check after it", backoff: at(10, 16), want: at(10, 20) },
    { name: "backoff ends on a check: that check", backoff: at(10, 20), want: at(10, 20) },
    { name: "backoff over: the next check from now", backoff: at(9, 0), want: at(10, 10) },
    { name: "never probed yet: the next check from now", want: at(10, 10) },
    { name: "an hourly schedule", schedule: "0 * * * *", backoff: at(10, 4), want: at(11, 0) },
    { name: "twice a day", schedule: "0 9,17 * * *", backoff: at(17, 0, 1), want: new Date(2026, 10, 26, 9, 0, 0) },
  ];
  for (const c of cases) {
    const s = setup(c.schedule);
    const id = signed(s.db, "fleet-oauth", c.backoff);
    const v = await buildStatus(s, "fleet-oauth");
    const r = v.credentials[0]!.renewal!;
    assert.equal(r.awaiting_registration, true, c.name);
    assert.equal(r.next_probe_at, c.want.toISOString(), c.name);
    assert.equal(r.probe_backoff_until, c.backoff?.toISOString() ?? null, c.name);

    // What the daemon does: at each scheduled check it probes if probeDue (core/check.ts). The first
    // check where that holds is the one status shows.
    const ctx = { ...s, log: createLogger({ level: "silent" }), mailer: () => assert.fail("no mail") } as unknown as Ctx;
    const renewal = getRenewal(s.db, id)!;
    const checks = runsAfter(s.config.check_schedule, new Date(NOW.getTime() - 1), 40);
    let first: number | undefined;
    for (const t of checks) {
      s.clock.set(t);
      if (await probeDue(ctx, renewal)) {
        first = t;
        break;
      }
    }
    assert.equal(first, c.want.getTime(), `${c.name}: the daemon's first probing check`);
    s.db.close();
  }
});

test("awaiting registration: the next step waits for Stellantis, never offers renew --force; the text shows the probe time", async () => {
  const s = setup();
  signed(s.db, "fleet-oauth", at(10, 16));
  recordCheck(s.db, "fleet-oauth", at(10, 0));
  setMeta(s.db, "last_check_at", at(10, 0).toISOString());
  const v = await buildStatus(s, "fleet-oauth");
  const c = v.credentials[0]!;
  assert.equal(c.next_step.check, "awaiting-registration");
  assert.match(c.next_step.reason, /waiting for Stellantis to bind it to the OAuth2 client/);
  const lines: string[] = [];
  statusText(v, (l) => lines.push(l));
  const text = lines.join("\n");
  assert.match(text, /^ {2}renewal {7}#\d+ \(renew\): awaiting IDP registration since /m);
  assert.match(text, new RegExp(`^ {2}next probe {4}${when(at(10, 20))}$`, "m"));
  assert.match(text, /^ {2}probe error {3}invalid_client: certificate not bound to the client$/m);
  assert.match(text, /^ {2}next step {5}the new certificate is signed and installed but not live: waiting for Stellantis to bind it/m);
  assert.doesNotMatch(text, /--force|credd renew/);
  s.db.close();
});

test("a signed Basic-auth renewal is not awaiting registration and has no probe time", async () => {
  const s = setup();
  signed(s.db, "fleet-basic");
  const c = (await buildStatus(s, "fleet-basic")).credentials[0]!;
  assert.equal(c.renewal!.awaiting_registration, false);
  assert.equal(c.renewal!.next_probe_at, null);
  assert.equal(c.next_step.check, "renewal-in-progress");
  s.db.close();
});

/** The labels a credential's rows may carry; a row with anything else is an unlabelled word. */
const LABELS = new Set([
  "certificate",
  "expires",
  "renewal due",
  "renewal",
  "reason",
  "csr sent",
  "registration",
  "probe error",
  "next probe",
  "next step",
  "token",
  "token expires",
  "token retry",
  "deploy",
  "hook",
  "refused",
  "outbox",
  "last check",
  "last error",
  "problem",
  "alert",
]);
const HEADER_LABELS = new Set(["generated", "config", "last check", "schedule", "outbox", "alert"]);

test("the text: one labelled fact per row, one time format, the real name in every hint", async () => {
  const s = setup();
  signed(s.db, "fleet-oauth", at(10, 16));
  cert(s.db, "fleet-basic", 1, true);
  const v = await buildStatus(s);
  const lines: string[] = [];
  statusText(v, (l) => lines.push(l));
  const text = lines.join("\n");

  assert.doesNotMatch(text, /\d{4}-\d\d-\d\dT\d\d:\d\d/, "no ISO 8601 in text output");
  const times = text.match(/\d{4}-\d\d-\d\d[ T]\d\d:\d\d\S*( UTC)?/g) ?? [];
  assert.ok(times.length > 10, "times are shown");
  for (const t of times) assert.match(t, /^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/, t);
  assert.match(text, /^ {2}reason {8}certificate 01AB: 60 days left, renewal due since 2026-11-20 10:00 UTC$/m, "times inside reasons too");
  assert.doesNotMatch(text, /\bNAME\b/, "no placeholder");
  assert.match(text, /credd enroll fleet-new\b/, "the hint names the credential");
  assert.match(text, /credd import fleet-new\b/);

  assert.equal(lines[0], "credd status WARNING");
  let header = true;
  for (const line of lines.slice(1)) {
    if (line === "") {
      header = false;
      continue;
    }
    if (/^fleet-[a-z]+ \(MZP\d{6}\) {2}(OK|WARNING|CRITICAL)$/.test(line)) continue;
    const m = header ? /^([a-z][a-z ]*?) {2,}(\S.*)$/.exec(line) : /^ {2}([a-z][a-z ]*?) {2,}(\S.*)$/.exec(line);
    assert.ok(m, `a label, then its value: ${JSON.stringify(line)}`);
    assert.ok((header ? HEADER_LABELS : LABELS).has(m[1]!), `known label: ${JSON.stringify(line)}`);
  }
  assert.match(text, /^ {2}certificate {3}serial 01AB \(version 1, source: import, installed \d{4}-\d\d-\d\d \d\d:\d\d UTC\)$/m);
  assert.match(text, /^ {2}expires {7}\d{4}-\d\d-\d\d \d\d:\d\d UTC \(60 days left\)$/m);
  s.db.close();
});

test("the daemon's staleness is judged by the check period `credd run` stored, not the config's schedule", async () => {
  // The config says every 10 minutes; the daemon still runs an hourly schedule (edited, not reloaded).
  const s = setup();
  setMeta(s.db, "last_check_at", at(9, 0).toISOString());
  recordCheck(s.db, "fleet-basic", at(9, 0));
  const stale = async () => (await buildStatus(s)).daemon.stale;
  const daemonProblems = async () =>
    (await buildStatus(s, "fleet-basic")).credentials[0]!.problems.filter((p) => p.includes("the daemon may be stopped"));
  assert.equal(await stale(), true, "no period stored (a database from before): worked out from the config, 10 min; 63 min is stale");
  assert.equal((await daemonProblems()).length, 1);
  setCheckPeriodMs(s.db, 60 * 60_000);
  assert.equal(getCheckPeriodMs(s.db), 60 * 60_000);
  assert.equal(await stale(), false, "63 min after the last check of an hourly daemon: not stale");
  assert.deepEqual(await daemonProblems(), [], "nor a credential problem");
  s.clock.set(at(11, 0, 1));
  assert.equal(await stale(), true, "more than two stored periods: stale");
  assert.equal((await daemonProblems()).length, 1, "and a credential problem");
  // A value the daemon could not have written is ignored, not trusted.
  setMeta(s.db, "check_period_ms", "soon");
  s.clock.set(at(9, 25));
  assert.equal(await stale(), true, "unreadable period: the config's 10 min again");
  s.db.close();
});

test("status shows the test switches it was given: a banner on the first line, test_switches in the view", async () => {
  const s = setup();
  const lines: string[] = [];
  statusText(await buildStatus(s, undefined, ["CREDD_FAKE_NOW", "CREDD_CLOCK_FILE"]), (l) => lines.push(l));
  assert.equal(lines[0], "TEST SWITCHES: CREDD_FAKE_NOW, CREDD_CLOCK_FILE set (test aids, not for production: docs/operations.md)");
  assert.match(lines[1]!, /^credd status /);
  assert.deepEqual((await buildStatus(s, undefined, ["CREDD_CRASH_AT"])).test_switches, ["CREDD_CRASH_AT"]);
  const plain: string[] = [];
  statusText(await buildStatus(s), (l) => plain.push(l));
  assert.match(plain[0]!, /^credd status /, "none set: no banner");
  assert.deepEqual((await buildStatus(s)).test_switches, []);
  s.db.close();
});

test("a refused file's name and reason show control characters escaped, never raw", async () => {
  const { recordIngest } = await import("../../src/store/history.js");
  const s = setup();
  cert(s.db, "fleet-basic", 1, true);
  recordIngest(s.db, {
    at: NOW.toISOString(),
    file: "bad\r\nBcc: x@evil.example\x1b[2J.pem",
    credential: "fleet-basic",
    outcome: "refused",
    check_name: "subject",
    reason: "subject CN=\u202etxt.exe\n is not the DN asked for",
    serial: null,
    sha256: null,
  });
  const lines: string[] = [];
  statusText(await buildStatus(s, "fleet-basic"), (l) => lines.push(l));
  const text = lines.join("\n");
  assert.ok(!/[\r\x1b\u202e]/.test(text), "no raw control character");
  assert.match(
    text,
    /^ {2}refused {7}bad\\r\\nBcc: x@evil\.example\\x1b\[2J\.pem, .*\[subject\] subject CN=\\u202etxt\.exe\\n is not the DN asked for$/m,
  );
  s.db.close();
});

/** fleet-basic live: a leaf issued `issuedDaysAgo` with 200 days left, under an intermediate with `caDays` left. */
function liveUnderIntermediate(db: Db, issuedDaysAgo: number, caDays: number): void {
  insertInstalledCertificate(db, {
    credential: "fleet-basic",
    version: 1,
    serial: "0BAD",
    not_before: new Date(NOW.getTime() - issuedDaysAgo * DAY).toISOString(),
    not_after: new Date(NOW.getTime() + 200 * DAY).toISOString(),
    subject: "CN=MZP000002",
    issuer: "CN=Issuing CA",
    spki_sha256: "spki-basic",
    sha256: "sha-basic",
    source: "renewal",
    installed_at: new Date(NOW.getTime() - issuedDaysAgo * DAY).toISOString(),
    renewal_id: null,
    ca_not_after: new Date(NOW.getTime() + caDays * DAY).toISOString(),
    ca_not_after_role: "intermediate",
    ca_not_after_subject: "C=FR, O=Stellantis, CN=Issuing CA",
    ca_not_after_serial: "7E57",
  });
  makeLive(db, "fleet-basic", 1, new Date(NOW.getTime() - issuedDaysAgo * DAY).toISOString());
}

test("status says which certificate sets the renewal date: the leaf, or a CA of its chain that expires first", async () => {
  const { config, db, store, clock } = setup();
  const ctx = { config, db, store, clock } as unknown as Ctx;
  // fleet-basic: a one-year leaf (60 days left) under an intermediate that expires in 40 days.
  liveUnderIntermediate(db, 300, 40);
  cert(db, "fleet-oauth", 1, true);
  const view = await buildStatus(ctx);
  const basic = view.credentials.find((c) => c.name === "fleet-basic")!;
  assert.equal(basic.next_renewal_at, new Date(NOW.getTime() + 10 * DAY).toISOString(), "renew_before_days (30) before the CA's expiry");
  assert.deepEqual(basic.next_renewal_set_by, {
    certificate: "intermediate",
    subject: "C=FR, O=Stellantis, CN=Issuing CA",
    serial: "7E57",
    not_after: new Date(NOW.getTime() + 40 * DAY).toISOString(),
  });
  const oauth = view.credentials.find((c) => c.name === "fleet-oauth")!;
  assert.deepEqual(oauth.next_renewal_set_by, {
    certificate: "leaf",
    subject: "CN=x",
    serial: "01AB",
    not_after: new Date(NOW.getTime() + 60 * DAY).toISOString(),
  });
  assert.equal(view.credentials.find((c) => c.name === "fleet-new")!.next_renewal_set_by, null);

  const lines: string[] = [];
  statusText(view, (l) => lines.push(l));
  const text = lines.join("\n");
  assert.match(
    text,
    /renewal due {3}.*\(set by intermediate "C=FR, O=Stellantis, CN=Issuing CA", serial 7E57, which expires .*, before this certificate\)/,
  );
  assert.match(text, /renewal due {3}.*\(set by this certificate's own lifetime\)/);
});

test("a CA of the path expiring before the leaf makes status critical and writes the path's expiry metric", async () => {
  const { config, db, store, clock } = setup();
  const ctx = { config, db, store, clock } as unknown as Ctx;
  // A leaf with 200 days left whose intermediate runs out in 5 days: the API refuses it then.
  liveUnderIntermediate(db, 165, 5.5);
  recordCheck(db, "fleet-basic", NOW);
  const basic = (await buildStatus(ctx)).credentials.find((c) => c.name === "fleet-basic")!;
  assert.equal(basic.certificate?.days_left, 200);
  assert.equal(basic.status, "critical", basic.problems.join("; "));
  assert.ok(
    basic.problems.some((p) => p === 'the intermediate CA certificate "C=FR, O=Stellantis, CN=Issuing CA" of its path expires in 5 days'),
    basic.problems.join("; "),
  );
  const text = renderMetrics(await buildStatus(ctx));
  const caSeconds = (NOW.getTime() + 5.5 * DAY) / 1000;
  assert.match(
    text,
    new RegExp(
      `^credd_certificate_path_expiration_timestamp_seconds\\{credential="fleet-basic",mzp="[^"]+",certificate="intermediate"\\} ${caSeconds}$`,
      "m",
    ),
  );
  db.close();
});
