// The bulk reads (store/snapshot.ts, core/facts.ts checkInputs) against the per-credential queries
// they replace, on a real SQLite file holding several credentials in different states.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { CredentialConfig } from "../../src/config/types.js";
import { checkInput, checkInputs, checkInputOf } from "../../src/core/facts.js";
import { resolveAlert, upsertAlert } from "../../src/store/alerts.js";
import { insertInstalledCertificate, liveCertificate, makeLive } from "../../src/store/certificates.js";
import { recordCheck } from "../../src/store/checks.js";
import { openDb, type Db } from "../../src/store/db.js";
import { recordHookRun, recordIngest } from "../../src/store/history.js";
import { enqueueMail, markMailSent } from "../../src/store/outbox.js";
import { insertRenewal, pendingRenewal, setRenewalState } from "../../src/store/renewals.js";
import { readSnapshot } from "../../src/store/snapshot.js";
import { sqliteStore } from "../../src/store/sqlite-store.js";
import { recordTokenSuccess } from "../../src/store/tokens.js";

const cred = (name: string): CredentialConfig => ({ name, auto_enroll: true, renew_before_days: 30, remind_after_days: 3 }) as CredentialConfig;
const mail = (id: string) => ({ messageId: id, from: "a@b", to: ["c@d"], cc: [], subject: "s", text: "t", attachments: [] });
const T = (day: number) => new Date(Date.UTC(2026, 10, day)).toISOString();

function cert(db: Db, credential: string, version: number, live: boolean): void {
  insertInstalledCertificate(db, {
    credential,
    version,
    serial: `0${version}`,
    not_before: T(1),
    not_after: T(28),
    subject: "CN=x",
    issuer: "CN=ca",
    spki_sha256: `spki${version}`,
    sha256: `${credential}-${version}`,
    source: "import",
    installed_at: T(version),
    renewal_id: null,
  });
  if (live) makeLive(db, credential, version, T(version));
}

function renewal(db: Db, credential: string, version: number, day: number): number {
  return insertRenewal(db, {
    credential,
    version,
    kind: "renew",
    forced: 0,
    reason: "due",
    spki_sha256: `k${version}`,
    key_type: "rsa2048",
    created_at: T(day),
  });
}

/** a: two certificates (v2 live), an ended renewal and a pending one, hooks twice, two refusals, a token, mail queued and sent.
 *  b: one live certificate, nothing else. c: nothing at all. */
function fill(db: Db): void {
  cert(db, "a", 1, true);
  cert(db, "a", 2, true);
  const old = renewal(db, "a", 2, 3);
  setRenewalState(db, old, "live", T(4));
  const now = renewal(db, "a", 3, 10);
  setRenewalState(db, now, "sent", T(11));
  cert(db, "b", 1, true);
  recordHookRun(db, {
    credential: "a",
    version: 1,
    serial: "01",
    argv_json: '["old"]',
    ok: 0,
    exit_code: 1,
    signal: null,
    duration_ms: 5,
    error: null,
    output: "",
    started_at: T(1),
  });
  for (const argv of ['["x"]', '["y"]']) {
    recordHookRun(db, {
      credential: "a",
      version: 2,
      serial: "02",
      argv_json: argv,
      ok: 1,
      exit_code: 0,
      signal: null,
      duration_ms: 5,
      error: null,
      output: "",
      started_at: T(2),
    });
  }
  for (const file of ["first.pem", "second.pem"]) {
    recordIngest(db, { at: T(12), file, credential: "a", outcome: "refused", check_name: "dn", reason: "wrong O", serial: null, sha256: null });
  }
  recordIngest(db, {
    at: T(12),
    file: "stray.pem",
    credential: null,
    outcome: "refused",
    check_name: "match",
    reason: "no CSR",
    serial: null,
    sha256: null,
  });
  recordTokenSuccess(db, {
    credential: "a",
    token_type: "Bearer",
    scope: "openid",
    obtained_at: T(12),
    expires_at: T(13),
    refresh_at: T(12),
    cert_version: 2,
    cert_sha256: "a-2",
  });
  const sent = enqueueMail(db, { mail: mail("<1@x>"), kind: "csr", credential: "a", now: new Date(T(10)) });
  markMailSent(db, sent, new Date(T(10)));
  enqueueMail(db, { mail: mail("<2@x>"), kind: "reminder", credential: "a", now: new Date(T(13)) });
  recordCheck(db, "a", new Date(T(14)), "boom");
  recordCheck(db, "b", new Date(T(14)));
  const s = { kind: "expiry", stage: "30", severity: "warning" as const, title: "t", detail: "d", action: "x" };
  upsertAlert(db, { ...s, credential: "a" }, T(14));
  upsertAlert(db, { ...s, credential: "b" }, T(14));
  resolveAlert(db, (db.prepare("SELECT id FROM alerts WHERE credential = 'b'").get() as { id: number }).id, T(15));
}

test("readSnapshot: one row per credential per table, as the per-credential queries would give", () => {
  const db = openDb(mkdtempSync(join(tmpdir(), "credd-snap-")));
  fill(db);
  const snap = readSnapshot(db);
  assert.equal(snap.live.get("a")?.version, 2, "the live version, not the first");
  const full = liveCertificate(db, "a")!;
  const live = snap.live.get("a")!;
  for (const k of Object.keys(live) as (keyof typeof live)[]) assert.equal(live[k], full[k], k);
  assert.ok(Object.keys(live).length >= 9, "every field status and the alert rules use");
  assert.equal(snap.live.has("c"), false);
  assert.equal(snap.pending.get("a")?.version, 3, "only the pending renewal");
  assert.equal(snap.pending.get("a")?.id, pendingRenewal(db, "a")?.id);
  assert.equal(snap.pending.get("a")?.probe_attempts, 0, "the probe fields come with it");
  assert.equal(snap.latestCsrAt.get("a"), T(10), "the latest CSR is the pending one's");
  assert.deepEqual(
    snap.hooks.get("a")?.map((h) => h.argv_json),
    ['["x"]', '["y"]'],
    "the last deploy's runs only",
  );
  assert.equal(snap.refusals.get("a")?.file, "second.pem", "the last refusal");
  assert.equal(snap.refusals.size, 1, "a refusal with no credential is not anyone's");
  assert.equal(snap.tokens.get("a")?.cert_version, 2);
  assert.deepEqual(
    snap.queued.map((q) => q.kind),
    ["reminder"],
    "sent mail is not queued",
  );
  assert.equal("mail_json" in snap.queued[0]!, false, "no message bodies");
  assert.equal(snap.checks.get("a")?.last_error, "boom");
  assert.deepEqual(
    snap.alerts.map((a) => a.credential),
    ["a"],
    "open alerts only",
  );
  db.close();
});

test("checkInputs and checkInputOf give what checkInput gives, credential by credential", async () => {
  const db = openDb(mkdtempSync(join(tmpdir(), "credd-snap-")));
  const store = sqliteStore(db);
  fill(db);
  const creds = ["a", "b", "c"].map(cred);
  const bulk = await checkInputs(store, creds);
  const snap = readSnapshot(db);
  for (const c of creds) {
    const one = await checkInput(store, c);
    assert.deepEqual(bulk.get(c.name), one, c.name);
    assert.deepEqual(checkInputOf(c, snap), one, c.name);
  }
  assert.equal(bulk.get("a")?.pending?.state, "sent");
  assert.equal(bulk.get("c")?.live, undefined);
  db.close();
});
