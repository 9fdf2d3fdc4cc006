// Go-live's store half (golive.ts markLiveInDb) is a transaction that re-reads, locked, the live
// version and the renewal's state: a second host (or a second run) that finds the work done changes
// nothing and logs it. On SQLite, and on PostgreSQL with two stores (two hosts) going live at once.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { Ctx } from "../../src/core/context.js";
import { markLiveInDb } from "../../src/core/golive.js";
import type { Logger } from "../../src/log.js";
import { pgTarget } from "../../src/store/pg/connect.js";
import { migratePg } from "../../src/store/pg/migrate.js";
import { openPgStore } from "../../src/store/pg/pg-store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { CertificateRow, Store } from "../../src/store/store.js";
import { ManualClock } from "../helpers/clock.js";
import { postgresMissing, startPostgres } from "../helpers/postgres.js";

const work = mkdtempSync(join(tmpdir(), "credd-golive-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** A Ctx with only what markLiveInDb reads (store, clock, log), and the messages it logged. */
function ctxOn(store: Store): { ctx: Ctx; logged: string[] } {
  const logged: string[] = [];
  const log = { info: (_o: unknown, msg: string) => logged.push(msg), warn: () => undefined, error: () => undefined } as unknown as Logger;
  const ctx = { store, clock: new ManualClock(new Date("2026-11-25T15:00:00.000Z")), log } as unknown as Ctx;
  return { ctx, logged };
}

/** alpha v1 live, renewal for v2 signed and its certificate installed: the state before a go-live. */
async function beforeGoLive(s: Store): Promise<CertificateRow> {
  const base = {
    credential: "alpha",
    not_before: "2026-11-01T00:00:00.000Z",
    not_after: "2027-11-25T15:00:00.000Z",
    subject: "CN=alpha",
    issuer: "CN=CA",
    installed_at: "2026-11-20T00:00:00.000Z",
  };
  await s.insertInstalledCertificate({ ...base, version: 1, serial: "01", spki_sha256: "s1", sha256: "h1", source: "import", renewal_id: null });
  await s.makeLive("alpha", 1, "2026-11-20T00:00:00.000Z");
  const rid = await s.insertRenewal({
    credential: "alpha",
    version: 2,
    kind: "renew",
    forced: 0,
    reason: "30 days left",
    spki_sha256: "s2",
    key_type: "rsa-3072",
    created_at: "2026-11-21T00:00:00.000Z",
  });
  await s.setRenewalState(rid, "signed", "2026-11-22T00:00:00.000Z");
  await s.insertInstalledCertificate({ ...base, version: 2, serial: "02", spki_sha256: "s2", sha256: "h2", source: "renewal", renewal_id: rid });
  return (await s.certificateByVersion("alpha", 2))!;
}

const ALREADY = "certificate already recorded live (by another host or an earlier run): nothing changed";

describe("go-live re-checks inside its transaction", () => {
  test("SQLite: the first run records it live, a second finds it done and changes nothing", async () => {
    const store = openSqliteStore(mkdtempSync(join(work, "sqlite-")));
    try {
      const row = await beforeGoLive(store);
      const { ctx, logged } = ctxOn(store);
      assert.equal(await markLiveInDb(ctx, row), true);
      const live = await store.liveCertificate("alpha");
      assert.equal(live?.version, 2);
      assert.equal((await store.getRenewal(row.renewal_id!))?.state, "live");
      const stateSince = (await store.getRenewal(row.renewal_id!))?.state_since;
      (ctx.clock as ManualClock).advance(60_000);
      assert.equal(await markLiveInDb(ctx, row), false);
      assert.deepEqual(logged, [ALREADY]);
      assert.equal((await store.getRenewal(row.renewal_id!))?.state_since, stateSince, "the renewal row is not written again");
      assert.deepEqual(await store.liveCertificate("alpha"), live);
    } finally {
      await store.close();
    }
  });

  test("SQLite: a rollback (an older version, its renewal long live) is still recorded", async () => {
    const store = openSqliteStore(mkdtempSync(join(work, "sqlite-")));
    try {
      const row = await beforeGoLive(store);
      const { ctx } = ctxOn(store);
      assert.equal(await markLiveInDb(ctx, row), true);
      const v1 = (await store.certificateByVersion("alpha", 1))!;
      assert.equal(await markLiveInDb(ctx, v1), true);
      assert.equal((await store.liveCertificate("alpha"))?.version, 1);
    } finally {
      await store.close();
    }
  });

  test("PostgreSQL: two hosts recording the same go-live at once: exactly one does it", { skip: postgresMissing() }, async () => {
    const cluster = await startPostgres();
    try {
      const f = join(work, "url");
      writeFileSync(f, `${cluster.url}\n`, { mode: 0o600 });
      const target = pgTarget({ urlFile: f });
      await migratePg(target);
      const a = openPgStore(target);
      const b = openPgStore(target);
      try {
        const row = await beforeGoLive(a);
        const hostA = ctxOn(a);
        const hostB = ctxOn(b);
        const results = await Promise.all([markLiveInDb(hostA.ctx, row), markLiveInDb(hostB.ctx, row)]);
        assert.deepEqual([...results].sort(), [false, true], "one records it, the other finds it done");
        assert.deepEqual([...hostA.logged, ...hostB.logged], [ALREADY]);
        assert.equal((await b.liveCertificate("alpha"))?.version, 2);
        assert.equal((await b.getRenewal(row.renewal_id!))?.state, "live");
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      await cluster.destroy();
    }
  });
});
