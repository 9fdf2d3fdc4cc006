// checkCredential with facts read earlier in the same check (checkAll reads them all at once):
// another process may have changed the database since, so they never decide an action alone.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { ManualClock } from "../helpers/clock.js";
import { parseConfig } from "../../src/config/load.js";
import { checkAll, checkCredential } from "../../src/core/check.js";
import { sqliteCtx, type TestCtx } from "../helpers/ctx.js";
import { checkInputs } from "../../src/core/facts.js";
import { createLogger } from "../../src/log.js";
import { makeMailerFactory } from "../../src/mail/factory.js";
import { openDb } from "../../src/store/db.js";
import { NotLeaderError } from "../../src/store/pg/leader.js";
import { insertRenewal, markCsrSent } from "../../src/store/renewals.js";
import { credentialYaml, smallConfigYaml } from "../helpers/credd.js";
import { makeTempDir } from "../helpers/openssl.js";

function makeCtx(clock: ManualClock): TestCtx {
  const dir = makeTempDir("credd-check-");
  const config = parseConfig(
    smallConfigYaml({ top: [`state_dir: ${join(dir, "state")}`], credentials: [credentialYaml("fleet-prod", "MZP128745", "auto_enroll: true")] }),
    join(dir, "credd.yaml"),
  );
  return sqliteCtx({ config, db: openDb(config.state_dir), clock, log: createLogger({ level: "silent" }), mailer: makeMailerFactory(config) });
}

test("facts read before another process started a renewal do not start a second one", async () => {
  const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
  const ctx = makeCtx(clock);
  const cred = ctx.config.credentials[0]!;
  const stale = (await checkInputs(ctx.store, [cred])).get(cred.name)!;
  assert.equal(stale.pending, undefined, "read when nothing was pending (auto_enroll: enroll due)");
  // Meanwhile `credd enroll` (another process) made a key and sent the CSR.
  const id = insertRenewal(ctx.db, {
    credential: cred.name,
    version: 1,
    kind: "enroll",
    forced: 0,
    reason: "by hand",
    spki_sha256: "k",
    key_type: "rsa2048",
    created_at: clock.now().toISOString(),
  });
  markCsrSent(ctx.db, id, clock.now().toISOString());
  const decision = await checkCredential(ctx, cred, stale);
  assert.equal(decision.action, "none", "decided on the facts as they are now");
  const rows = ctx.db.prepare("SELECT id FROM renewals WHERE credential = ?").all(cred.name);
  assert.equal(rows.length, 1, "no second key or CSR");
  ctx.db.close();
});

test("checkAll records every credential's heartbeat", async () => {
  const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
  const ctx = makeCtx(clock);
  const cred = ctx.config.credentials[0]!;
  const id = insertRenewal(ctx.db, {
    credential: cred.name,
    version: 1,
    kind: "enroll",
    forced: 0,
    reason: "by hand",
    spki_sha256: "k",
    key_type: "rsa2048",
    created_at: clock.now().toISOString(),
  });
  markCsrSent(ctx.db, id, clock.now().toISOString());
  const s = await checkAll(ctx);
  assert.deepEqual(s, { checked: 1, failed: [] });
  const beat = ctx.db.prepare("SELECT last_check_at FROM checks WHERE credential = ?").get(cred.name) as { last_check_at: string };
  assert.equal(beat.last_check_at, clock.now().toISOString());
  ctx.db.close();
});

test("a lost leader stops checking at the first NotLeaderError and records no check failure", async () => {
  const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
  const dir = makeTempDir("credd-check-lost-");
  const config = parseConfig(
    smallConfigYaml({
      top: [`state_dir: ${join(dir, "state")}`],
      credentials: [credentialYaml("fleet-a", "MZP128745", "auto_enroll: true"), credentialYaml("fleet-b", "MZP128746", "auto_enroll: true")],
    }),
    join(dir, "credd.yaml"),
  );
  const ctx = sqliteCtx({ config, db: openDb(config.state_dir), clock, log: createLogger({ level: "silent" }), mailer: makeMailerFactory(config) });
  // Both need an enrolment; the fence before the first key says this host no longer leads.
  let fenced = 0;
  ctx.fence = async () => {
    fenced++;
    throw new NotLeaderError("leadership lost: terminating connection due to administrator command");
  };
  const s = await checkAll(ctx);
  assert.deepEqual(s.failed, [], "not a check failure");
  assert.equal(s.notLeader, true);
  assert.equal(fenced, 1, "stopped at the first refusal: the second credential is not tried");
  const errors = ctx.db.prepare("SELECT credential FROM checks WHERE last_error IS NOT NULL").all();
  assert.deepEqual(errors, [], "no failed check recorded in the checks table");
  assert.equal((ctx.db.prepare("SELECT count(*) AS n FROM renewals").get() as { n: number }).n, 0, "no key or CSR made");
  ctx.db.close();
});
