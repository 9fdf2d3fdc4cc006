// The async Store on SQLite (src/store/sqlite-store.ts) on a real file: tx commits or rolls back as
// one, holds every other call at the gate while it is open, refuses nesting and misuse instead of
// hanging, and takes SQLite's write lock at BEGIN (IMMEDIATE), so another process waits or fails then.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { getMeta } from "../../src/store/checks.js";
import { openDb } from "../../src/store/db.js";
import { queuedMails } from "../../src/store/outbox.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";

const tmp = () => mkdtempSync(join(tmpdir(), "credd-async-store-"));
const mail = (id: string) => ({ messageId: id, from: "a@b", to: ["c@d"], cc: [], subject: "s", text: "t", attachments: [] });
const now = new Date("2026-11-26T10:00:00Z");

/** A promise and the function that settles it: lets a test hold a transaction open as long as it wants. */
function latch(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

test("tx commits every write at once; a throw inside rolls all of them back and comes out as thrown", async () => {
  const store = openSqliteStore(tmp());
  const id = await store.tx(async (s) => {
    await s.setMeta("a", "1");
    return s.enqueueMail({ mail: mail("<1@x>"), kind: "csr", now });
  });
  assert.equal(await store.getMeta("a"), "1");
  assert.deepEqual(
    (await store.queuedMails()).map((m) => m.id),
    [id],
  );

  const boom = new Error("boom");
  await assert.rejects(
    store.tx(async (s) => {
      await s.setMeta("b", "2");
      await s.enqueueMail({ mail: mail("<2@x>"), kind: "csr", now });
      throw boom;
    }),
    (err) => err === boom,
  );
  assert.equal(await store.getMeta("b"), undefined, "the first write was rolled back");
  assert.equal((await store.queuedMails()).length, 1, "and the second");
  assert.equal(store.db.inTransaction, false);
  // The store works on after a rollback.
  await store.tx((s) => s.setMeta("c", "3"));
  assert.equal(getMeta(store.db, "c"), "3");
  await store.close();
});

test("while a tx is open, other calls wait at the gate: nothing lands inside it, and they run once it ends", async () => {
  const store = openSqliteStore(tmp());
  const hold = latch();
  const order: string[] = [];
  const inside = store.tx(async (s) => {
    await s.setMeta("k", "from the tx");
    order.push("tx wrote");
    await hold.promise; // the transaction stays open across an await (a PostgreSQL round trip, later)
    order.push("tx ends");
    throw new Error("rolled back");
  });
  // Another task writes and reads meanwhile: without the gate its write would join the open
  // transaction and be rolled back with it, and its read would see the uncommitted value.
  const outsideWrite = store.setMeta("other", "kept").then(() => order.push("outer write"));
  const outsideRead = store.getMeta("k").then((v) => {
    order.push("outer read");
    return v;
  });
  const secondTx = store.tx(async (s) => {
    order.push("second tx");
    await s.setMeta("second", "yes");
  });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ["tx wrote"], "nothing ran while the transaction was open");
  hold.open();
  await assert.rejects(inside, /rolled back/);
  await Promise.all([outsideWrite, secondTx]);
  assert.equal(await outsideRead, undefined, "the read saw the state after the rollback");
  assert.equal(order.slice(0, 2).join(","), "tx wrote,tx ends");
  assert.equal(await store.getMeta("other"), "kept", "the outer write survived the rollback");
  assert.equal(await store.getMeta("second"), "yes");
  assert.equal(await store.getMeta("k"), undefined);
  await store.close();
});

test("a tx inside a tx, or the outer store used inside a tx, is refused at once instead of waiting forever", async () => {
  const store = openSqliteStore(tmp());
  await assert.rejects(
    store.tx(async (s) => {
      await s.setMeta("x", "1");
      await s.tx(async () => {});
    }),
    /nested transactions are not supported/,
  );
  await assert.rejects(
    store.tx(async () => {
      await store.tx(async () => {});
    }),
    /nested transactions are not supported/,
  );
  await assert.rejects(
    store.tx(async (s) => {
      await s.setMeta("y", "1");
      await store.setMeta("z", "1");
    }),
    /use the store handed to tx's fn/,
  );
  assert.equal(await store.getMeta("x"), undefined);
  assert.equal(await store.getMeta("y"), undefined);
  assert.equal(await store.getMeta("z"), undefined);
  // A transaction's store kept beyond its end is refused: it would bypass the gate.
  let kept: typeof store | undefined;
  await store.tx(async (s) => {
    kept = s as typeof store;
  });
  await assert.rejects(kept!.setMeta("late", "1"), /after the transaction ended/);
  await store.close();
});

test("BEGIN IMMEDIATE: the write lock is taken when the tx starts, so another connection cannot write meanwhile", async () => {
  const dir = tmp();
  const store = openSqliteStore(dir);
  const other = openDb(dir, { busyTimeoutMs: 0 });
  const hold = latch();
  const inside = store.tx(async () => {
    await hold.promise; // no statement yet: a deferred BEGIN would hold no lock here
  });
  await new Promise((r) => setImmediate(r));
  assert.throws(() => other.prepare("INSERT INTO meta (key, value) VALUES ('o', '1')").run(), /locked|busy/i);
  hold.open();
  await inside;
  other.prepare("INSERT INTO meta (key, value) VALUES ('o', '1')").run();
  assert.equal(await store.getMeta("o"), "1");
  assert.deepEqual(queuedMails(other), []);
  other.close();
  await store.close();
});
