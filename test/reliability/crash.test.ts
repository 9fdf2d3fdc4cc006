// Crash consistency: enroll → CSR email → signed certificate → ingest → install → go-live → token,
// over and over for four credentials, while the real `credd` (daemon and commands) is SIGKILLed at
// random moments and at named fault points (CREDD_CRASH_AT). After every kill, with no credd running,
// the invariants of lib/invariants.ts must hold; at the end a clean run settles everything.
// Twice: on SQLite (state_dir/credd.db), and on PostgreSQL (`store: postgres`, a throwaway cluster
// from test/helpers/postgres.ts; skipped, saying why, without PostgreSQL), the invariants then read
// from PostgreSQL. Seeded: CREDD_RELIABILITY_SEED=N replays the same schedule (the seed is printed).
// Knobs: CREDD_RELIABILITY_KILLS (default 110), CREDD_RELIABILITY_BUDGET_MS (a hard stop, default
// 280000; about 2 minutes are enough on an idle 2-core machine); for PostgreSQL
// CREDD_RELIABILITY_PG_KILLS (default 40) and CREDD_RELIABILITY_PG_BUDGET_MS (default 150000).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test, type TestContext } from "node:test";
import { type PgCluster, postgresMissing, startPostgres } from "../helpers/postgres.js";
import { makeKeyAndCert } from "../helpers/openssl.js";
import { normalizeFingerprint } from "../helpers/stellantis.js";
import { dnFor } from "../helpers/credd.js";
import { ClockFile } from "./lib/clock-file.js";
import { SecretBag, scanAll, storeText } from "./lib/hygiene.js";
import { checkInvariants, checkSettled } from "./lib/invariants.js";
import { crashSigns, Journal, runCli, spawnCredd, type Exit } from "./lib/proc.js";
import { makeRng, seedFromEnv } from "./lib/rng.js";
import { type StoreReader, type StoreTarget, withStore } from "./lib/store-reader.js";
import { CaDesk, certFingerprint, dropInInbox, makeWorld, type CredSpec, type World } from "./lib/world.js";

const { seed, fromEnv } = seedFromEnv();
const KILLS = Number(process.env.CREDD_RELIABILITY_KILLS ?? 110);
const BUDGET_MS = Number(process.env.CREDD_RELIABILITY_BUDGET_MS ?? 280_000);
const PG_KILLS = Number(process.env.CREDD_RELIABILITY_PG_KILLS ?? 40);
const PG_BUDGET_MS = Number(process.env.CREDD_RELIABILITY_PG_BUDGET_MS ?? 150_000);
const PG_SKIP = postgresMissing();
console.log(`# crash consistency: seed ${seed}${fromEnv ? " (from CREDD_RELIABILITY_SEED)" : ""}; replay with CREDD_RELIABILITY_SEED=${seed}`);

const CREDS: CredSpec[] = [
  { name: "c1", mzp: "MZP100001", key: "rsa", oauth: true, autoEnroll: true, extra: "pkcs12_password_file: p12.pass" },
  { name: "c2", mzp: "MZP100002", key: "ec", oauth: true, autoEnroll: true, extra: 'deploy_hooks: [["/bin/true"]]' },
  { name: "c3", mzp: "MZP100003", key: "ec", oauth: true, autoEnroll: true },
  { name: "c4", mzp: "MZP100004", key: "ec", oauth: true, autoEnroll: true },
];
/** The IDP accepts c4's new certificates only once the registration email has reached the contact (staged go-live). */
const STRICT_MZP = "MZP100004";
const NAMES = CREDS.map((c) => c.name);
const P12_PASSWORD = "p12-Cr4sh-Secret";

const CLI_POINTS: Record<string, string[]> = {
  renew: ["renewal-after-key", "renewal-after-csr", "renewal-after-db", "deliver-after-claim", "deliver-after-smtp", "deliver-after-mark"],
  ingest: ["after-archive", "after-signed", "after-switch", "after-db-live", "token-after-files", "token-after-db"],
  token: ["token-locked", "token-after-files", "token-after-db"],
  import: ["import-after-archive", "import-after-db", "after-switch", "after-db-live", "token-after-files"],
  rollback: ["after-switch", "after-db-live", "token-after-files"],
  alerts: ["deliver-after-claim", "deliver-after-smtp", "deliver-after-mark"],
};

