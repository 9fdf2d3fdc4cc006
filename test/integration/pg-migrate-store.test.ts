// `credd migrate-store --to postgres` and `credd rotate-store-key` against a real PostgreSQL
// (test/helpers/postgres.ts): a SQLite state made with the store functions (several credentials,
// versions, outbox rows, tokens, alerts, history, mailbox rows) and real key files in archive/ is
// copied; a PgStore then gives the same answers as the SQLite store, every archive file comes back
// byte for byte, the source is untouched, a second copy is refused with nothing changed, bad files
// are refused by name, a copy PostgreSQL alters on the way in (a trigger) fails its check and leaves
// nothing, so does a source written during the copy, and a rotation leaves every key under the new
// KEK alone.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import type pg from "pg";
import { acquireLock } from "../../src/daemon/lock.js";
import { CreddError } from "../../src/errors.js";
import { migrateSqliteToPostgres, openStore, rotatePostgresKey } from "../../src/store/open.js";
import { pgTarget } from "../../src/store/pg/connect.js";
import { readKek, wrapKey } from "../../src/store/pg/keywrap.js";
import { migratePg } from "../../src/store/pg/migrate.js";
import { openPgStore, type PgStore } from "../../src/store/pg/pg-store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import { type PgCluster, postgresBin, postgresMissing, startPostgres } from "../helpers/postgres.js";

const skip = postgresMissing();
const work = mkdtempSync(join(tmpdir(), "credd-migrate-store-"));
after(() => rmSync(work, { recursive: true, force: true }));
process.env.CREDD_HOST_NAME = "host-a";

const T = (min: number): string => new Date(Date.UTC(2026, 10, 25, 15, min)).toISOString();
const D = (min: number): Date => new Date(T(min));

function cert(credential: string, version: number, renewal_id: number | null = null) {
  return {
    credential,
    version,
    serial: `0${version}AB`,
    not_before: T(0),
    not_after: "2027-11-25T15:00:00.000Z",
    subject: `CN=${credential}`,
    issuer: "CN=Stellantis B2B CA",
    spki_sha256: `spki-${credential}-${version}`,
    sha256: `sha-${credential}-${version}`,
    source: renewal_id ? ("renewal" as const) : ("import" as const),
    installed_at: T(version),
    renewal_id,
  };
}

let mails = 0;
function mail() {
  mails++;
  return {
    messageId: `<credd.${mails}@host.example>`,
    from: "credd@host.example",
    to: ["ca@partner.example"],
    cc: [],
    subject: `CSR ${mails} – é`,
    text: "Bonjour,\n\nle CSR.\n",
    attachments: [{ filename: "a.csr", contentType: "application/pkcs10", content: "-----BEGIN CERTIFICATE REQUEST-----" }],
  };
}

const situation = (credential: string | null, kind: string, stage: string, event = false) => ({
  credential,
  kind,
  stage,
  severity: "warning" as const,
  title: `${kind} ${stage}`,
  detail: "details",
  action: "do it",
  ...(event ? { event } : {}),
});

