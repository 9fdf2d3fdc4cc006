// Following a shared PostgreSQL store (src/core/follow.ts, docs/shared-store.md) with two hosts'
// contexts in one process, each with its own state_dir, on a real throwaway cluster: the store is the
// truth, so a host whose disk is behind never rolls it back, and one credential it cannot follow
// never keeps the others behind. Needs Debian's postgresql (skipped with one line without it).
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import { buildCtx } from "../../src/cli/context.js";
import { checkAll } from "../../src/core/check.js";
import type { Ctx } from "../../src/core/context.js";
import { followStore } from "../../src/core/follow.js";
import { goLive } from "../../src/core/golive.js";
import { importCertificate } from "../../src/core/import.js";
import { ingestBatch } from "../../src/core/ingest.js";
import { startRenewal } from "../../src/core/renewal.js";
import { credentialPaths } from "../../src/files/layout.js";
import { liveVersion } from "../../src/files/live.js";
import { proxyDeps } from "../../src/proxy/listeners.js";
import { credentialYaml, dnFor, runCredd, writeConfig } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, signCsr, type TestCa } from "../helpers/openssl.js";
import { type PgCluster, postgresMissing, startPostgres } from "../helpers/postgres.js";

const skip = postgresMissing();

describe("following a shared store", { skip }, () => {
  let cluster: PgCluster;
  let admin: pg.Client;
  let ca: TestCa;
  let root: string;
  const opened: Ctx[] = [];
  before(async () => {
    cluster = await startPostgres();
    admin = await cluster.admin();
    root = makeTempDir("credd-follow-");
    ca = makeCa(root);
  });
  after(async () => {
    for (const c of opened) await c.store.close();
    await admin?.end();
    await cluster?.destroy();
  });

  const freshDb = async (name: string): Promise<string> => {
    await admin.query(`CREATE DATABASE ${name} OWNER ${cluster.user}`);
    return name;
  };
  /** One host's context: its own state_dir, the shared store's url and key-encryption key. */
  const host = async (
    db: string,
    name: string,
    credentials = [credentialYaml("fleet-a", "MZP100001"), credentialYaml("fleet-b", "MZP100002")],
    open = true,
  ): Promise<Ctx> => {
    const dir = join(root, `${db}-${name}`);
    mkdirSync(dir, { recursive: true });
    const url = join(dir, "store-url");
    writeFileSync(url, `${cluster.url.replace(/\/[^/]*$/, `/${db}`)}\n`, { mode: 0o640 });
    chmodSync(url, 0o640);
    const kek = join(dir, "store-kek");
    writeFileSync(kek, `${Buffer.alloc(32, 7).toString("base64")}\n`, { mode: 0o600 });
    const config = writeConfig(
      dir,
      [
        `state_dir: ${join(dir, "state")}`,
        `runtime_dir: ${join(dir, "run")}`,
        `store: { postgres: { url_file: ${url}, key_encryption_key_file: ${kek} } }`,
        `smtp: { url: "smtp://127.0.0.1:9", from: "credd <credd@partner.example>" }`,
        "alerts: { to: [ops@partner.example] }",
        `stellantis: { contact: connectedcar@stellantis.example, ca_file: ${ca.certPath} }`,
        "credentials:",
        ...credentials,
        "",
      ].join("\n"),
    );
    if (!open) return { config: { file: config } } as Ctx;
    const ctx = await buildCtx(config);
    opened.push(ctx);
    return ctx;
  };
  const importOn = async (ctx: Ctx, name: string, mzp: string, days: number): Promise<number> => {
    const made = makeKeyAndCert(root, dnFor(mzp), { ca, days });
    const cred = ctx.config.credentials.find((c) => c.name === name)!;
    const r = await importCertificate(ctx, cred, {
      certText: readFileSync(made.certPath, "utf8"),
      certFile: made.certPath,
      keyText: readFileSync(made.keyPath, "utf8"),
      keyFile: made.keyPath,
    });
    return r.version;
  };
  const onDisk = (ctx: Ctx, name: string) => liveVersion(credentialPaths(ctx.config.state_dir, name));

  test("a credential that cannot be followed is reported and skipped; the others follow; the store is never rolled back", async () => {
    const db = await freshDb("follow_partial");
    const a = await host(db, "a");
    const b = await host(db, "b");
    await importOn(a, "fleet-a", "MZP100001", 200);
    await importOn(a, "fleet-b", "MZP100002", 200);
    const first = await followStore(b);
    assert.deepEqual(first.failed, new Map());
    assert.deepEqual(first.switched.sort(), ["fleet-a v1", "fleet-b v1"]);

    // Host A installs version 2 of both; fleet-a's v2 private key is not in the store (a host that
    // made it before credd stored keys there): host B cannot follow fleet-a, and must not undo it.
    const va = await importOn(a, "fleet-a", "MZP100001", 300);
    const vb = await importOn(a, "fleet-b", "MZP100002", 300);
    assert.deepEqual([va, vb], [2, 2]);
    const inDb = await cluster.admin(db);
    await inDb.query("UPDATE archive SET key_envelope = NULL, kek_id = NULL WHERE credential = 'fleet-a' AND version = 2");
    await inDb.end();

    const second = await followStore(b);
    assert.deepEqual(second.switched, ["fleet-b v2"], "fleet-b follows although fleet-a (listed first) failed");
    assert.match(second.failed.get("fleet-a") ?? "", /version 2 has no key in archive\/ nor in the shared store/);
    assert.equal(onDisk(b, "fleet-a"), 1, "fleet-a stays on the version it has");

    const s = await checkAll(b);
    assert.deepEqual(
      s.failed.map((f) => f.name),
      ["fleet-a"],
    );
    assert.match(s.failed[0]!.error, /not in line with the shared store/);
    assert.equal((await b.store.liveCertificate("fleet-a"))?.version, 2, "the store still says version 2 for every host");
    assert.equal((await b.store.liveCertificate("fleet-b"))?.version, 2);
    assert.equal(await b.store.pendingRenewal("fleet-a"), undefined, "no renewal started from the old version");

    // Even a check without a follow first (a `credd check`-like caller): the disk does not win over the store.
    const c = await host(db, "c");
    const cDir = credentialPaths(c.config.state_dir, "fleet-a");
    await followStore(c); // fleet-b v2 only; fleet-a cannot follow
    assert.equal(liveVersion(cDir), undefined);
    await checkAll(c);
    assert.equal((await c.store.liveCertificate("fleet-a"))?.version, 2);
  });

  test("a renewal signed on one host is completed by the next leader: the certificate and chain follow too", async () => {
    const db = await freshDb("follow_signed");
    // Host A: an OAuth2 credential whose IDP is not there, so the signed renewal waits for registration.
    const a = await host(db, "a", [
      credentialYaml("fleet-a", "MZP100001", "oauth: { token_url: https://127.0.0.1:9/token, client_id: c, scope: openid }"),
    ]);
    await importOn(a, "fleet-a", "MZP100001", 20);
    const credA = a.config.credentials[0]!;
    const started = await startRenewal(a, credA, { kind: "renew", forced: true, reason: "test" });
    await a.store.markCsrSent(started.renewalId, a.clock.now().toISOString()); // as the outbox does once the email is out
    const signed = signCsr(ca, started.csrPath, join(root, "signed-2.pem"));
    const got = await ingestBatch(a, [{ name: "signed-2.pem", bytes: Buffer.from(signed) }], credA);
    assert.equal((await a.store.pendingRenewal("fleet-a"))?.state, "signed", `staged on A, waiting for the IDP: ${JSON.stringify(got)}`);

    // A is gone; B (here without oauth, so a signed renewal goes live at once) follows, then leads.
    const b = await host(db, "b");
    const followed = await followStore(b);
    assert.deepEqual(followed.failed, new Map());
    const arch = credentialPaths(b.config.state_dir, "fleet-a");
    for (const part of ["key", "csr", "cert", "chain"] as const)
      assert.ok(existsSync(arch[part](started.version)), `B has archive/${part}-${started.version}`);
    assert.equal(readFileSync(arch.cert(started.version), "utf8").trim(), signed.trim());
    const s = await checkAll(b, [b.config.credentials[0]!]);
    assert.deepEqual(s.failed, []);
    assert.equal((await b.store.liveCertificate("fleet-a"))?.version, started.version, "B finished the go-live");
    assert.equal(onDisk(b, "fleet-a"), started.version);
    assert.equal(await b.store.pendingRenewal("fleet-a"), undefined);
  });

  test("a go-live that dies after its switch, before its deploy hooks, runs them at the host's next follow tick, once", async () => {
    const db = await freshDb("follow_golive_hooks");
    const runs = join(root, "golive-hook-runs.txt");
    const hook = join(root, "golive-hook.sh");
    writeFileSync(hook, '#!/bin/sh\necho "$CREDD_VERSION" >> "$1"\n', { mode: 0o755 });
    const a = await host(db, "a", [credentialYaml("fleet-a", "MZP100001", `deploy_hooks: [["${hook}", "${runs}"]]`)]);
    const lines = (): string[] => (existsSync(runs) ? readFileSync(runs, "utf8").trim().split("\n") : []);
    await importOn(a, "fleet-a", "MZP100001", 200);
    await importOn(a, "fleet-a", "MZP100001", 300);
    assert.deepEqual(lines(), ["1", "2"]);
    // A rollback to version 1 whose process dies once live/ is switched and the store says so (the
    // crash points after-switch / after-db-live), before the hooks: beforeHooks throwing stands for the kill.
    const cred = a.config.credentials[0]!;
    await assert.rejects(
      goLive(a, cred, 1, "rollback", () => {
        throw new Error("killed here");
      }),
      /killed here/,
    );
    assert.equal(onDisk(a, "fleet-a"), 1);
    assert.equal((await a.store.liveCertificate("fleet-a"))?.version, 1);
    assert.deepEqual(lines(), ["1", "2"], "the hooks did not run before the kill");
    // The host comes back: its follow tick finds live/ on the store's version, with the hooks owed.
    await followStore(a);
    assert.deepEqual(lines(), ["1", "2", "1"], "the switch's hooks run once the host is back");
    await followStore(a);
    assert.deepEqual(lines(), ["1", "2", "1"], "and only once");
    assert.ok(!existsSync(join(credentialPaths(a.config.state_dir, "fleet-a").root, "hooks-pending")));
  });

  test("credd status reads without the key-encryption key", async () => {
    const db = await freshDb("follow_status");
    const a = await host(db, "a");
    await importOn(a, "fleet-a", "MZP100001", 200);
    // A reader (a member of credd's group) cannot read the KEK (0600, credd's user): here it is not there at all.
    const reader = (await host(db, "reader", undefined, false)).config.file;
    rmSync(join(root, `${db}-reader`, "store-kek"));
    const r = await runCredd(["--config", reader, "status", "--json", "fleet-a"]);
    assert.doesNotMatch(r.stderr, /store-kek|key_encryption_key_file/, r.stderr);
    assert.equal(JSON.parse(r.stdout).credentials[0].certificate.version, 1, r.stdout + r.stderr);
  });

  test("credd status on a database no credd run has migrated: says so and what to do", async () => {
    const empty = await freshDb("follow_unmigrated");
    const fresh = (await host(empty, "reader", undefined, false)).config.file;
    const u = await runCredd(["--config", fresh, "status"]);
    assert.notEqual(u.code, 0);
    assert.match(u.stderr, /no credd schema yet .*start `credd run` once/, u.stderr);
    assert.doesNotMatch(u.stderr, /check the server's log/);
  });

  test("the proxy of a host that has not followed yet fetches the store's live version at once", async () => {
    const db = await freshDb("follow_proxy");
    const creds = [credentialYaml("fleet-a", "MZP100001", "api: { base_url: https://api.example }", 'proxy: { listen: "127.0.0.1:8391" }')];
    const a = await host(db, "a", creds);
    const b = await host(db, "b", creds);
    await importOn(a, "fleet-a", "MZP100001", 200);
    await followStore(b);
    const live = proxyDeps(b, b.config.credentials[0]!).live;
    assert.equal((await live())?.version, 1);
    await importOn(a, "fleet-a", "MZP100001", 300); // version 2, before B's next follow tick
    const now = await live();
    assert.equal(now?.version, 2, "the proxy serves the store's live version");
    const paths = credentialPaths(b.config.state_dir, "fleet-a");
    assert.equal(readFileSync(paths.cert(2), "utf8"), readFileSync(credentialPaths(a.config.state_dir, "fleet-a").cert(2), "utf8"));
    assert.equal(onDisk(b, "fleet-a"), 1, "live/ is left to the follow tick (one writer of live/)");
  });

  test("the proxy sets aside a key this host made for the live version and never recorded", async () => {
    const db = await freshDb("follow_proxy_stale");
    const creds = [credentialYaml("fleet-a", "MZP100001", "api: { base_url: https://api.example }", 'proxy: { listen: "127.0.0.1:8392" }')];
    const a = await host(db, "a", creds);
    const b = await host(db, "b", creds);
    await importOn(a, "fleet-a", "MZP100001", 200);
    await followStore(b);
    const live = proxyDeps(b, b.config.credentials[0]!).live;
    assert.equal((await live())?.version, 1);
    // B made a key for version 2 and died before recording it; A then made version 2 with its own.
    const paths = credentialPaths(b.config.state_dir, "fleet-a");
    const stale = makeKeyAndCert(root, dnFor("MZP100001"), { ca, days: 30 });
    writeFileSync(paths.key(2), readFileSync(stale.keyPath), { mode: 0o600 });
    await importOn(a, "fleet-a", "MZP100001", 300);
    assert.equal((await live())?.version, 2);
    const aKey = readFileSync(credentialPaths(a.config.state_dir, "fleet-a").key(2), "utf8");
    assert.equal(readFileSync(paths.key(2), "utf8"), aKey, "the store's key for version 2, not the stale one");
    const aside = readdirSync(paths.archive).filter((f) => f.startsWith("key-2.pem.unused-"));
    assert.equal(aside.length, 1, `the stale key is kept aside: ${readdirSync(paths.archive).join(" ")}`);
  });
});