/** The fault points the next daemon run will pass, from the work waiting on disk and in the database. */
async function daemonPointsFor(w: World, store: StoreTarget): Promise<string[]> {
  const points: string[] = [];
  const inbox = existsSync(w.inboxDir) ? readdirSync(w.inboxDir).filter((f) => !f.startsWith(".") && /\.pem$/.test(f)) : [];
  if (inbox.length)
    points.push("after-archive", "after-signed", "after-switch", "after-db-live", "token-after-files", "token-after-db", "token-locked");
  return withStore(store, ["renewal-after-key", "renewal-after-csr", "renewal-after-db"], async (d) => {
    if (!(await d.tables()).has("outbox")) return ["renewal-after-key", "renewal-after-csr", "renewal-after-db"];
    const queued = (await d.get<{ n: number }>("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL"))!.n;
    if (queued) points.push("deliver-after-claim", "deliver-after-smtp", "deliver-after-mark");
    const live = (await d.get<{ n: number }>("SELECT COUNT(*) AS n FROM certificates WHERE live = TRUE"))!.n;
    if (live) points.push("token-locked", "token-after-files", "token-after-db");
    return points;
  });
}

const FAST = { CREDD_OUTBOX_TICK_MS: "100", CREDD_INBOX_POLL_MS: "100", CREDD_INBOX_MIN_AGE_MS: "0", CREDD_TOKEN_TICK_MS: "100" };

/** The worlds to delete at the end; a failing run takes its own out to keep it for a post-mortem. */
const worlds = new Set<World>();
after(async () => {
  for (const w of worlds) await w.close();
});

interface Stats {
  kills: number;
  byPoint: Record<string, number>;
  byTimer: { daemon: number; cli: number };
  iterations: number;
  cli: Record<string, number>;
  duplicates: number;
}

/** What differs between the runs on SQLite and on PostgreSQL. */
interface Variant {
  kills: number;
  budgetMs: number;
  /** Top-level YAML for the config (the store: key). */
  top?: string;
  env?: Record<string, string>;
  /** Where the invariants read the store; the world's state_dir for SQLite. */
  store: (w: World) => StoreTarget;
  kekFile?: string;
  /**
   * More time before the backstop kill of a run sent to a fault point: on PostgreSQL credd connects,
   * migrates and takes the lead before its first step, so without it the timer, not the fault point,
   * ends most of those runs.
   */
  faultPointGraceMs?: number;
  /** Secrets of the store itself (url, password, KEK) to search the logs and the store for. */
  secrets?: [label: string, value: string][];
}

test(`crash consistency under SIGKILL (seed ${seed})`, { timeout: BUDGET_MS + 120_000 }, (t) =>
  crashRun(t, { kills: KILLS, budgetMs: BUDGET_MS, store: (w) => ({ kind: "sqlite", stateDir: w.stateDir }) }),
);

test(`crash consistency on PostgreSQL under SIGKILL (seed ${seed})`, {
  timeout: PG_BUDGET_MS + 180_000,
  ...(PG_SKIP ? { skip: PG_SKIP } : {}),
}, async (t) => {
  const cluster: PgCluster = await startPostgres();
  t.after(() => cluster.destroy());
  // The url and KEK files as an ops engineer writes them (docs/shared-store.md): 0640 and 0600.
  const files = mkdtempSync(join(tmpdir(), "credd-rel-crash-pg-"));
  t.after(() => rmSync(files, { recursive: true, force: true }));
  const urlFile = join(files, "store-url");
  writeFileSync(urlFile, `${cluster.url}\n`, { mode: 0o640 });
  const kek = Buffer.from(Array.from({ length: 32 }, (_, i) => (seed + i * 37) & 0xff)).toString("base64");
  const kekFile = join(files, "store-kek");
  writeFileSync(kekFile, `${kek}\n`, { mode: 0o600 });
  const host = "rel-crash-host";
  await crashRun(t, {
    kills: PG_KILLS,
    budgetMs: PG_BUDGET_MS,
    top: `store:\n  postgres:\n    url_file: ${urlFile}\n    key_encryption_key_file: ${kekFile}\n`,
    env: { CREDD_HOST_NAME: host },
    store: () => ({
      kind: "postgres",
      connection: { host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: cluster.database },
      host,
    }),
    kekFile,
    secrets: [
      ["the store's url", cluster.url],
      ["the store's password", cluster.password],
      ["the store's password, URL-encoded", encodeURIComponent(cluster.password)],
      ["the key-encryption key", kek],
    ],
  });
});

