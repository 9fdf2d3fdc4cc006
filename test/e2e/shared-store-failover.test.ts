// Failover at each step of a renewal on a shared PostgreSQL store (issue 17, docs/shared-store.md):
// two or three real `credd run` processes on one database; the leader runs with CREDD_CRASH_AT set
// to one crash point of the renewal (the CSR email, the ingest of the signed certificate, the
// go-live, the token fetch) and is SIGKILLed there. For each point: a follower leads within one
// check interval of the kill, the renewal finishes with exactly one CSR (the same email at most
// twice, with the same Message-ID), the key the CSR was made for is the key installed live, and
// every host's live/ (the killed one too, once restarted) matches the store. Then three hosts: the
// leader killed, then the next, and the third leads; `status --json` shows the three hosts' roles
// and staleness. The test plays the Stellantis CA (signs each CSR it receives by email and drops
// the certificate into the inbox folder, which the hosts share) and the IDP (test/helpers/stellantis.ts).
// Needs Debian's postgresql (skipped with one line without it).
import assert from "node:assert/strict";
import { createPublicKey, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Daemon, dnFor, runCredd } from "../helpers/credd.js";
import { makeKeyAndCert, makeTempDir, signCsr } from "../helpers/openssl.js";
import { postgresMissing } from "../helpers/postgres.js";
import { at, followerTick, type Line, leadsNow, type SharedWorld, startSharedWorld } from "../helpers/shared-store.js";
import type { ReceivedMail } from "../helpers/smtp.js";

const skip = postgresMissing();
/** check_schedule of every host: every second, so a takeover is quick to see. */
const CHECK_MS = 1_000;
/** The documented bound (docs/shared-store.md, "What happens on failover"): one check interval, plus a margin for a loaded machine. */
const TAKEOVER_BOUND_MS = CHECK_MS + 1_000;
const DAY_MS = 86_400_000;

/** The crash points of a renewal, by step (grep `crashPoint(` in src/core/). */
const STEPS: { step: string; points: string[] }[] = [
  {
    step: "CSR email",
    points: ["renewal-after-key", "renewal-after-csr", "renewal-after-db", "deliver-after-claim", "deliver-after-smtp", "deliver-after-mark"],
  },
  { step: "ingest", points: ["after-archive", "after-signed"] },
  { step: "go-live", points: ["after-switch", "after-db-live"] },
  // token-locked is met only by the token tick's fetch (fetchLive), not on the renewal's path: the
  // probe of the new certificate fetches and stores the token without that lock.
  { step: "token fetch", points: ["token-after-files", "token-after-db"] },
];

const csrOf = (m: ReceivedMail): string | undefined => {
  const a = m.parsed.attachments.find((x) => /\.csr$/i.test(x.filename ?? ""));
  return a ? Buffer.from(a.content).toString("utf8") : undefined;
};
/** A CSR email of credential `mzp` (its attachment is MZP.csr). */
const mzpMail = (m: ReceivedMail, mzp: string): boolean => m.parsed.attachments.some((x) => x.filename === `${mzp}.csr`);
const hex = (fp: string) => fp.replace(/:/g, "").toLowerCase();
const spkiOfKey = (pem: string | Buffer) => createPublicKey(pem).export({ type: "spki", format: "der" }).toString("base64");
const spkiOfCert = (pem: string | Buffer) => new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" }).toString("base64");

