// Leadership (src/store/pg/leader.ts) with real PostgreSQL sessions: one of two contenders wins;
// a leader whose backend is terminated reports the loss from the connection's own event, before
// the other can take over; a leader whose server stops answering stops acting at its fence
// (confirm) while nobody else can take the lock; a clean release hands over at once; a server
// restart ends leadership and a later tryAcquire reconnects.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import type pg from "pg";
import { type PgTarget, pgTarget } from "../../src/store/pg/connect.js";
import { Leadership, type LeadershipLoss, NotLeaderError } from "../../src/store/pg/leader.js";
import { CREDD_LOCKS, LEADER_LOCK } from "../../src/store/pg/locks.js";
import { type PgCluster, postgresMissing, startPostgres } from "../helpers/postgres.js";

const skip = postgresMissing();

describe("leadership on a real PostgreSQL", { skip }, () => {
  let cluster: PgCluster;
  let work: string;
  let target: PgTarget;
  let admin: pg.Client;
  const open: Leadership[] = [];

  /** A contender, as one credd host would have, recording its losses and their order among `events`. */
  const events: string[] = [];
  const contender = (name: string, confirmTimeoutMs?: number) => {
    const losses: LeadershipLoss[] = [];
    let heard: (l: LeadershipLoss) => void = () => {};
    const lost = new Promise<LeadershipLoss>((resolve) => {
      heard = resolve;
    });
    const l = new Leadership(target, {
      ...(confirmTimeoutMs ? { confirmTimeoutMs } : {}),
      onLost: (loss) => {
        events.push(`${name} lost`);
        losses.push(loss);
        heard(loss);
      },
    });
    open.push(l);
    return { l, losses, lost };
  };

  /** The pid holding the leader lock, per the server (undefined: nobody). */
  const holder = async (): Promise<number | undefined> => {
    const r = await admin.query("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2 AND objsubid = 2", [
      CREDD_LOCKS,
      LEADER_LOCK,
    ]);
    return r.rows[0]?.pid;
  };
  /** Waits (bounded) until the server no longer lists `pid`: its session and its locks are gone. */
  const gone = async (pid: number) => {
    for (const until = Date.now() + 30_000; Date.now() < until; ) {
      const r = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1", [pid]);
      if (r.rows[0].n === 0) return;
      await new Promise((r) => setImmediate(r));
    }
    assert.fail(`backend ${pid} still there`);
  };

  before(async () => {
    cluster = await startPostgres();
    work = mkdtempSync(join(tmpdir(), "credd-pgl-"));
    const f = join(work, "url");
    writeFileSync(f, `${cluster.url}\n`, { mode: 0o600 });
    target = pgTarget({ urlFile: f });
    admin = await cluster.admin();
    admin.on("error", () => {}); // the restart test ends its session too
  });
  afterEach(async () => {
    for (const l of open.splice(0)) await l.close();
    events.length = 0;
  });
  after(async () => {
    await admin?.end().catch(() => undefined);
    await cluster?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("two contenders: exactly one wins, the server agrees, the other may not act", async () => {
    const a = contender("a");
    const b = contender("b");
    const got = await Promise.all([a.l.tryAcquire(), b.l.tryAcquire()]);
    assert.equal(got.filter(Boolean).length, 1, `one winner: ${got}`);
    const [winner, loser] = got[0] ? [a, b] : [b, a];
    assert.equal(winner.l.isLeader(), true);
    assert.equal(loser.l.isLeader(), false);
    assert.equal(await holder(), winner.l.backendPid(), "pg_locks shows the winner's backend holding the lock");
    await winner.l.confirm();
    await assert.rejects(loser.l.confirm(), NotLeaderError);
    assert.equal(await loser.l.tryAcquire(), false, "asking again changes nothing");
    assert.equal(await winner.l.tryAcquire(), true, "the leader asking again stays leader");
    assert.deepEqual(events, []);
  });

  test("the leader's backend terminated: it reports the loss at once, then the other acquires", async () => {
    const a = contender("a");
    const b = contender("b");
    assert.equal(await a.l.tryAcquire(), true);
    assert.equal(await b.l.tryAcquire(), false);
    const pid = a.l.backendPid()!;
    await admin.query("SELECT pg_terminate_backend($1)", [pid]);
    // No call into `a`: the loss comes from its connection's own event.
    const loss = await a.lost;
    assert.equal(loss.reason, "connection");
    assert.match(loss.message, /terminating connection due to administrator command/);
    assert.ok(!loss.message.includes(cluster.password));
    assert.equal(a.l.isLeader(), false);
    await assert.rejects(a.l.confirm(), NotLeaderError);
    await gone(pid);
    assert.equal(await b.l.tryAcquire(), true, "the follower takes over once the old session is gone");
    events.push("b acquired");
    assert.deepEqual(events, ["a lost", "b acquired"]);
    assert.equal(await a.l.tryAcquire(), false, "the old leader reconnects as a follower");
    assert.equal(await holder(), b.l.backendPid());
  });

  test("a leader whose server stops answering stops at its fence; nobody takes over until the session is gone", async (t) => {
    const a = contender("a", 500);
    const b = contender("b");
    assert.equal(await a.l.tryAcquire(), true);
    const pid = a.l.backendPid()!;
    // The backend frozen: the connection stays open but nothing answers (a server hang, a network cut).
    try {
      process.kill(pid, "SIGSTOP");
    } catch (err) {
      return t.skip(`cannot stop the server's backend ${pid} from this user: ${(err as Error).message}`);
    }
    try {
      const err = await a.l.confirm().then(
        () => assert.fail("confirmed on a frozen backend"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof NotLeaderError);
      assert.match(err.message, /did not confirm the leadership lock within 500 ms: this host stops acting/);
      assert.equal(a.l.isLeader(), false);
      assert.equal((await a.lost).reason, "timeout");
      // The frozen session still holds the lock: a second leader now would be two leaders at once.
      assert.equal(await b.l.tryAcquire(), false);
      assert.equal(await holder(), pid);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await gone(pid); // it reads the closed connection and exits
    assert.equal(await b.l.tryAcquire(), true);
  });

  test("one host asking twice at once: one session, the lock taken once, so one release frees it", async () => {
    const a = contender("a");
    const b = contender("b");
    assert.deepEqual(await Promise.all([a.l.tryAcquire(), a.l.tryAcquire()]), [true, true]);
    const sessions = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'credd leadership'");
    assert.equal(sessions.rows[0].n, 1);
    await a.l.release();
    assert.equal(await b.l.tryAcquire(), true, "released for good");
  });

  test("a clean release hands over at once, with no loss reported", async () => {
    const a = contender("a");
    const b = contender("b");
    assert.equal(await a.l.tryAcquire(), true);
    await a.l.release();
    assert.equal(a.l.isLeader(), false);
    await assert.rejects(a.l.confirm(), NotLeaderError);
    assert.equal(await b.l.tryAcquire(), true);
    await b.l.confirm();
    assert.equal(await a.l.tryAcquire(), false, "a stays connected and follows");
    assert.deepEqual(a.losses, []);
  });

  test("the server restarted: leadership ends with the connection; a later tryAcquire reconnects", async () => {
    const a = contender("a");
    assert.equal(await a.l.tryAcquire(), true);
    await cluster.stop();
    const loss = await a.lost;
    assert.equal(loss.reason, "connection");
    assert.equal(a.l.isLeader(), false);
    await assert.rejects(a.l.tryAcquire(), /cannot connect to PostgreSQL .*ECONNREFUSED|cannot connect to PostgreSQL .*(starting up|shutting down)/);
    await cluster.start();
    admin = await cluster.admin();
    admin.on("error", () => {});
    assert.equal(await a.l.tryAcquire(), true);
    await a.l.confirm();
  });
});
