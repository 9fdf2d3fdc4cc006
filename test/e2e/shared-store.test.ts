// Two `credd run` processes on one PostgreSQL store (issue 17, docs/shared-store.md): exactly one
// leads; the renewal's CSR is emailed once; kill -9 the leader and the other leads within one check
// interval, with no second CSR; `credd status` on either host shows both hosts and which leads; a
// leader whose leadership session is terminated (pg_terminate_backend) stops acting before any
// host leads again; tokens are per host. Needs Debian's postgresql (skipped with one line without it).
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import { type Daemon, dnFor, runCredd, startCreddDaemon } from "../helpers/credd.js";
import { makeKeyAndCert, makeTempDir, signCsr, type TestCa } from "../helpers/openssl.js";
import { type PgCluster, postgresMissing } from "../helpers/postgres.js";
import { at, isCsrSent, type Line, leadsNow, lost, type SharedWorld, startSharedWorld } from "../helpers/shared-store.js";
import type { TestSmtpServer } from "../helpers/smtp.js";
import type { FakeStellantis } from "../helpers/stellantis.js";
import { X509Certificate } from "node:crypto";

const skip = postgresMissing();
/** check_schedule of both hosts: every second (node-cron's seconds field), so a takeover is quick to see. */
const CHECK_MS = 1_000;