describe("failover at each step of a renewal, on one PostgreSQL", { skip }, () => {
  let w: SharedWorld;

  before(async () => {
    w = await startSharedWorld();
    // Tokens live 400 days: moving credd's clock to the renewal window refreshes none (a refresh on
    // the leader would reach a token crash point before the renewal does).
    w.fake.expiresIn = 400 * 86_400;
  });
  after(async () => {
    await w?.close();
  });

  /** N hosts on a fresh database, the certificate imported with 40 days left, the shared inbox and clock file. */
  const setUp = async (dbName: string, n: number, mzp: string) => {
    const root = makeTempDir("credd-e2e-failover-");
    const db = await w.freshDb(dbName);
    const inbox = join(root, "inbox");
    mkdirSync(inbox, { recursive: true });
    const clockFile = join(root, "clock-offset");
    const oauth =
      `    oauth: { token_url: "${w.fake.tokenUrl}", client_id: partner-client, scope: openid }\n` +
      `    api: { base_url: "${w.fake.apiBaseUrl}", probe_path: /fleets }\n`;
    const names = ["host-a", "host-b", "host-c"].slice(0, n);
    // Each test its own MZP: the tests run side by side on one SMTP server, and the CSR email names it.
    const configs = names.map((h) => {
      const file = w.hostConfig(root, h, db, 7, oauth, `inbox_dir: ${inbox}\n`);
      writeFileSync(file, readFileSync(file, "utf8").replace("mzp: MZP128745", `mzp: ${mzp}`));
      return file;
    });
    const hand = makeKeyAndCert(root, dnFor(mzp), { ca: w.ca, days: 40 });
    w.fake.register(new X509Certificate(readFileSync(hand.certPath)).fingerprint256);
    const imp = await runCredd(["--config", configs[0]!, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath], {
      CREDD_HOST_NAME: "host-a",
    });
    assert.equal(imp.code, 0, imp.stderr);
    const env = {
      CREDD_CLOCK_FILE: clockFile,
      CREDD_INBOX_POLL_MS: "200",
      CREDD_INBOX_MIN_AGE_MS: "0",
      CREDD_TOKEN_TICK_MS: "200",
    };
    return { root, db, inbox, clockFile, names, configs, env, handCertPath: hand.certPath };
  };

  /**
   * The test as the Stellantis CA: each distinct CSR emailed to the contact is signed once and the
   * certificate dropped into the shared inbox (written aside, renamed in); the IDP knows it.
   */
  const startCaDesk = (root: string, inbox: string, mzp: string) => {
    const seen = new Set<string>();
    const signed: string[] = [];
    let scanned = 0;
    const timer = setInterval(() => {
      for (; scanned < w.smtp.received.length; scanned++) {
        const csr = mzpMail(w.smtp.received[scanned]!, mzp) ? csrOf(w.smtp.received[scanned]!) : undefined;
        if (!csr || seen.has(csr)) continue;
        seen.add(csr);
        const csrPath = join(root, `req-${seen.size}.csr`);
        writeFileSync(csrPath, csr);
        const certPath = join(root, `signed-${seen.size}.pem`);
        signCsr(w.ca, csrPath, certPath, { days: 365 });
        w.fake.register(new X509Certificate(readFileSync(certPath)).fingerprint256);
        signed.push(readFileSync(certPath, "utf8"));
        writeFileSync(join(inbox, `.signed-${seen.size}.tmp`), readFileSync(certPath));
        renameSync(join(inbox, `.signed-${seen.size}.tmp`), join(inbox, `signed-${seen.size}.pem`));
      }
    }, 50);
    return { signed, stop: () => clearInterval(timer) };
  };

  /** Runs `fn` with a client on database `db` as the cluster's superuser. */
  const onDb = async <T>(db: string, fn: (q: (sql: string, args?: unknown[]) => Promise<Line[]>) => Promise<T>): Promise<T> => {
    const c = await w.cluster.admin(db);
    try {
      return await fn(async (sql, args) => (await c.query(sql, args)).rows as Line[]);
    } finally {
      await c.end();
    }
  };

  /** Polls `cond` every 100 ms until it holds (true) or `ms` pass (false). */
  const until = async (cond: () => Promise<boolean> | boolean, ms: number): Promise<boolean> => {
    const end = Date.now() + ms;
    for (;;) {
      if (await cond()) return true;
      if (Date.now() > end) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const liveFiles = (root: string, host: string) => {
    const dir = join(root, host, "state/credentials/fleet-prod/live");
    const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8") : "");
    return { cert: read("cert.pem"), chain: read("chain.pem"), key: read("key.pem") };
  };

  const failoverAt = async (point: string, n: number, mzp: string) => {
    const s = await setUp(`fo_${point.replace(/-/g, "_")}_${n}`, n, mzp);
    if (point.startsWith("token-")) {
      // The leader's own token is fetched before it starts: its crash point is then met in the renewal's go-live, not at its start.
      const tok = await runCredd(["--config", s.configs[0]!, "token", "fleet-prod"], { CREDD_HOST_NAME: "host-a" });
      assert.equal(tok.code, 0, tok.stdout + tok.stderr);
    }
    const leader = w.start(s.configs[0]!, "host-a", { ...s.env, CREDD_CRASH_AT: point });
    await leader.waitForLog(leadsNow, 20_000);
    const followers: Daemon[] = [];
    for (let i = 1; i < n; i++) followers.push(w.start(s.configs[i]!, s.names[i]!, s.env));
    // Every follower follows and has its own token before the renewal starts.
    for (const f of followers) await f.waitForLog(followerTick, 20_000);
    assert.ok(
      await until(async () => (await onDb(s.db, (q) => q("SELECT host FROM tokens WHERE expires_at IS NOT NULL"))).length === n, 10_000),
      "every host has its token before the renewal",
    );
    const desk = startCaDesk(s.root, s.inbox, mzp);
    try {
      // credd's clock (every host's) moves 15 days on: 25 days left, the renewal is due.
      writeFileSync(s.clockFile, String(15 * DAY_MS));
      const exit = await Promise.race([leader.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 30_000))]);
      assert.equal(leader.child.signalCode, "SIGKILL", `the leader died at ${point} (got ${String(exit)})\n${leader.stderr()}`);
      const killedAt = Date.now();
      const took = await Promise.race(followers.map((f) => f.waitForLog(leadsNow, 10_000).then((l) => ({ f, l }))));
      const failover = at(took.l) - killedAt;
      assert.ok(failover <= TAKEOVER_BOUND_MS, `${point}: failover took ${failover} ms, more than one check interval (${CHECK_MS} ms) and a second`);
      const next = took.f;
      // The renewal finishes on the new leader: its certificate live in the store.
      const finished = await until(
        async () =>
          (await onDb(s.db, (q) => q("SELECT r.id FROM renewals r JOIN certificates c ON c.renewal_id = r.id AND c.live WHERE r.state = 'live'")))
            .length === 1,
        25_000,
      );
      assert.ok(finished, `${point}: the renewal went live after the takeover\n${next.lines.map((l) => JSON.stringify(l)).join("\n")}`);
      for (const f of followers) if (f !== next) assert.equal(f.lines.filter(leadsNow).length, 0, "one host took over, not two");
      assert.ok(!next.lines.some((l) => l.msg === "check failed"), `${point}: the new leader has every key it needs`);

      // Exactly one CSR: one key, one Message-ID; the same email at most twice (a crash between the
      // SMTP answer and its record), never a second CSR.
      const csrMails = w.smtp.received.filter((m) => mzpMail(m, mzp) && csrOf(m) !== undefined);
      assert.ok(csrMails.length >= 1 && csrMails.length <= 2, `${point}: ${csrMails.length} CSR emails`);
      assert.equal(new Set(csrMails.map(csrOf)).size, 1, `${point}: one CSR, one key`);
      assert.equal(new Set(csrMails.map((m) => m.parsed.messageId)).size, 1, `${point}: the same Message-ID`);
      assert.equal(desk.signed.length, 1);

      // No key lost: the certificate signed for that CSR is live, with the key the CSR was made for.
      const signedPem = desk.signed[0]!;
      const row = await onDb(s.db, (q) => q("SELECT version, sha256 FROM certificates WHERE credential = 'fleet-prod' AND live"));
      assert.equal(row.length, 1);
      assert.equal(
        hex(String(row[0]!.sha256)),
        hex(new X509Certificate(signedPem).fingerprint256),
        `${point}: the signed certificate is live in the store`,
      );

      // The killed host comes back (without the crash point) and follows: every host's live/ is the store's.
      const back = w.start(s.configs[0]!, "host-a", s.env);
      // Up and following (its SIGTERM handler set) before anything is asserted or stopped: at the
      // token points host-a's live/ already holds the new certificate from before its kill.
      await back.waitForLog(followerTick, 20_000);
      const hosts = [back, ...followers];
      const inLine = await until(() => s.names.every((h) => liveFiles(s.root, h).cert === signedPem), 10_000);
      assert.ok(inLine, `${point}: every host's live/cert.pem is the signed certificate`);
      const ref = liveFiles(s.root, s.names[1]!);
      for (const h of s.names) {
        const f = liveFiles(s.root, h);
        assert.deepEqual(f, ref, `${point}: ${h}'s live/ is the same as the others'`);
        assert.equal(spkiOfKey(f.key), spkiOfCert(signedPem), `${point}: ${h}'s live/key.pem is the key the CSR was made for`);
        assert.equal(readFileSync(join(s.root, h, "state/credentials/fleet-prod/archive", `cert-${row[0]!.version}.pem`), "utf8"), signedPem);
      }
      // Each host's token is fetched with the new certificate.
      const tokensNew = await until(
        async () =>
          (
            await onDb(s.db, (q) =>
              q("SELECT host FROM tokens WHERE credential = 'fleet-prod' AND expires_at IS NOT NULL AND cert_version = $1", [row[0]!.version]),
            )
          ).length === n,
        10_000,
      );
      assert.ok(tokensNew, `${point}: every host has a token from the new certificate`);
      for (const d of hosts) assert.equal(await d.stop(), 0);
    } finally {
      desk.stop();
    }
  };

  // Each step with two hosts and with three: the crash points alternate between the two.
  let i = 0;
  for (const { step, points } of STEPS) {
    for (const point of points) {
      const n = i % 2 === 0 ? 2 : 3;
      const mzp = `MZP9${String(i++).padStart(5, "0")}`;
      test(`${step}: kill -9 the leader at ${point} (${n} hosts)`, async () => {
        await failoverAt(point, n, mzp);
      });
    }
  }

  test("three hosts: kill the leader, then the next leader; the third leads, and status shows all three", async () => {
    const s = await setUp("three_hosts", 3, "MZP800000");
    const a = w.start(s.configs[0]!, "host-a", s.env);
    await a.waitForLog(leadsNow, 20_000);
    const others = [w.start(s.configs[1]!, "host-b", s.env), w.start(s.configs[2]!, "host-c", s.env)];
    for (const f of others) await f.waitForLog(followerTick, 20_000);

    const killedA = Date.now();
    a.child.kill("SIGKILL");
    await a.exited;
    const first = await Promise.race(others.map((f) => f.waitForLog(leadsNow, 10_000).then((l) => ({ f, l }))));
    assert.ok(at(first.l) - killedA <= TAKEOVER_BOUND_MS, `first takeover took ${at(first.l) - killedA} ms`);
    const second = first.f;
    const third = others.find((f) => f !== second)!;
    const secondName = second === others[0] ? "host-b" : "host-c";
    const thirdName = secondName === "host-b" ? "host-c" : "host-b";
    // The third keeps following while the second leads.
    await third.waitForLog(followerTick, 10_000, third.lines.length);
    assert.equal(third.lines.filter(leadsNow).length, 0);

    const killedB = Date.now();
    second.child.kill("SIGKILL");
    await second.exited;
    const last = await third.waitForLog(leadsNow, 10_000);
    assert.ok(at(last) - killedB <= TAKEOVER_BOUND_MS, `second takeover took ${at(last) - killedB} ms`);

    // Two check periods without a heartbeat make a host stale: wait for them on the survivor.
    let from = third.lines.length;
    for (let k = 0; k < 3; k++) from = third.lines.indexOf(await third.waitForLog((l) => l.msg === "check done", 10_000, from)) + 1;
    const st = await w.status(s.configs[2]!);
    const byName = new Map(st.hosts.map((h) => [h.name, h]));
    assert.deepEqual([...byName.keys()].sort(), ["host-a", "host-b", "host-c"], "three hosts");
    assert.equal(byName.get(thirdName)?.role, "leader");
    assert.equal(byName.get(thirdName)?.stale, false);
    assert.equal(byName.get("host-a")?.stale, true, "the first killed host is stale");
    assert.equal(byName.get(secondName)?.stale, true, "the second killed host is stale");
    const freshLeaders = st.hosts.filter((h) => h.role === "leader" && h.stale === false).map((h) => h.name);
    assert.deepEqual(freshLeaders, [thirdName], "one live leader");
    assert.match(st.hosts_warning ?? "", /no standby/);
    assert.equal(await third.stop(), 0);
  });
});