/** A state_dir made with the store functions, and real key files (mode 0600) in archive/. */
async function makeState(name: string): Promise<{ stateDir: string; files: string[] }> {
  const stateDir = join(work, name, "state");
  const s = openSqliteStore(stateDir);
  mails = 0;
  // alpha: v1 imported, v2 from a renewal made live; a pending v3 renewal, CSR sent. beta: v1 live.
  await s.insertInstalledCertificate(cert("alpha", 1));
  await s.makeLive("alpha", 1, T(1));
  const r2 = await s.insertRenewal({
    credential: "alpha",
    version: 2,
    kind: "renew",
    forced: 0,
    reason: "30 days left",
    spki_sha256: "spki-alpha-2",
    key_type: "rsa-3072",
    created_at: T(2),
  });
  await s.markCsrSent(r2, T(3));
  await s.setRenewalState(r2, "signed", T(4));
  await s.insertInstalledCertificate(cert("alpha", 2, r2));
  await s.makeLive("alpha", 2, T(5));
  await s.setRenewalState(r2, "live", T(5));
  const r3 = await s.insertRenewal({
    credential: "alpha",
    version: 3,
    kind: "renew",
    forced: 1,
    reason: "forced",
    spki_sha256: "spki-alpha-3",
    key_type: "ec-p256",
    created_at: T(6),
  });
  await s.markCsrSent(r3, T(7));
  await s.insertInstalledCertificate(cert("beta", 1));
  await s.makeLive("beta", 1, T(2));
  const m1 = await s.enqueueMail({ mail: mail(), kind: "csr", credential: "alpha", renewalId: r3, now: D(7) } as never);
  const m2 = await s.enqueueMail({ mail: mail(), kind: "alert", now: D(8) } as never);
  await s.enqueueMail({ mail: mail(), kind: "alert", now: D(9) } as never);
  await s.markMailSent(m1, D(8));
  await s.markMailFailed(m2, "421 try later", D(30), true);
  await s.recordTokenSuccess({
    credential: "alpha",
    token_type: "Bearer",
    scope: "b2b",
    obtained_at: T(5),
    expires_at: T(65),
    refresh_at: T(45),
    cert_version: 2,
    cert_sha256: "sha-alpha-2",
  });
  await s.recordTokenFailure("beta", "HTTP 503", T(2), T(4));
  await s.recordChecks([
    { credential: "alpha", at: D(10) },
    { credential: "beta", at: D(10), error: "smtp down" },
  ] as never);
  await s.setMeta("last_check_at", T(10));
  // What credd run on SQLite keeps without a host name (on PostgreSQL: KEY@host).
  await s.setMeta("clean_stop", "1");
  await s.setMeta("started_at", T(0));
  await s.setMeta("stopped_at", T(11));
  await s.upsertAlert(situation("alpha", "certificate-expiry", "30d"), T(1));
  await s.upsertAlert(situation(null, "smtp-failing", "1h"), T(2));
  const smtp = (await s.openAlerts()).find((a) => a.kind === "smtp-failing")!;
  await s.resolveAlert(smtp.id, T(3));
  await s.upsertAlert(situation(null, "smtp-failing", "1h"), T(4));
  await s.recordEvent(situation(null, "restart", "2026-11-25", true), T(5));
  await s.recordHookRun({
    credential: "alpha",
    version: 2,
    serial: "02AB",
    argv_json: JSON.stringify(["systemctl", "reload", "x"]),
    ok: 1,
    exit_code: 0,
    signal: null,
    duration_ms: 12,
    error: null,
    output: "done\n",
    started_at: T(5),
  });
  await s.recordHookRun({
    credential: "alpha",
    version: 2,
    serial: "02AB",
    argv_json: '[ "/bin/false" ]',
    ok: 0,
    exit_code: 1,
    signal: null,
    duration_ms: 3,
    error: "exit 1",
    output: "",
    started_at: T(5),
  });
  await s.recordIngest({
    at: T(4),
    file: "/inbox/a.pem",
    credential: "alpha",
    outcome: "installed",
    check_name: null,
    reason: null,
    serial: "02AB",
    sha256: "sha",
  });
  await s.recordIngest({
    at: T(6),
    file: "/inbox/b.pem",
    credential: null,
    outcome: "refused",
    check_name: "no-credential",
    reason: "no DN matches",
    serial: null,
    sha256: null,
  });
  const msg = (key: string, extra: object = {}) => ({
    source: "maildir:/var/mail/credd",
    message_key: key,
    message_id: `<${key}@partner.example>`,
    sender: "ca@partner.example",
    subject: "Re: CSR",
    credential: "alpha",
    matched_by: "in-reply-to",
    outcome: "installed" as const,
    reason: null,
    details_json: null,
    handled_at: T(10),
    folder: "done",
    ...extra,
  });
  await s.recordMailboxMessage(msg("k1", { details_json: '{"client_id": "x"}' }));
  await s.recordMailboxMessage(msg("k2", { outcome: "needs-person", reason: "two certificates", folder: null }));
  await s.recordSourceFailure("imap:u@h/INBOX", "auth failed", T(1));
  await s.heartbeatHost({ name: "host-a", pid: 42, role: "leader", version: "0.1.0", started_at: T(0), last_heartbeat_at: T(10) });
  await s.close();

  const files: string[] = [];
  const put = (credential: string, file: string, text: string, mode: number) => {
    const dir = join(stateDir, "credentials", credential, "archive");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, file), text, { mode });
    files.push(join(dir, file));
  };
  const key = () => generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  for (const [credential, versions] of [
    ["alpha", [1, 2, 3]],
    ["beta", [1]],
  ] as const) {
    for (const v of versions) {
      put(credential, `key-${v}.pem`, key(), 0o600);
      put(credential, `csr-${v}.pem`, `-----BEGIN CERTIFICATE REQUEST-----\n${credential}${v}\n-----END CERTIFICATE REQUEST-----\n`, 0o644);
      if (v !== 3) {
        put(credential, `cert-${v}.pem`, `-----BEGIN CERTIFICATE-----\n${credential}${v}\n-----END CERTIFICATE-----\n`, 0o644);
        put(credential, `chain-${v}.pem`, v === 1 ? "" : "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n", 0o644);
      }
    }
  }
  // Not credd's files: left alone.
  writeFileSync(join(stateDir, "credentials", "alpha", "archive", ".cert-9.pem.123.tmp"), "half");
  return { stateDir, files };
}