describe("two credd run hosts on one PostgreSQL", { skip }, () => {
  let world: SharedWorld;
  let cluster: PgCluster;
  let smtp: TestSmtpServer;
  let ca: TestCa;
  let admin: pg.Client;
  let fake: FakeStellantis;
  let daemons: Daemon[];

  before(async () => {
    world = await startSharedWorld();
    ({ cluster, smtp, ca, fake, daemons } = world);
    admin = await cluster.admin();
  });
  after(async () => {
    await admin?.end();
    await world?.close();
  });

  /** One host's config: its own state_dir and runtime_dir, the shared store's url and KEK files (test/helpers/shared-store.ts). */
  const hostConfig = (root: string, name: string, db: string, kekByte = 7, credExtra = ""): string =>
    world.hostConfig(root, name, db, kekByte, credExtra);
  const start = (config: string, host: string): Daemon => world.start(config, host);
  const freshDb = (name: string): Promise<string> => world.freshDb(name);
  const status = (config: string) => world.status(config);

  test("one leader, one CSR email; kill -9 the leader and the other leads within one check interval", async () => {
    const root = makeTempDir("credd-e2e-shared-");
    const db = await freshDb("two_hosts");
    const configA = hostConfig(root, "a", db);
    const configB = hostConfig(root, "b", db);
    // A hand-made certificate with 20 days left, imported into the shared store: renewal is due.
    const hand = makeKeyAndCert(root, dnFor("MZP128745"), { ca, days: 20 });
    const imp = await runCredd(["--config", configA, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath]);
    assert.equal(imp.code, 0, imp.stderr);

    const mailsBefore = smtp.received.length;
    // host-a (where the certificate was imported) starts first and leads; host-b follows.
    const a = start(configA, "host-a");
    await a.waitForLog(leadsNow, 20_000);
    const b = start(configB, "host-b");
    const first = a;
    const other = b;
    await first.waitForLog(isCsrSent, 20_000);
    // Both heartbeat; the other follows (it ran at least two check ticks as a follower).
    await other.waitForLog((l) => l.msg === "follower tick: another host leads", 10_000);
    await other.waitForLog(
      (l) => l.msg === "follower tick: another host leads",
      10_000,
      other.lines.findIndex((l) => l.msg === "follower tick: another host leads") + 1,
    );
    assert.equal(other.lines.filter(leadsNow).length, 0, "the other host never led while the first did");
    assert.equal(other.lines.filter(isCsrSent).length, 0, "the follower sends nothing");

    const s1 = await status(configB);
    const names = s1.hosts.map((h) => h.name).sort();
    assert.deepEqual(names, ["host-a", "host-b"]);
    const leaderName = first === a ? "host-a" : "host-b";
    assert.deepEqual(
      s1.hosts.filter((h) => h.role === "leader").map((h) => h.name),
      [leaderName],
      "status shows which host leads",
    );
    assert.ok(s1.hosts.every((h) => typeof h.last_heartbeat_at === "string" && h.stale === false));
    assert.equal(s1.hosts_warning, null, "a standby is there: no warning");

    // The follower's live/ is the store's live version (imported on host-a), key unsealed, 0600.
    const liveA = join(root, "a/state/credentials/fleet-prod/live");
    const liveB = join(root, "b/state/credentials/fleet-prod/live");
    for (const f of ["cert.pem", "chain.pem", "key.pem"])
      assert.deepEqual(readFileSync(join(liveB, f)), readFileSync(join(liveA, f)), `follower live/${f}`);
    assert.equal(statSync(join(liveB, "key.pem")).mode & 0o777, 0o600);
    // The pending renewal's key and CSR reach the follower's archive/ too (so it can take over).
    const archA = join(root, "a/state/credentials/fleet-prod/archive");
    const archB = join(root, "b/state/credentials/fleet-prod/archive");
    assert.deepEqual(readFileSync(join(archB, "key-2.pem")), readFileSync(join(archA, "key-2.pem")));
    assert.deepEqual(readFileSync(join(archB, "csr-2.pem")), readFileSync(join(archA, "csr-2.pem")));
    assert.equal(statSync(join(archB, "key-2.pem")).mode & 0o777, 0o600);

    // kill -9 the leader: its session closes, the lock is free, the follower takes it at its next tick.
    const killedAt = Date.now();
    first.child.kill("SIGKILL");
    await first.exited;
    const took = await other.waitForLog(leadsNow, 10_000);
    const failover = at(took) - killedAt;
    assert.ok(failover <= CHECK_MS + 1_000, `failover took ${failover} ms, more than one check interval (${CHECK_MS} ms) and a second`);
    // The new leader checks and delivers; the pending renewal's CSR is not made or sent again.
    const afterTake = other.lines.length;
    await other.waitForLog((l) => l.msg === "check done", 10_000, afterTake);
    await other.waitForLog((l) => l.msg === "check done", 10_000, other.lines.findIndex((l, i) => i >= afterTake && l.msg === "check done") + 1);
    const csrMails = smtp.received
      .slice(mailsBefore)
      .filter((m) => /renewal/.test(m.parsed.subject ?? "") && !m.parsed.subject?.startsWith("[credd]"));
    assert.equal(csrMails.length, 1, "exactly one CSR email for the renewal");
    assert.equal(other.lines.filter(isCsrSent).length, 0, "the new leader sends no second CSR");

    // Status: the killed host goes stale, the new leader leads, and the missing standby is a warning.
    await other.waitForLog((l) => l.msg === "check done", 10_000, other.lines.length);
    await other.waitForLog((l) => l.msg === "check done", 10_000, other.lines.length);
    await other.waitForLog((l) => l.msg === "check done", 10_000, other.lines.length);
    const s2 = await status(first === a ? configB : configA);
    const byName = new Map(s2.hosts.map((h) => [h.name, h]));
    const otherName = leaderName === "host-a" ? "host-b" : "host-a";
    assert.equal(byName.get(otherName)?.role, "leader");
    assert.equal(byName.get(leaderName)?.stale, true, "the killed host is stale");
    assert.match(s2.hosts_warning ?? "", /no standby/);
    assert.notEqual(s2.status, "ok", "a missing standby is a warning");
    assert.ok(!other.lines.some((l) => l.msg === "check failed"), "the new leader has every key it needs");

    // A third host with another key-encryption key: refused at start, loudly; nothing written.
    const c = await runCredd(["--config", hostConfig(root, "c", db, 9), "run"], { CREDD_HOST_NAME: "host-c" });
    assert.equal(c.code, 1, c.stdout + c.stderr);
    assert.match(
      c.stderr + c.stdout,
      /key-encryption key [0-9a-f]{16}, but the private keys in PostgreSQL .* are sealed under [0-9a-f]{16}.*does not re-enroll/,
    );
    assert.ok(!existsSync(join(root, "c/state/credentials/fleet-prod/live/key.pem")));
    assert.equal(await other.stop(), 0);
  });

  test("a leader whose session is terminated (pg_terminate_backend) stops acting before another leads", async () => {
    const root = makeTempDir("credd-e2e-shared-cut-");
    const db = await freshDb("cut_off");
    const a = start(hostConfig(root, "a", db), "host-a");
    await a.waitForLog(leadsNow, 20_000);
    const b = start(hostConfig(root, "b", db), "host-b");
    await b.waitForLog((l) => l.msg === "follower tick: another host leads", 20_000);
    // The backend holding the leadership lock (cred, 2) in this database is host-a's.
    const held = await admin.query(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = 2
         AND database = (SELECT oid FROM pg_database WHERE datname = $2)`,
      [0x63726564, db],
    );
    assert.equal(held.rows.length, 1, "one leadership lock held");
    const aLeadCount = a.lines.filter(leadsNow).length;
    await admin.query("SELECT pg_terminate_backend($1)", [held.rows[0].pid]);
    const loss = await a.waitForLog(lost, 10_000);
    // Someone leads again at a later tick (either host: the lock is free once the session is gone).
    const next = await Promise.race([b.waitForLog(leadsNow, 10_000), a.waitForLog(leadsNow, 10_000, a.lines.findIndex(lost) + 1)]);
    assert.ok(at(loss) <= at(next), "the old leader stopped before anyone led again");
    assert.ok(a.lines.filter(leadsNow).length >= aLeadCount);
    // Exactly one leader in the end.
    const after = await admin.query(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = 2
         AND database = (SELECT oid FROM pg_database WHERE datname = $2)`,
      [0x63726564, db],
    );
    assert.equal(after.rows[0].n, 1);
    assert.equal(await a.stop(), 0);
    assert.equal(await b.stop(), 0);
  });

  test("tokens are per host: each host fetches its own into its own runtime_dir", async () => {
    const root = makeTempDir("credd-e2e-shared-tok-");
    const db = await freshDb("tokens");
    const oauth = `    oauth: { token_url: "${fake.tokenUrl}", client_id: partner-client, scope: openid }\n`;
    const configA = hostConfig(root, "a", db, 7, oauth);
    const configB = hostConfig(root, "b", db, 7, oauth);
    const hand = makeKeyAndCert(root, dnFor("MZP128745"), { ca, days: 365 });
    fake.register(new X509Certificate(readFileSync(hand.certPath)).fingerprint256);
    const imp = await runCredd(["--config", configA, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath], {
      CREDD_HOST_NAME: "host-a",
    });
    assert.equal(imp.code, 0, imp.stderr);
    const a = start(configA, "host-a");
    await a.waitForLog(leadsNow, 20_000);
    const b = start(configB, "host-b");
    await b.waitForLog((l) => l.msg === "follower tick: another host leads", 20_000);
    // The follower materialises live/ and then fetches its own token with it.
    const tokenB = join(root, "b/run/fleet-prod/token.json");
    for (let i = 0; i < 10 && !existsSync(tokenB); i++) await b.waitForLog(() => true, 10_000, b.lines.length);
    assert.ok(
      existsSync(tokenB),
      `host-b has its own token file\n${b.lines
        .filter((l) => l.msg !== "follower tick: another host leads")
        .map((l) => JSON.stringify(l))
        .join("\n")}`,
    );
    assert.ok(existsSync(join(root, "a/run/fleet-prod/token.json")));
    // admin is connected to the cluster's default database: read this test's one.
    const dbAdmin = await cluster.admin(db);
    try {
      const r = await dbAdmin.query("SELECT host FROM tokens WHERE credential = 'fleet-prod' AND expires_at IS NOT NULL ORDER BY host");
      assert.deepEqual(
        r.rows.map((x) => x.host),
        ["host-a", "host-b"],
        "one token row per host",
      );
    } finally {
      await dbAdmin.end();
    }
    assert.equal(await a.stop(), 0);
    assert.equal(await b.stop(), 0);
  });

  test("the mailbox source runs on the leader only, and starts on the host that takes over", async () => {
    const root = makeTempDir("credd-e2e-shared-mbox-");
    const db = await freshDb("mailbox_lead");
    const withMaildir = (name: string): string => {
      const md = join(root, `maildir-${name}`);
      for (const sub of ["new", "cur", "tmp"]) mkdirSync(join(md, sub), { recursive: true, mode: 0o700 });
      return hostConfig(root, name, db, 7, `mailbox:\n  maildir: ${md}\n`);
    };
    const watching = (l: Line) => l.msg === "mailbox: watching the Maildir for Stellantis' replies";
    const a = start(withMaildir("a"), "host-a");
    await a.waitForLog(leadsNow, 20_000);
    await a.waitForLog(watching, 10_000);
    const b = start(withMaildir("b"), "host-b");
    const firstTick = await b.waitForLog((l) => l.msg === "follower tick: another host leads", 20_000);
    await b.waitForLog((l) => l.msg === "follower tick: another host leads", 10_000, b.lines.indexOf(firstTick) + 1);
    assert.ok(!b.lines.some((l) => String(l.msg).startsWith("mailbox:")), "the follower does not run the mailbox source");
    // The leader dies: the host that takes over starts the source.
    a.child.kill("SIGKILL");
    await a.exited;
    const took = await b.waitForLog(leadsNow, 10_000);
    await b.waitForLog(watching, 10_000, b.lines.indexOf(took));
    assert.equal(await b.stop(), 0);
  });

  test("a SIGHUP with a changed store: or key files is refused with the reason; the host keeps running on the old store", async () => {
    const root = makeTempDir("credd-e2e-shared-hup-");
    const db = await freshDb("reload_store");
    const config = hostConfig(root, "a", db);
    const a = start(config, "host-a");
    await a.waitForLog(leadsNow, 20_000);
    // The same config on SQLite: the store: section removed.
    const text = readFileSync(config, "utf8");
    writeFileSync(config, text.replace(/store:\n {2}postgres:\n( {4}.*\n)+/, ""));
    assert.doesNotMatch(readFileSync(config, "utf8"), /postgres/);
    const mark = a.lines.length;
    a.child.kill("SIGHUP");
    const refused = await a.waitForLog((l) => l.msg === "config reload refused: the running config is kept", 20_000, mark);
    assert.match(String(refused.fix), /restart credd/);
    assert.match(String(refused.err), /store changed from postgres .* to sqlite: restart credd/);
    assert.ok(!a.lines.slice(mark).some((l) => l.msg === "config reloaded"));
    // Still leading on PostgreSQL: its heartbeat goes on in the shared hosts table.
    await a.waitForLog((l) => l.msg === "check done", 10_000, a.lines.indexOf(refused));
    const dbAdmin = await cluster.admin(db);
    try {
      const r = await dbAdmin.query("SELECT role FROM hosts WHERE name = 'host-a' AND last_heartbeat_at > now() - interval '5 seconds'");
      assert.deepEqual(
        r.rows.map((x) => x.role),
        ["leader"],
      );
    } finally {
      await dbAdmin.end();
    }
    // The key ring is read at start only: a reload that changes it (here a previous key added, step 2
    // of a rotation) is refused the same way, not taken in silence with the old ring kept.
    const previous = join(root, "store-kek.new");
    writeFileSync(previous, `${Buffer.alloc(32, 8).toString("base64")}\n`, { mode: 0o600 });
    const withPrevious = text.replace(/( {4}key_encryption_key_file: .*\n)/, `$1    previous_key_encryption_key_files: [${previous}]\n`);
    assert.notEqual(withPrevious, text);
    writeFileSync(config, withPrevious);
    const mark2 = a.lines.length;
    a.child.kill("SIGHUP");
    const refused2 = await a.waitForLog((l) => l.msg === "config reload refused: the running config is kept", 20_000, mark2);
    assert.match(String(refused2.fix), /restart credd/);
    assert.match(
      String(refused2.err),
      /store changed from postgres \(.*\) to postgres \(.*previous_key_encryption_key_files \[\S*store-kek\.new\]\): restart credd/,
    );
    assert.ok(!a.lines.slice(mark2).some((l) => l.msg === "config reloaded"));
    assert.ok(!a.lines.some((l) => JSON.stringify(l).includes(Buffer.alloc(32, 8).toString("base64"))), "never a byte of the key");
    assert.equal(a.child.exitCode, null);
    assert.equal(await a.stop(), 0);
  });

  test("PostgreSQL stopped under a running host: the daemon lives through it, logs it, and works again after", async () => {
    const root = makeTempDir("credd-e2e-shared-down-");
    const db = await freshDb("outage");
    const oauth = `    oauth: { token_url: "${fake.tokenUrl}", client_id: partner-client, scope: openid }\n`;
    const config = hostConfig(root, "a", db, 7, oauth);
    // credd's clock: moved past the 3-minute mark during the outage (no file yet: no offset).
    const clockFile = join(root, "clock-offset");
    const hand = makeKeyAndCert(root, dnFor("MZP128745"), { ca, days: 365 });
    fake.register(new X509Certificate(readFileSync(hand.certPath)).fingerprint256);
    const imp = await runCredd(["--config", config, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath], {
      CREDD_HOST_NAME: "host-a",
    });
    assert.equal(imp.code, 0, imp.stderr);
    const a = startCreddDaemon(["--config", config, "run"], {
      CREDD_HOST_NAME: "host-a",
      CREDD_OUTBOX_TICK_MS: "200",
      CREDD_INBOX_POLL_MS: "200",
      CREDD_TOKEN_TICK_MS: "100",
      CREDD_CLOCK_FILE: clockFile,
    });
    daemons.push(a);
    const mailsBefore = smtp.received.length;
    await a.waitForLog(leadsNow, 20_000);
    const token = join(root, "a/run/fleet-prod/token.json");
    for (let i = 0; i < 20 && !existsSync(token); i++) await a.waitForLog(() => true, 10_000, a.lines.length);
    assert.ok(existsSync(token), "a token before the outage");
    const tokenBefore = readFileSync(token, "utf8");

    // The outage: every loop meets a refusing store for several ticks. (The test's own admin session
    // is cut too: its error is expected, and it is connected again after.)
    admin.on("error", () => undefined);
    await cluster.stop();
    const down = a.lines.length;
    const failed = (step: string) => (l: Line) => l.step === step && /the store failed/.test(String(l.msg));
    await a.waitForLog(failed("token read"), 10_000, down);
    await a.waitForLog(failed("heartbeat"), 10_000, down);
    // A few more ticks of every loop (check every second, token every 100 ms, outbox and inbox 200 ms).
    const checkTicks = () =>
      a.lines.slice(down).filter(failed("heartbeat")).length + a.lines.slice(down).filter((l) => /leadership/.test(String(l.msg))).length;
    for (let i = 0; i < 4; i++) await a.waitForLog(() => true, 10_000, a.lines.length);
    await new Promise((r) => setTimeout(r, 2_500)); // real ticks of the running daemon, not timing of the code under test
    assert.equal(
      a.child.exitCode,
      null,
      `the daemon is still running\n${a.lines
        .slice(down)
        .map((l) => JSON.stringify(l))
        .join("\n")}`,
    );
    assert.ok(checkTicks() >= 1);
    // Logged once per distinct error (the session cut, then connection refused), not at each of ~25 ticks.
    const tokenErrors = a.lines.slice(down).filter(failed("token read"));
    assert.ok(tokenErrors.length <= 5, `logged once per distinct error: ${tokenErrors.map((l) => l.err).join(" | ")}`);
    assert.ok(
      tokenErrors.every((l, i) => i === 0 || l.err !== tokenErrors[i - 1]!.err),
      "never the same error twice in a row",
    );
    assert.ok(!a.lines.some((l) => l.level === 60 || l.level === "fatal"), "no fatal error");
    assert.equal(readFileSync(token, "utf8"), tokenBefore, "the token file is still served during the outage");
    // An outage that lasts (credd's clock 4 minutes on): said once at error level, for ops.
    assert.ok(!a.lines.some((l) => /has been unreachable since/.test(String(l.msg))), "not before 3 minutes");
    writeFileSync(clockFile, String(4 * 60_000));
    const long = await a.waitForLog(
      (l) => /the store has been unreachable since .*: tokens already in files are still served/.test(String(l.msg)),
      10_000,
      down,
    );
    assert.equal(long.level, 50);
    assert.equal(readFileSync(token, "utf8"), tokenBefore, "the token file is still there");
    // ... and emailed to ops straight over SMTP (the outbox is in the store), once.
    const outageMails = () => smtp.received.slice(mailsBefore).filter((m) => /shared store/.test(m.parsed.subject ?? ""));
    await a.waitForLog((l) => l.msg === "store outage: alert email sent directly over SMTP", 10_000, down);
    const downMail = outageMails();
    assert.equal(downMail.length, 1, "one email for the outage");
    assert.match(downMail[0]!.parsed.subject ?? "", /^\[credd\] CRITICAL host-a: the shared store has been unreachable since /);
    assert.doesNotMatch(downMail[0]!.parsed.text ?? "", new RegExp(cluster.password.replace(/[^\w]/g, "\\$&")), "no password");
    // More failing ticks: no second email.
    for (let i = 0; i < 5; i++) await a.waitForLog(() => true, 10_000, a.lines.length);
    assert.equal(outageMails().length, 1);

    // PostgreSQL is back: the store is reachable again, this host leads and checks again.
    const up = a.lines.length;
    await cluster.start();
    admin = await cluster.admin();
    await a.waitForLog((l) => l.msg === "the store can be reached again", 20_000, up);
    await a.waitForLog((l) => l.msg === "check done", 20_000, up);
    // The closing email goes through the outbox, delivered by the leader.
    for (let i = 0; i < 50 && outageMails().length < 2; i++) await a.waitForLog(() => true, 10_000, a.lines.length);
    assert.deepEqual(
      outageMails().map((m) => m.parsed.subject?.replace(/since .*/, "since …")),
      ["[credd] CRITICAL host-a: the shared store has been unreachable since …", "[credd] RESOLVED host-a: the shared store can be reached again"],
    );
    assert.equal(a.child.exitCode, null, "still running");
    assert.equal(await a.stop(), 0);
  });

  test("PostgreSQL stopped under a host without OAuth2 credentials: the outage is seen, logged and emailed", async () => {
    const root = makeTempDir("credd-e2e-shared-down-nooauth-");
    const db = await freshDb("outage_nooauth");
    const config = hostConfig(root, "a", db);
    const clockFile = join(root, "clock-offset");
    const hand = makeKeyAndCert(root, dnFor("MZP128745"), { ca, days: 365 });
    const imp = await runCredd(["--config", config, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath], {
      CREDD_HOST_NAME: "host-a",
    });
    assert.equal(imp.code, 0, imp.stderr);
    const a = startCreddDaemon(["--config", config, "run"], {
      CREDD_HOST_NAME: "host-a",
      CREDD_OUTBOX_TICK_MS: "200",
      CREDD_INBOX_POLL_MS: "200",
      CREDD_TOKEN_TICK_MS: "100",
      CREDD_CLOCK_FILE: clockFile,
    });
    daemons.push(a);
    const mailsBefore = smtp.received.length;
    await a.waitForLog(leadsNow, 20_000);
    await a.waitForLog((l) => l.msg === "check done", 20_000);
    admin.on("error", () => undefined);
    await cluster.stop();
    const down = a.lines.length;
    try {
      await a.waitForLog((l) => l.step === "heartbeat" && /the store failed/.test(String(l.msg)), 10_000, down);
      await new Promise((r) => setTimeout(r, 2_500)); // real ticks of the running daemon (check every second, token every 100 ms)
      // No token to read: nothing has reached the store, so nothing may say it is reachable again.
      assert.ok(
        !a.lines.slice(down).some((l) => l.msg === "the store can be reached again"),
        `the store is down\n${a.lines
          .slice(down)
          .map((l) => JSON.stringify(l))
          .join("\n")}`,
      );
      writeFileSync(clockFile, String(4 * 60_000));
      await a.waitForLog((l) => /the store has been unreachable since/.test(String(l.msg)), 10_000, down);
      await a.waitForLog((l) => l.msg === "store outage: alert email sent directly over SMTP", 10_000, down);
      const outageMails = smtp.received.slice(mailsBefore).filter((m) => /shared store/.test(m.parsed.subject ?? ""));
      assert.equal(outageMails.length, 1);
      assert.match(outageMails[0]!.parsed.subject ?? "", /^\[credd\] CRITICAL host-a: the shared store has been unreachable since /);
    } finally {
      await cluster.start();
      admin = await cluster.admin();
    }
    await a.waitForLog((l) => l.msg === "the store can be reached again", 20_000, down);
    assert.equal(await a.stop(), 0);
  });

  test("a renewal going live runs the deploy hooks on every host, once per switch, and not again after a restart", async () => {
    const root = makeTempDir("credd-e2e-shared-hooks-");
    const db = await freshDb("follower_hooks");
    // The hook appends "HOST VERSION SERIAL" to one file both hosts write (the host comes from its argv).
    const marks = join(root, "hook-runs.txt");
    const hook = join(root, "hook.sh");
    writeFileSync(hook, '#!/bin/sh\necho "$1 $CREDD_VERSION $CREDD_SERIAL" >> "$2"\n', { mode: 0o755 });
    const hooks = (name: string) => `    deploy_hooks: [["${hook}", "${name}", "${marks}"]]\n`;
    const configA = hostConfig(root, "a", db, 7, hooks("host-a"));
    const configB = hostConfig(root, "b", db, 7, hooks("host-b"));
    const runs = (): string[] => (existsSync(marks) ? readFileSync(marks, "utf8").trim().split("\n") : []);
    const hand = makeKeyAndCert(root, dnFor("MZP128745"), { ca, days: 20 });
    const imp = await runCredd(["--config", configA, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath], {
      CREDD_HOST_NAME: "host-a",
    });
    assert.equal(imp.code, 0, imp.stderr);
    const serial1 = new X509Certificate(readFileSync(hand.certPath)).serialNumber;
    assert.deepEqual(runs(), [`host-a 1 ${serial1}`], "the import ran host-a's hook");

    const a = start(configA, "host-a");
    await a.waitForLog(leadsNow, 20_000);
    await a.waitForLog(isCsrSent, 20_000);
    const b = start(configB, "host-b");
    // host-b's first tick switches its live/ to version 1: its hook runs there.
    await b.waitForLog((l) => l.msg === "live/ switched to the store's live version" && l.version === 1, 20_000);
    await b.waitForLog((l) => l.msg === "deploy hook done" && l.host === "host-b" && l.version === 1, 10_000);
    assert.deepEqual(runs(), [`host-a 1 ${serial1}`, `host-b 1 ${serial1}`]);

    // Stellantis signs the renewal's CSR; it lands in the leader's inbox: host-a's go-live and hooks.
    const signed = join(root, "signed-2.pem");
    signCsr(ca, join(root, "a/state/credentials/fleet-prod/archive/csr-2.pem"), signed);
    const serial2 = new X509Certificate(readFileSync(signed)).serialNumber;
    const mark = b.lines.length;
    const inbox = join(root, "a/state/inbox");
    mkdirSync(inbox, { recursive: true });
    writeFileSync(join(inbox, ".signed.tmp"), readFileSync(signed));
    renameSync(join(inbox, ".signed.tmp"), join(inbox, "signed.pem"));
    await a.waitForLog((l) => l.msg === "deploy hook done" && l.version === 2, 20_000);
    const done2 = await b.waitForLog((l) => l.msg === "deploy hook done" && l.host === "host-b" && l.version === 2, 20_000, mark);
    assert.deepEqual(done2.argv, [hook, "host-b", marks]);
    // A few more ticks on both hosts: no hook runs again (once per switch, not per tick).
    for (let i = 0; i < 3; i++) await b.waitForLog((l) => l.msg === "follower tick: another host leads", 10_000, b.lines.length);
    await a.waitForLog((l) => l.msg === "check done", 10_000, a.lines.length);
    assert.deepEqual(runs(), [`host-a 1 ${serial1}`, `host-b 1 ${serial1}`, `host-a 2 ${serial2}`, `host-b 2 ${serial2}`]);
    assert.equal(readFileSync(join(root, "b/state/credentials/fleet-prod/live/cert.pem"), "utf8"), readFileSync(signed, "utf8").trim() + "\n");
    assert.ok(!existsSync(join(root, "b/state/credentials/fleet-prod/hooks-pending")), "no hooks owed");

    // host-b restarts with live/ already on version 2: the hooks do not run again.
    assert.equal(await b.stop(), 0);
    const b2 = start(configB, "host-b");
    await b2.waitForLog((l) => l.msg === "follower tick: another host leads", 20_000);
    await b2.waitForLog((l) => l.msg === "follower tick: another host leads", 10_000, b2.lines.length);
    assert.equal(runs().length, 4, `no hook after the restart: ${runs().join(" | ")}`);
    assert.equal(await b2.stop(), 0);
    assert.equal(await a.stop(), 0);
  });
});