async function crashRun(t: TestContext, variant: Variant): Promise<void> {
  const KILLS = variant.kills;
  const BUDGET_MS = variant.budgetMs;
  const started = Date.now();
  const rng = makeRng(seed);
  const deskRng = makeRng((seed ^ 0x9e3779b9) >>> 0);
  const w = await makeWorld({ creds: CREDS, schedule: "*/1 * * * * *", prefix: "credd-rel-crash-", ...(variant.top ? { top: variant.top } : {}) });
  worlds.add(w);
  const store = variant.store(w);
  const sqlite = store.kind === "sqlite";
  // The IDP knows c1-c3's certificates as soon as they are signed; c4's only after credd emails them
  // for registration (seed step 5), so c4 goes through the staged go-live and its probes.
  w.fake.acceptAllFromCa = false;
  w.fake.expiresIn = 1200; // 20 min: with credd's clock 6 min ahead per start, refreshes come often
  writeFileSync(join(w.dir, "p12.pass"), `${P12_PASSWORD}\n`, { mode: 0o600 });
  const journal = new Journal();
  const cliQueue: string[] = [];
  let dropped = 0;
  let registrations = 0;
  const desk = new CaDesk(
    w,
    (certPath, mzp) => {
      if (mzp !== STRICT_MZP) w.fake.register(certFingerprint(readFileSync(certPath)));
      if (deskRng.chance(0.6)) dropInInbox(w, certPath, `signed-${++dropped}.pem`);
      else cliQueue.push(certPath);
    },
    (m) => {
      const pem = m.parsed.attachments.find((a) => /\.pem$/.test(a.filename ?? ""));
      if (pem && /bind it to OAuth2 client/.test(m.parsed.subject ?? "")) {
        w.fake.register(certFingerprint(Buffer.from(pem.content)));
        registrations++;
      }
    },
  );
  const stats: Stats = { kills: 0, byPoint: {}, byTimer: { daemon: 0, cli: 0 }, iterations: 0, cli: {}, duplicates: 0 };
  // credd's clock runs ahead by 6 minutes per daemon start: claims on emails (5 min) lapse and token
  // refreshes come due, as they would across real restarts, without the test waiting for them.
  let offsetMs = 0;
  const env = () => ({ ...FAST, ...variant.env, CREDD_FAKE_NOW: new Date(Date.now() + offsetMs).toISOString() });
  const cfg = ["--config", w.config];

  const fail = (what: string, detail: string[]) => {
    const last = journal.entries
      .slice(-3)
      .map(
        (e) =>
          `$ credd ${e.args.join(" ")} ${JSON.stringify(e.env.CREDD_CRASH_AT ?? "")} → ${JSON.stringify(e.exit)}\n${e.stdout.slice(-3000)}\n${e.stderr.slice(-1500)}`,
      );
    assert.fail(
      `seed ${seed}, iteration ${stats.iterations}: ${what}:\n  ${detail.join("\n  ")}\nstate kept in ${w.dir}\n--- last processes ---\n${last.join("\n")}`,
    );
  };
  const invariantInput = {
    stateDir: w.stateDir,
    names: NAMES,
    store,
    ...(variant.kekFile ? { kekFile: variant.kekFile } : {}),
  };
  const verify = async (after: string) => {
    const r = await checkInvariants({ ...invariantInput, received: w.smtp.received });
    if (r.violations.length) {
      worlds.delete(w); // keep the folder for a post-mortem
      fail(`invariants broken after ${after}`, r.violations);
    }
    stats.duplicates = r.duplicates;
  };
  const countKill = (exit: Exit, point: string | undefined, timer: boolean, who: "daemon" | "cli") => {
    if (exit.signal !== "SIGKILL") return false;
    stats.kills++;
    if (timer) stats.byTimer[who]++;
    else if (point) stats.byPoint[point] = (stats.byPoint[point] ?? 0) + 1;
    return true;
  };
  const withDb = <T>(fallback: T, fn: (d: StoreReader) => Promise<T>) => withStore(store, fallback, fn);
  const noFacts = {
    hasStore: false,
    renewable: [] as string[],
    withLive: [] as string[],
    withPrevious: [] as string[],
    liveSha256: new Map<string, string>(),
  };
  const facts = () =>
    withDb(noFacts, async (d) => {
      if (!(await d.tables()).has("certificates")) return { ...noFacts, hasStore: true };
      const has = async (sql: string) => (await d.all<{ credential: string }>(sql)).map((r) => r.credential);
      const live = await has("SELECT credential FROM certificates WHERE live = TRUE");
      const pending = new Set(await has("SELECT credential FROM renewals WHERE state IN ('created','sent','signed','registered')"));
      const previous = await has("SELECT DISTINCT credential FROM certificates WHERE live = FALSE AND retired_at IS NOT NULL");
      const liveSha256 = new Map(
        (await d.all<{ credential: string; sha256: string }>("SELECT credential, sha256 FROM certificates WHERE live = TRUE")).map((r) => [
          r.credential,
          r.sha256,
        ]),
      );
      return { hasStore: true, renewable: live.filter((c) => !pending.has(c)), withLive: live, withPrevious: previous, liveSha256 };
    });
  /** Where each pending renewal stands (its probes, its emails), for a failure message. */
  const pendingDetail = (): Promise<string[]> =>
    withDb(["no store"], async (dd) => {
      const rows = await dd.all<{ sha256: string | null }>(
        `SELECT r.id, r.credential, r.state, r.probe_attempts, r.next_probe_at, r.last_probe_error, r.registration_mail_at, c.sha256
           FROM renewals r LEFT JOIN certificates c ON c.credential = r.credential AND c.version = r.version
           WHERE r.state IN ('created','sent','signed','registered')`,
      );
      const known = new Set(w.fake.registered());
      const withIdp = rows.map((r) => ({ ...r, idpKnowsIt: r.sha256 ? known.has(normalizeFingerprint(r.sha256)) : null }));
      const mails = await dd.all(
        "SELECT id, kind, credential, renewal_id, attempts, next_attempt_at, sent_at, last_error FROM outbox WHERE renewal_id IN (SELECT id FROM renewals WHERE state IN ('created','sent','signed','registered'))",
      );
      return [`pending renewals: ${JSON.stringify(withIdp)}`, `their emails: ${JSON.stringify(mails)}`];
    });
  const handMade = new Map<string, { certPath: string; keyPath: string }>();
  const deskTimer = setInterval(() => desk.poll(), 50);
  t.after(() => clearInterval(deskTimer));

  while (stats.kills < KILLS && Date.now() - started < BUDGET_MS) {
    stats.iterations++;
    offsetMs += 6 * 60_000;

    // Phase A: a person's command, killed at a fault point or at a random moment (or left to finish).
    if (rng.chance(0.45)) {
      const f = await facts();
      const choices: string[] = [];
      if (f.renewable.length) choices.push("renew", "renew", "renew", "renew");
      if (cliQueue.length) choices.push("ingest", "ingest", "ingest");
      if (f.withLive.length) choices.push("token", "import");
      if (f.withPrevious.length) choices.push("rollback");
      if (f.hasStore) choices.push("alerts");
      if (choices.length) {
        const action = rng.pick(choices);
        let args: string[];
        if (action === "renew") args = ["renew", rng.pick(f.renewable)];
        else if (action === "ingest") args = ["ingest", cliQueue[0]!];
        else if (action === "token") args = ["token", rng.pick(f.withLive)];
        else if (action === "rollback") args = ["rollback", rng.pick(f.withPrevious)];
        else if (action === "alerts") args = ["alerts", "test"];
        else {
          const c = CREDS[rng.int(0, CREDS.length - 1)]!;
          if (!handMade.has(c.name)) {
            const made = makeKeyAndCert(w.dir, dnFor(c.mzp), { ca: w.ca, days: 365, keyType: c.key === "rsa" ? "rsa" : "ec" });
            w.fake.register(certFingerprint(readFileSync(made.certPath)));
            handMade.set(c.name, made);
          }
          const hm = handMade.get(c.name)!;
          args = ["import", c.name, "--cert", hm.certPath, "--key", hm.keyPath];
        }
        // A first certificate of an OAuth2 credential goes live before the IDP knows it
        // (core/registration.ts: nothing older to keep); until the desk registers it, `credd token`
        // is right to fail, with the IDP's invalid_client.
        const liveSha = action === "token" ? f.liveSha256.get(args[1]!) : undefined;
        const unregistered = liveSha !== undefined && !new Set(w.fake.registered()).has(normalizeFingerprint(liveSha));
        const mode = rng.next();
        const point = mode < 0.45 ? rng.pick(CLI_POINTS[action]!) : undefined;
        const killAfterMs = mode >= 0.45 && mode < 0.85 ? rng.int(250, 1100) : undefined;
        const r = await runCli(
          journal,
          [...cfg, ...args],
          { ...env(), ...(point ? { CREDD_CRASH_AT: point } : {}) },
          killAfterMs !== undefined ? { killAfterMs } : {},
        );
        stats.cli[action] = (stats.cli[action] ?? 0) + 1;
        const killed = countKill(r, point, r.killedByTimer, "cli");
        if (action === "ingest" && (killed || r.code === 0)) {
          // Taken in, or interrupted: the next person (or the inbox) finishes it. Retry it later by the inbox.
          const file = cliQueue.shift()!;
          if (killed) dropInInbox(w, file, `retry-${++dropped}.pem`);
        }
        const signs = crashSigns(`${r.stdout}${r.stderr}`);
        if (signs.length) fail(`credd ${args.join(" ")} printed ${signs.join(", ")}`, [r.stdout, r.stderr]);
        const expectedRefusal = unregistered && r.code === 1 && /invalid_client/.test(r.stderr);
        if (!killed && r.code !== 0 && !(action === "rollback" || action === "renew") && !expectedRefusal) {
          fail(`credd ${args.join(" ")} exited ${r.code}`, [r.stdout, r.stderr]);
        }
        await verify(`credd ${args.join(" ")} (${killed ? (point ? `killed at ${point}` : `killed after ${killAfterMs} ms`) : `exit ${r.code}`})`);
      }
    }

    // Phase B: the daemon, killed at a fault point or at a random moment.
    // A fault point the daemon will reach given the work waiting for it; else a random moment.
    const relevant = await daemonPointsFor(w, store);
    const point = relevant.length && rng.chance(0.6) ? rng.pick(relevant) : undefined;
    const killAt = point ? rng.int(1500, 3000) + (variant.faultPointGraceMs ?? 0) : rng.int(250, 2000);
    const d = spawnCredd(journal, [...cfg, "run"], { ...env(), ...(point ? { CREDD_CRASH_AT: point } : {}) });
    let timer = false;
    const timerKill = () => {
      timer = d.running();
      d.kill("SIGKILL");
    };
    // The moment counts from credd's first log line, not from the spawn: on a loaded machine Node's
    // own start can outlast the whole window, and the kill would never reach credd's code (seen on
    // PostgreSQL, whose start also connects, migrates and takes the lead: 40 kills, none past it).
    let killer: NodeJS.Timeout | undefined;
    d.waitForLog(() => true, 60_000).then(
      () => {
        killer = setTimeout(timerKill, killAt);
      },
      () => timerKill(), // exited before a line (a no-op), or printed nothing for a minute
    );
    const exit = await d.exited;
    clearTimeout(killer);
    if (!countKill(exit, point, timer, "daemon"))
      fail(`credd run exited by itself (${JSON.stringify(exit)})`, [d.entry.stdout.slice(-3000), d.entry.stderr]);
    const bad = d.lines.filter(
      (l) => typeof l.level === "number" && (l.level as number) >= 50 && !/token refresh|token endpoint/.test(String(l.msg)),
    );
    if (bad.length)
      t.diagnostic(`iteration ${stats.iterations}: error lines: ${bad.map((l) => `${String(l.msg)}: ${String(l.err ?? "")}`).join(" | ")}`);
    const signs = crashSigns(`${d.entry.stdout}${d.entry.stderr}`);
    if (signs.length) fail(`credd run printed ${signs.join(", ")}`, [d.entry.stdout.slice(-3000), d.entry.stderr]);
    desk.poll();
    if (stats.iterations % 20 === 0)
      console.log(`# iteration ${stats.iterations}: ${stats.kills} kills in ${Math.round((Date.now() - started) / 1000)} s`);
    await verify(`credd run (${point && !timer ? `killed at ${point}` : `SIGKILL after ${killAt} ms`})`);
  }
  const killPhaseMs = Date.now() - started;

  // Settle: the certificates handed to people go to the inbox, and one clean run finishes everything.
  for (const f of cliQueue.splice(0)) dropInInbox(w, f, `late-${++dropped}.pem`);
  offsetMs += 2 * 3600_000; // past any email claim or probe backoff (at most 1 h) set before this run
  // Backoffs this run sets itself (a staged certificate's registration probes: 1 min doubling to
  // 1 h, while its registration email reaches the contact) must come due too: while anything is
  // pending, credd's clock moves on a minute per look (CREDD_CLOCK_FILE), as hours would pass for
  // a daemon left running. The checks are the same; only waiting for them is shorter.
  const clock = new ClockFile(join(w.dir, "settle-clock"));
  const d = spawnCredd(journal, [...cfg, "run"], { ...env(), CREDD_CLOCK_FILE: clock.path });
  await d.waitForLog((l) => l.msg === "check done", 30_000);
  const tokenIssuedWith = (token: string) => w.fake.tokensIssued.find((x) => x.token === token)?.certSha256;
  let settled: string[] = ["not checked"];
  const settleStarted = Date.now();
  const until = settleStarted + 45_000;
  const checksDone = () => d.lines.filter((l) => l.msg === "check done").length;
  let settledAtCheck: number | undefined;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 300));
    desk.poll();
    // A CSR first emailed by this run comes back signed now: handed to a person, it goes to the inbox too.
    for (const f of cliQueue.splice(0)) dropInInbox(w, f, `late-${++dropped}.pem`);
    settled = await checkSettled({ ...invariantInput, received: w.smtp.received, tokenIssuedWith, runtimeDir: w.runtimeDir });
    if (settled.length === 0) {
      // A check in flight when it was seen may still change something (resolve an alert and queue
      // its digest, which the stop would then leave queued): settled means it still holds after a
      // whole check that began once it was seen.
      if (settledAtCheck === undefined) settledAtCheck = checksDone();
      else if (checksDone() >= settledAtCheck + 2) break;
      continue;
    }
    settledAtCheck = undefined;
    clock.advance(60_000);
  }
  const settleMs = Date.now() - settleStarted;
  d.kill("SIGTERM");
  const clean = await d.exited;
  assert.equal(clean.code, 0, `the settling run stops cleanly: ${JSON.stringify(clean)}\n${d.entry.stderr}`);
  if (settled.length) {
    worlds.delete(w); // keep the folder for a post-mortem
    fail(`the clean run did not settle within 45 s (credd's clock moved on ${Math.round(clock.offset / 60_000)} min meanwhile)`, [
      ...settled,
      ...(await pendingDetail()),
    ]);
  }
  await verify("the final clean run");
  settled = await checkSettled({ ...invariantInput, received: w.smtp.received, tokenIssuedWith, runtimeDir: w.runtimeDir });
  if (settled.length) fail("not settled after the clean stop", settled);

  // What went through: cycles completed per credential, kills, resends.
  const { lives, outbox, knownSha } = (await withDb(undefined, async (dbh) => ({
    lives: await dbh.all<{ credential: string; n: number }>(
      "SELECT credential, COUNT(*) AS n FROM renewals WHERE state = 'live' GROUP BY credential",
    ),
    outbox: await dbh.all("SELECT kind, COUNT(*) AS n FROM outbox GROUP BY kind"),
    knownSha: new Set((await dbh.all<{ sha256: string }>("SELECT sha256 FROM certificates")).map((r) => r.sha256)),
  })))!;
  const cycles = lives.reduce((a, r) => a + r.n, 0);
  // A refused inbox file is fine only when it is a certificate credd took in before: a copy dropped
  // again (a killed `credd ingest` retried through the inbox) after the credential moved on (a newer
  // certificate, a rollback, an import) is rightly refused. A certificate never taken in would be lost.
  const rejected = existsSync(join(w.inboxDir, "rejected")) ? readdirSync(join(w.inboxDir, "rejected")).filter((f) => !f.endsWith(".reason")) : [];
  const reasons = rejected.map((f) => `${f}: ${readFileSync(join(w.inboxDir, "rejected", `${f}.reason`), "utf8").trim()}`);
  const lost = rejected.filter((f) => !knownSha.has(certFingerprint(readFileSync(join(w.inboxDir, "rejected", f)))));

  // Secret hygiene over everything this run produced.
  const bag = new SecretBag();
  bag.addKeysUnder("credd key", w.stateDir);
  bag.addKeysUnder("test key", w.dir);
  bag.add("PKCS#12 password", P12_PASSWORD);
  for (const tk of w.fake.tokensIssued) bag.add("access token", tk.token);
  for (const [label, value] of variant.secrets ?? []) bag.add(label, value);
  // SQLite's file (none with store: postgres), and on PostgreSQL every row of every table: its keys
  // are sealed (lib/invariants.ts opens each), so no PEM line of a key may be found in clear.
  const storeRows = sqlite ? [] : [{ where: "postgres database", text: await storeText(store) }];
  if (storeRows.some((r) => /PRIVATE KEY/.test(r.text))) assert.fail("a private key in clear in a PostgreSQL row");
  const hits = scanAll(bag, { logs: journal.text(), databases: [join(w.stateDir, "credd.db")], mails: w.smtp.received, extra: storeRows });
  assert.deepEqual(hits, [], "no key, password or token in logs, database rows or emails");

  const summary = {
    seed,
    store: store.kind,
    kills: stats.kills,
    killsAtFaultPoints: stats.byPoint,
    killsAtRandomTimes: stats.byTimer,
    iterations: stats.iterations,
    commands: stats.cli,
    renewalsCompleted: Object.fromEntries(lives.map((r) => [r.credential, r.n])),
    emails: { received: w.smtp.received.length, resentWithSameMessageId: stats.duplicates, rows: outbox },
    tokensIssued: w.fake.tokensIssued.length,
    registrationEmails: registrations,
    refusedRedrops: reasons,
    secretsSearched: bag.size,
    killPhaseSeconds: Math.round(killPhaseMs / 1000),
    settled: { seconds: Math.round(settleMs / 1000), clockMovedMinutes: Math.round(clock.offset / 60_000) },
    totalSeconds: Math.round((Date.now() - started) / 1000),
  };
  console.log(`# crash summary: ${JSON.stringify(summary)}`);
  t.diagnostic(JSON.stringify(summary));
  assert.ok(
    stats.kills >= Math.min(KILLS, 100),
    `at least ${Math.min(KILLS, 100)} kills (got ${stats.kills} in ${Math.round(killPhaseMs / 1000)} s)`,
  );
  assert.ok(cycles >= 4, `the workload made progress: ${cycles} renewals went live`);
  assert.deepEqual(lost, [], `no signed certificate lost to rejected/ (refused: ${reasons.join(" | ")})`);
}