/** Every question status, the check and the outbox ask, in one object. */
async function answers(s: Store) {
  return {
    snapshot: await s.readSnapshot(),
    facts: await s.allDecisionFacts(),
    alpha: await s.decisionFacts("alpha"),
    pending: await s.pendingRenewal("alpha"),
    renewal1: await s.getRenewal(1),
    queued: await s.queuedMails(),
    alerts: await s.openAlerts(),
    tokenAlpha: await s.getToken("alpha"),
    tokenBeta: await s.getToken("beta"),
    timings: await s.tokenTimings(),
    meta: await s.getMeta("last_check_at"),
    refusal: await s.lastUnmatchedRefusal(),
    threads: await s.sentThreads(["<credd.1@host.example>", "<credd.2@host.example>"]),
    handled: await s.handledCopy("<k1@partner.example>"),
    lastMessages: await s.lastMailboxMessages(),
    source: await s.mailboxSource("imap:u@h/INBOX"),
  };
}

function hashes(stateDir: string, files: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of [join(stateDir, "credd.db"), ...files]) out[f] = createHash("sha256").update(readFileSync(f)).digest("hex");
  out.listing = readdirSync(join(stateDir, "credentials", "alpha", "archive"))
    .sort()
    .join(",");
  return out;
}

describe("credd migrate-store and rotate-store-key on PostgreSQL", { skip }, () => {
  let cluster: PgCluster;
  let admin: pg.Client;
  let dbs = 0;
  /** A new empty database and its url file (0600). */
  const freshDb = async (): Promise<{ name: string; urlFile: string }> => {
    const name = `migrate_${++dbs}`;
    await admin.query(`CREATE DATABASE ${name} OWNER ${cluster.user}`);
    const urlFile = join(work, `url-${name}`);
    writeFileSync(urlFile, `postgres://${cluster.user}:${encodeURIComponent(cluster.password)}@127.0.0.1:${cluster.port}/${name}\n`, { mode: 0o600 });
    return { name, urlFile };
  };
  const newKek = (name: string): string => {
    const f = join(work, name);
    writeFileSync(f, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
    return f;
  };
  const to = (urlFile: string, kek: string) => ({
    url_file: urlFile,
    key_encryption_key_file: kek,
    keys: { url: "--url-file", kek: "--key-encryption-key-file", ca: "--ca-file" },
  });
  const spec = (stateDir: string) => ({ store: "sqlite" as const, state_dir: stateDir, file: join(work, "credd.yaml") });
  const pgSpec = (stateDir: string, urlFile: string, kek: string, previous: string[] = []) => ({
    store: { postgres: { url_file: urlFile, key_encryption_key_file: kek, previous_key_encryption_key_files: previous } },
    state_dir: stateDir,
    file: join(work, "credd.yaml"),
  });
  const counts = async (db: string): Promise<Record<string, string>> => {
    const c = await cluster.admin(db);
    try {
      const out: Record<string, string> = {};
      const tables = (await c.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")).rows as {
        tablename: string;
      }[];
      for (const { tablename } of tables) {
        const rows = (await c.query(`SELECT * FROM ${tablename}`)).rows;
        out[tablename] = createHash("sha256")
          .update(JSON.stringify(rows.map((r) => JSON.stringify(r)).sort()))
          .digest("hex");
      }
      return out;
    } finally {
      await c.end();
    }
  };

  /** Rows in every credd table of the database (schema_migrations is the schema's own). */
  const credRows = async (db: string): Promise<number> => {
    const c = await cluster.admin(db);
    try {
      const tables = (await c.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")).rows as {
        tablename: string;
      }[];
      assert.ok(tables.length > 5, "the schema is there");
      let n = 0;
      for (const { tablename } of tables) n += (await c.query(`SELECT count(*)::int AS n FROM ${tablename}`)).rows[0].n as number;
      return n;
    } finally {
      await c.end();
    }
  };

  before(async () => {
    cluster = await startPostgres();
    admin = await cluster.admin("postgres");
  });
  after(async () => {
    await admin?.end();
    await cluster?.destroy();
  });

  test("the copy answers as the SQLite store did, archive/ comes back byte for byte, the source is untouched", async () => {
    const { stateDir, files } = await makeState("copy");
    const db = await freshDb();
    const kek = newKek("kek-copy");
    const before = hashes(stateDir, files);
    const lines: string[] = [];
    const r = await migrateSqliteToPostgres(spec(stateDir), to(db.urlFile, kek), (l) => lines.push(l));
    assert.deepEqual(hashes(stateDir, files), before, "credd.db and the archive files are unchanged");
    assert.ok(!lines.join("\n").includes(cluster.password), "the password is never printed");
    assert.match(lines.join("\n"), /copied outbox: 3 rows/);
    assert.match(lines.join("\n"), /verified/);
    assert.equal(r.versions, 4);
    assert.equal(r.keys, 4);
    assert.equal(r.tables.find((t) => t.table === "certificates")?.rows, 3);

    const sqlite = openSqliteStore(stateDir, { readonly: true });
    const target = pgTarget({ urlFile: db.urlFile });
    const pgs: PgStore = openPgStore(target, { kek: readKek(kek), host: "host-a" });
    try {
      const want = await answers(sqlite);
      const got = await answers(pgs);
      assert.deepStrictEqual(got, want);
      assert.equal(want.snapshot.live.get("alpha")?.version, 2, "the fixture has the rows it should");
      assert.equal(want.snapshot.pending.get("alpha")?.version, 3);
      assert.equal(want.alerts.length, 2);
      assert.equal(want.tokenAlpha?.token_type, "Bearer", "the fixture has the rows it should");
      // The SQLite host's heartbeat row (role leader, an old heartbeat) is not copied: on PostgreSQL
      // status would show it as a stale leader nobody is. Hosts appear there as they heartbeat.
      assert.deepEqual(
        (await sqlite.listHosts()).map((h) => [h.name, h.role]),
        [["host-a", "leader"]],
        "the fixture has the row",
      );
      assert.deepEqual(await pgs.listHosts(), []);
      assert.deepEqual(
        r.notCopied.map((t) => [t.table, t.rows]),
        [["hosts", 1]],
      );
      assert.match(lines.join("\n"), /not copied hosts: 1 row \(the SQLite host's heartbeat/);
      // Its own meta keys become this host's, as credd run keeps them on PostgreSQL; the store's stay.
      assert.deepEqual([...r.hostMeta].sort(), ["clean_stop", "started_at", "stopped_at"]);
      for (const k of ["clean_stop", "started_at", "stopped_at"]) {
        assert.equal(await pgs.getMeta(`${k}@host-a`), await sqlite.getMeta(k), k);
        assert.ok((await sqlite.getMeta(k)) !== undefined, `the fixture has ${k}`);
        assert.equal(await pgs.getMeta(k), undefined, `no host-less ${k} on PostgreSQL`);
      }
      assert.equal(await pgs.getMeta("last_check_at"), T(10));
      // Every archive file, the keys unsealed with the KEK.
      for (const [credential, v] of [
        ["alpha", 1],
        ["alpha", 2],
        ["alpha", 3],
        ["beta", 1],
      ] as const) {
        const parts = await pgs.getArchive(credential, v);
        const dir = join(stateDir, "credentials", credential, "archive");
        assert.equal(parts?.key, readFileSync(join(dir, `key-${v}.pem`), "utf8"), `${credential} key ${v}`);
        assert.equal(parts?.csr, readFileSync(join(dir, `csr-${v}.pem`), "utf8"));
        if (v !== 3) assert.equal(parts?.cert, readFileSync(join(dir, `cert-${v}.pem`), "utf8"));
        if (v !== 3) assert.equal(parts?.chain, readFileSync(join(dir, `chain-${v}.pem`), "utf8"));
        if (v === 3) assert.equal(parts?.cert, undefined);
      }
      // The identities were moved past the highest id: a new row takes the next one, no clash.
      const next = await pgs.enqueueMail({ mail: mail(), kind: "alert", now: D(50) } as never);
      assert.equal(next, 4);
      const nextRenewal = await pgs.insertRenewal({
        credential: "beta",
        version: 2,
        kind: "renew",
        forced: 0,
        reason: "r",
        spki_sha256: "s",
        key_type: "rsa-3072",
        created_at: T(50),
      });
      assert.equal(nextRenewal, 3);
    } finally {
      await sqlite.close();
      await pgs.close();
    }
    assert.deepEqual(hashes(stateDir, files), before, "and unchanged after it was read again");
  });

  test("a second copy into the same database is refused and changes nothing", async () => {
    const { stateDir } = await makeState("twice");
    const db = await freshDb();
    const kek = newKek("kek-twice");
    await migrateSqliteToPostgres(spec(stateDir), to(db.urlFile, kek), () => {});
    const before = await counts(db.name);
    await assert.rejects(
      () => migrateSqliteToPostgres(spec(stateDir), to(db.urlFile, kek), () => {}),
      (err: unknown) => err instanceof CreddError && err.code === "STATE" && /already holds credd rows: .*certificates \(3 rows\)/.test(err.message),
    );
    assert.deepEqual(await counts(db.name), before, "every table is as it was");
  });

  test("an unreadable or wrong KEK file and a missing url file are refused by name, before the database is touched", async () => {
    const { stateDir } = await makeState("badfiles");
    const db = await freshDb();
    const loose = newKek("kek-loose");
    chmodSync(loose, 0o644);
    await assert.rejects(
      () => migrateSqliteToPostgres(spec(stateDir), to(db.urlFile, loose), () => {}),
      (err: unknown) =>
        err instanceof CreddError &&
        err.message.includes(loose) &&
        err.message.includes("--key-encryption-key-file") &&
        /chmod 0600/.test(err.message),
    );
    const short = join(work, "kek-short");
    writeFileSync(short, "c2hvcnQ=\n", { mode: 0o600 });
    await assert.rejects(
      () => migrateSqliteToPostgres(spec(stateDir), to(db.urlFile, short), () => {}),
      (err: unknown) => err instanceof CreddError && err.message.includes(short) && /not 32/.test(err.message),
    );
    const nourl = join(work, "no-such-url");
    await assert.rejects(
      () => migrateSqliteToPostgres(spec(stateDir), to(nourl, newKek("kek-ok")), () => {}),
      (err: unknown) => err instanceof CreddError && err.message.includes(nourl) && err.message.includes("--url-file"),
    );
    const tables = (await cluster.admin(db.name).then(async (c) => {
      try {
        return (await c.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'")).rows[0].n;
      } finally {
        await c.end();
      }
    })) as number;
    assert.equal(tables, 0, "nothing was created in the database");
  });

  test("a key file PgStore would not read back as written (not UTF-8) is refused by name, nothing written", async () => {
    const { stateDir } = await makeState("binkey");
    const db = await freshDb();
    // PgStore hands keys out as UTF-8 text (getArchive): these bytes would come back as U+FFFD.
    const bad = join(stateDir, "credentials", "beta", "archive", "key-1.pem");
    writeFileSync(bad, Buffer.from([0x2d, 0xff, 0xfe, 0x0a]), { mode: 0o600 });
    await assert.rejects(
      () => migrateSqliteToPostgres(spec(stateDir), to(db.urlFile, newKek("kek-binkey")), () => {}),
      (err: unknown) => err instanceof CreddError && err.code === "REFUSED" && err.message.includes(bad) && /fix: restore the file/.test(err.message),
    );
    const c = await cluster.admin(db.name);
    try {
      assert.equal((await c.query("SELECT count(*)::int AS n FROM archive")).rows[0].n, 0, "nothing was written");
      assert.equal((await c.query("SELECT count(*)::int AS n FROM certificates")).rows[0].n, 0);
    } finally {
      await c.end();
    }
  });

  test("a SQLite value PostgreSQL would refuse (bad JSON, a NUL byte) is refused naming the row and column, nothing written", async () => {
    for (const [name, sql, want] of [
      ["badjson", "UPDATE hook_runs SET argv_json = '[\"systemctl\", ' WHERE id = 2", /hook_runs id=2: argv_json is not JSON text/],
      ["nulbyte", "UPDATE ingests SET reason = 'a' || char(0) || 'b' WHERE id = 2", /ingests id=2: reason is not text without a NUL byte/],
    ] as const) {
      const { stateDir } = await makeState(name);
      const raw = new Database(join(stateDir, "credd.db"));
      raw.exec(sql);
      raw.close();
      const db = await freshDb();
      await assert.rejects(
        () => migrateSqliteToPostgres(spec(stateDir), to(db.urlFile, newKek(`kek-${name}`)), () => {}),
        (err: unknown) => err instanceof CreddError && err.code === "REFUSED" && want.test(err.message) && /fix: correct that row/.test(err.message),
      );
      const c = await cluster.admin(db.name);
      try {
        assert.equal((await c.query("SELECT count(*)::int AS n FROM certificates")).rows[0].n, 0, "nothing was written");
      } finally {
        await c.end();
      }
    }
  });

  test("a copy that PostgreSQL changes on the way in (a trigger) fails the check and rolls everything back", async () => {
    // The check must compare what is in PostgreSQL with the source, not with itself: a trigger in
    // the target database alters one value of a table row, then one archive file, as they are inserted.
    for (const [name, sql, want] of [
      [
        "trigger_table",
        `CREATE FUNCTION tamper() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF NEW.credential = 'alpha' AND NEW.version = 2 THEN NEW.subject := 'CN=someone else'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER tamper BEFORE INSERT ON certificates FOR EACH ROW EXECUTE FUNCTION tamper()`,
        /the copy of table certificates does not match .*certificates id=\d+: subject differs \(rolled back, nothing written/,
      ],
      [
        "trigger_archive",
        `CREATE FUNCTION tamper() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF NEW.credential = 'beta' THEN NEW.chain_pem := NEW.chain_pem || 'x'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER tamper BEFORE INSERT ON archive FOR EACH ROW EXECUTE FUNCTION tamper()`,
        /the copy of archive\/ does not match: beta version 1: chain differs from .*chain-1\.pem \(rolled back, nothing written/,
      ],
    ] as const) {
      const { stateDir } = await makeState(name);
      const db = await freshDb();
      // A schema alone is an empty database for the copy: made first, so the trigger has its table.
      await migratePg(pgTarget({ urlFile: db.urlFile }));
      const c = await cluster.admin(db.name);
      try {
        await c.query(sql);
      } finally {
        await c.end();
      }
      const lines: string[] = [];
      await assert.rejects(
        () => migrateSqliteToPostgres(spec(stateDir), to(db.urlFile, newKek(`kek-${name}`)), (l) => lines.push(l)),
        (err: unknown) => err instanceof CreddError && err.code === "INTERNAL" && want.test(err.message),
      );
      assert.ok(!lines.some((l) => l.startsWith("verified")), "never reported as verified");
      assert.equal(await credRows(db.name), 0, "no credd row is left in any table");
    }
  });

  test("archive/ or credd.db written during the copy (credd import and enroll take no lock) fails the check, nothing written", async () => {
    // The progress lines mark the moments: "source:" after archive/ was read and before the tables
    // are, "copied alerts" once that table is in, "stored archive" just before the check.
    const archiveOf = (stateDir: string, credential: string) => join(stateDir, "credentials", credential, "archive");
    const cases: [string, (stateDir: string, line: string) => void, RegExp][] = [
      [
        "enroll_during",
        // An enroll's new key and CSR land after the archive was stored.
        (stateDir, line) => {
          if (!line.startsWith("stored archive")) return;
          writeFileSync(join(archiveOf(stateDir, "alpha"), "key-4.pem"), "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n", {
            mode: 0o600,
          });
          writeFileSync(join(archiveOf(stateDir, "alpha"), "csr-4.pem"), "-----BEGIN CERTIFICATE REQUEST-----\n");
        },
        /^archive\/ changed during the copy: run it again\. .*alpha version 4 appeared(?! \(its)/,
      ],
      [
        "import_during",
        // An import writes its files, then its certificates row: the files after archive/ was read,
        // the row before the table was. The row is copied, the version's files are not.
        (stateDir, line) => {
          if (!line.startsWith("source:")) return;
          writeFileSync(join(archiveOf(stateDir, "alpha"), "key-4.pem"), "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n", {
            mode: 0o600,
          });
          writeFileSync(join(archiveOf(stateDir, "alpha"), "cert-4.pem"), "-----BEGIN CERTIFICATE-----\nalpha4\n-----END CERTIFICATE-----\n");
          const raw = new Database(join(stateDir, "credd.db"));
          try {
            const cols = (raw.prepare("PRAGMA table_info(certificates)").all() as { name: string }[]).map((c) => c.name).filter((c) => c !== "id");
            const pick = (c: string) => ({ version: "4", serial: "'04AB'", sha256: "'sha-alpha-4'", live: "0" })[c] ?? c;
            raw.exec(
              `INSERT INTO certificates (${cols.join(", ")}) SELECT ${cols.map(pick).join(", ")} FROM certificates WHERE credential = 'alpha' AND version = 2`,
            );
          } finally {
            raw.close();
          }
        },
        /^archive\/ changed during the copy: run it again\. .*alpha version 4 appeared \(its certificates row was copied, its files were not\)/,
      ],
      [
        "cert_rewritten",
        (stateDir, line) => {
          if (line.startsWith("stored archive"))
            writeFileSync(join(archiveOf(stateDir, "beta"), "cert-1.pem"), "-----BEGIN CERTIFICATE-----\nother\n-----END CERTIFICATE-----\n");
        },
        /^archive\/ changed during the copy: run it again\. .*beta\/archive\/cert-1\.pem changed/,
      ],
      [
        "db_during",
        (stateDir, line) => {
          if (!line.startsWith("copied alerts")) return;
          const raw = new Database(join(stateDir, "credd.db"));
          try {
            raw.exec("UPDATE alerts SET detail = 'changed' WHERE id = 1");
          } finally {
            raw.close();
          }
        },
        /credd\.db changed during the copy: run it again\. alerts: \d+ rows copied, a row changed since .*fix: .*run credd migrate-store again/,
      ],
    ];
    for (const [name, during, want] of cases) {
      const { stateDir } = await makeState(name);
      const db = await freshDb();
      const lines: string[] = [];
      await assert.rejects(
        () =>
          migrateSqliteToPostgres(spec(stateDir), to(db.urlFile, newKek(`kek-${name}`)), (l) => {
            lines.push(l);
            during(stateDir, l);
          }),
        (err: unknown) => err instanceof CreddError && err.code === "STATE" && want.test(err.message) && !err.message.includes("BEGIN"),
        name,
      );
      assert.ok(!lines.some((l) => l.startsWith("verified")), "never reported as verified");
      assert.equal(await credRows(db.name), 0, `${name}: no credd row is left in any table`);
      // Run again on the state as it is now: copied, and every version is in the archive table.
      const db2 = await freshDb();
      const r = await migrateSqliteToPostgres(spec(stateDir), to(db2.urlFile, newKek(`kek-${name}-2`)), () => {});
      assert.equal(r.versions, name === "enroll_during" || name === "import_during" ? 5 : 4, name);
    }
  });

  test("refused while credd run holds the state lock", async () => {
    const { stateDir } = await makeState("locked");
    const db = await freshDb();
    const lock = acquireLock(stateDir);
    try {
      const { cmdMigrateStore } = await import("../../src/cli/migrate-store.js");
      const cfg = join(work, "locked", "credd.yaml");
      const { smallConfigYaml, writeConfig } = await import("../helpers/credd.js");
      const file = writeConfig(
        join(work, "locked"),
        smallConfigYaml({ top: [`state_dir: ${stateDir}`, `runtime_dir: ${join(work, "locked", "run")}`] }),
      );
      assert.ok(file.length > 0 && cfg.length > 0);
      await assert.rejects(
        () =>
          cmdMigrateStore(
            {
              args: [],
              flags: new Set(),
              values: { to: "postgres", "url-file": db.urlFile, "key-encryption-key-file": newKek("kek-locked") },
              raw: [],
            },
            { configPath: file },
            { out: () => {}, err: () => {} },
          ),
        (err: unknown) => err instanceof CreddError && err.code === "LOCKED",
      );
    } finally {
      lock.release();
    }
  });

  test("rotation: every key under the new KEK alone; the old key alone fails loudly; previous_key_encryption_key_files opens during the change", async () => {
    const { stateDir } = await makeState("rotate");
    const db = await freshDb();
    const oldKek = newKek("kek-old");
    const newKekFile = newKek("kek-new");
    await migrateSqliteToPostgres(spec(stateDir), to(db.urlFile, oldKek), () => {});
    const keyOf = (credential: string, v: number) => readFileSync(join(stateDir, "credentials", credential, "archive", `key-${v}.pem`), "utf8");
    const every = [
      ["alpha", 1],
      ["alpha", 2],
      ["alpha", 3],
      ["beta", 1],
    ] as const;

    // Before: a host given the new key as current and the old one as previous opens every key, and starts.
    const during = await openStore(pgSpec(stateDir, db.urlFile, newKekFile, [oldKek]));
    try {
      for (const [c, v] of every) assert.equal((await during.store.getArchive(c, v))?.key, keyOf(c, v));
    } finally {
      await during.store.close();
    }
    // Without the previous file, that host refuses to start: loud, naming both.
    await assert.rejects(
      () => openStore(pgSpec(stateDir, db.urlFile, newKekFile)),
      (err: unknown) =>
        err instanceof CreddError && err.code === "STATE" && err.message.includes(newKekFile) && /could open none of them/.test(err.message),
    );

    const lines: string[] = [];
    const r = await rotatePostgresKey(pgSpec(stateDir, db.urlFile, newKekFile), [{ file: oldKek, key: "--previous" }], (l) => lines.push(l));
    assert.equal(r.keys, 4);
    assert.equal(r.rewrapped, 4);
    assert.equal(r.kekId, readKek(newKekFile).id);
    assert.deepEqual(r.from, { [readKek(oldKek).id]: 4 });
    const c = await cluster.admin(db.name);
    try {
      const ids = (await c.query("SELECT DISTINCT kek_id FROM archive WHERE key_envelope IS NOT NULL")).rows.map((x) => x.kek_id);
      assert.deepEqual(ids, [readKek(newKekFile).id]);
    } finally {
      await c.end();
    }

    // After: the new key alone opens every key.
    const target = pgTarget({ urlFile: db.urlFile });
    const fresh = openPgStore(target, { kek: readKek(newKekFile) });
    const stale = openPgStore(target, { kek: readKek(oldKek) });
    try {
      for (const [cr, v] of every) assert.equal((await fresh.getArchive(cr, v))?.key, keyOf(cr, v));
      await assert.rejects(
        () => stale.getArchive("alpha", 2),
        (err: unknown) => err instanceof CreddError && err.code === "STATE" && err.message.includes(oldKek) && /does not re-enroll/.test(err.message),
      );
    } finally {
      await fresh.close();
      await stale.close();
    }
    // A host still on the old key alone refuses to start.
    await assert.rejects(
      () => openStore(pgSpec(stateDir, db.urlFile, oldKek)),
      (err: unknown) => err instanceof CreddError && err.code === "STATE" && /could open none of them/.test(err.message),
    );
    // So does one that lists the new key as previous but would still seal under the old, retired one:
    // the hosts that dropped the old key could not open what it seals (a new renewal's key).
    const rows = await counts(db.name);
    await assert.rejects(
      () => openStore(pgSpec(stateDir, db.urlFile, oldKek, [newKekFile])),
      (err: unknown) =>
        err instanceof CreddError &&
        err.code === "STATE" &&
        err.message.includes(oldKek) &&
        err.message.includes(readKek(oldKek).id) &&
        /retired by credd rotate-store-key/.test(err.message) &&
        /fix: set store\.postgres\.key_encryption_key_file to the new key's file/.test(err.message),
    );
    assert.deepEqual(await counts(db.name), rows, "the refused host changed nothing");
    // The new key as current with the old one as previous (step 3, before the rotation) still starts.
    const caughtUp = await openStore(pgSpec(stateDir, db.urlFile, newKekFile, [oldKek]));
    try {
      assert.equal((await caughtUp.store.getArchive("beta", 1))?.key, keyOf("beta", 1));
    } finally {
      await caughtUp.store.close();
    }

    // Again: harmless, nothing to reseal. With a wrong previous key and keys it cannot open: refused, nothing changed.
    const again = await rotatePostgresKey(pgSpec(stateDir, db.urlFile, newKekFile), [{ file: oldKek, key: "--previous" }], () => {});
    assert.equal(again.rewrapped, 0);
    const before = await counts(db.name);
    const third = newKek("kek-third");
    await assert.rejects(
      () => rotatePostgresKey(pgSpec(stateDir, db.urlFile, third), [{ file: oldKek, key: "--previous" }], () => {}),
      (err: unknown) => err instanceof CreddError && err.code === "STATE" && err.message.includes(oldKek) && err.message.includes(third),
    );
    assert.deepEqual(await counts(db.name), before, "a refused rotation changes nothing");
  });

  test("rotation: a host sealing a new key meanwhile waits for it (the archive table is locked), and the rotation succeeds", async () => {
    const { stateDir } = await makeState("rotate_insert");
    const db = await freshDb();
    const oldKek = newKek("kek-ri-old");
    const newKekFile = newKek("kek-ri-new");
    await migrateSqliteToPostgres(spec(stateDir), to(db.urlFile, oldKek), () => {});
    // Another host's new renewal, as PgStore.putArchive stores it (sealed under the new key, step 3).
    const plain = "-----BEGIN PRIVATE KEY-----\ngamma\n-----END PRIVATE KEY-----\n";
    const envelope = wrapKey(readKek(newKekFile), { credential: "gamma", version: 1 }, plain).toString("hex");
    const insert = (timeoutMs: number) =>
      execFileSync(
        join(postgresBin()!, "psql"),
        [
          "-X",
          "-q",
          "-v",
          "ON_ERROR_STOP=1",
          "-h",
          "127.0.0.1",
          "-p",
          String(cluster.port),
          "-U",
          cluster.user,
          "-d",
          db.name,
          "-c",
          `SET lock_timeout = '${timeoutMs}ms'; INSERT INTO archive (credential, version, key_envelope, kek_id, csr_pem, updated_at)
           VALUES ('gamma', 1, '\\x${envelope}', '${readKek(newKekFile).id}', 'csr', now())`,
        ],
        { env: { ...process.env, PGPASSWORD: cluster.password }, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" },
      );
    // Inside the rotation's transaction, after its keys were sealed again and before its check: the
    // insert is tried there (synchronously, so the moment is exact) and must wait for the rotation.
    let meanwhile = "";
    const r = await rotatePostgresKey(pgSpec(stateDir, db.urlFile, newKekFile), [{ file: oldKek, key: "--previous" }], (line) => {
      if (!line.startsWith("sealed again")) return;
      try {
        insert(300);
        meanwhile = "inserted";
      } catch (err) {
        meanwhile = String((err as { stderr?: string }).stderr);
      }
    });
    assert.match(meanwhile, /canceling statement due to lock timeout/, "the insert waited for the rotation");
    assert.equal(r.keys, 4);
    assert.equal(r.rewrapped, 4);
    // Once it committed, the host's insert goes through, and its key opens under the new key.
    insert(5000);
    const fresh = openPgStore(pgTarget({ urlFile: db.urlFile }), { kek: readKek(newKekFile) });
    try {
      assert.equal((await fresh.getArchive("gamma", 1))?.key, plain);
    } finally {
      await fresh.close();
    }
  });
});
