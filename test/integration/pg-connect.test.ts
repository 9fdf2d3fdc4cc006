// The shared store's connection (src/store/pg/connect.ts) against a real PostgreSQL: the url file
// read and checked, the password never in a message, TLS verified against the CA file whenever the
// server is not on this host (and on request on loopback).
import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CreddError } from "../../src/errors.js";
import { connectClient, isLocalHost, pgTarget } from "../../src/store/pg/connect.js";
import { type PgCluster, postgresMissing, startPostgres } from "../helpers/postgres.js";
import { makeCert, makeTestCa, removeTestPki, type TestCa } from "../helpers/tls.js";

const skip = postgresMissing();
const work = mkdtempSync(join(tmpdir(), "credd-pgc-"));
after(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
function urlFile(content: string, mode = 0o600): string {
  const f = join(work, `url-${++n}`);
  writeFileSync(f, content, { mode });
  chmodSync(f, mode);
  return f;
}

/** The message of what `fn` throws, checked to name `file` and to hold none of `secrets`. */
function refusal(fn: () => unknown, file: string, secrets: string[]): string {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof CreddError, `expected a CreddError, got ${String(caught)}`);
  assert.ok(caught.message.includes(file), `names the file: ${caught.message}`);
  assert.match(caught.message, /fix: /);
  for (const s of secrets) assert.ok(!caught.message.includes(s), `leaks ${s}: ${caught.message}`);
  return caught.message;
}

describe("the url file, read and checked (no server)", () => {
  test("a password with URL-special characters is decoded; user, host, port, database are taken", () => {
    const t = pgTarget({ urlFile: urlFile("postgres://credd:p%40ss%2Fw%3Ard%25@db.partner.example:6543/credd\n") });
    assert.equal(t.config.password, "p@ss/w:rd%");
    assert.equal(t.config.user, "credd");
    assert.equal(t.config.host, "db.partner.example");
    assert.equal(t.config.port, 6543);
    assert.equal(t.config.database, "credd");
    assert.equal(t.where, "credd@db.partner.example:6543/credd");
    assert.equal(t.local, false);
    assert.equal(t.tls, true, "TLS for a server on another host, without asking");
    assert.deepEqual(t.config.ssl, { rejectUnauthorized: true });
  });

  test("loopback and unix sockets are local: no TLS unless sslmode=verify-full", () => {
    for (const h of ["localhost", "127.0.0.1", "127.8.9.1", "::1", "/run/postgresql"]) assert.ok(isLocalHost(h), h);
    for (const h of ["192.0.2.2", "db.example", "10.0.0.1", "::2", "localhost.example.com"]) assert.ok(!isLocalHost(h), h);
    assert.equal(pgTarget({ urlFile: urlFile("postgres://u:pw@127.0.0.1/db") }).tls, false);
    const sock = pgTarget({ urlFile: urlFile("postgres://u:pw@%2Frun%2Fpostgresql/db") });
    assert.equal(sock.config.host, "/run/postgresql");
    assert.equal(sock.tls, false);
    const param = pgTarget({ urlFile: urlFile("postgres://u@/db?host=/run/postgresql") });
    assert.equal(param.config.host, "/run/postgresql");
    assert.equal(param.config.password, undefined);
    assert.equal(pgTarget({ urlFile: urlFile("postgres://u:pw@localhost/db?sslmode=verify-full") }).tls, true);
  });

  test("refusals name the file and the fix, never the URL or the password", () => {
    const secret = "S3cr3t-Pa55";
    const secrets = [secret, `u:${secret}`];
    const missing = join(work, "no-such-file");
    assert.match(
      refusal(() => pgTarget({ urlFile: missing }), missing, secrets),
      /does not exist/,
    );
    const open = urlFile(`postgres://u:${secret}@db.example/db`, 0o644);
    assert.match(
      refusal(() => pgTarget({ urlFile: open }), open, secrets),
      /every user may read it \(mode 0644\).*chmod 0640/,
    );
    const writable = urlFile(`postgres://u:${secret}@db.example/db`, 0o622);
    assert.match(
      refusal(() => pgTarget({ urlFile: writable }), writable, secrets),
      /every user may write the url file.*another server/,
    );
    for (const mode of [0o660, 0o620]) {
      const groupWritable = urlFile(`postgres://u:${secret}@db.example/db`, mode);
      assert.match(
        refusal(() => pgTarget({ urlFile: groupWritable }), groupWritable, secrets),
        new RegExp(`group may write the url file \\(mode 0${mode.toString(8)}\\).*chmod 0640`),
      );
    }
    if (process.getuid?.() === 0) {
      // Only root can give a file away; another user's file may be rewritten by that user.
      const foreign = urlFile(`postgres://u:${secret}@db.example/db`, 0o640);
      chownSync(foreign, 4242, 0);
      assert.match(
        refusal(() => pgTarget({ urlFile: foreign }), foreign, secrets),
        /belongs to user id 4242, neither root nor credd's user.*chown root/,
      );
    }
    assert.equal(pgTarget({ urlFile: urlFile(`postgres://u:${secret}@db.example/db`, 0o640) }).config.password, secret, "0640 is fine");
    const garbage = urlFile(`postgres://u:${secret}@[db.example/db`);
    assert.match(
      refusal(() => pgTarget({ urlFile: garbage }), garbage, secrets),
      /not hold a valid URL/,
    );
    for (const text of [`mysql://u:${secret}@db.example/db`, `u:${secret}@db.example`]) {
      const scheme = urlFile(text);
      assert.match(
        refusal(() => pgTarget({ urlFile: scheme }), scheme, secrets),
        /does not start with postgres:\/\//,
      );
    }
    const param = urlFile(`postgres://u:${secret}@db.example/db?sslpassword=${secret}`);
    assert.match(
      refusal(() => pgTarget({ urlFile: param }), param, secrets),
      /parameter sslpassword/,
    );
    const clear = urlFile(`postgres://u:${secret}@db.example/db?sslmode=disable`);
    assert.match(
      refusal(() => pgTarget({ urlFile: clear }), clear, secrets),
      /sslmode=disable.*not on this host/,
    );
    const weak = urlFile(`postgres://u:${secret}@db.example/db?sslmode=require`);
    assert.match(
      refusal(() => pgTarget({ urlFile: weak }), weak, secrets),
      /sslmode=require is not used/,
    );
    const nodb = urlFile(`postgres://u:${secret}@db.example`);
    assert.match(
      refusal(() => pgTarget({ urlFile: nodb }), nodb, secrets),
      /names no database/,
    );
    const twoLines = urlFile(`postgres://u:${secret}@db.example/db\npostgres://other\n`);
    assert.match(
      refusal(() => pgTarget({ urlFile: twoLines }), twoLines, secrets),
      /more than one line/,
    );
    const keyInCa = join(work, "ca-with-key.pem");
    writeFileSync(
      keyInCa,
      "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
    );
    assert.match(
      refusal(() => pgTarget({ urlFile: urlFile(`postgres://u:${secret}@db.example/db`), caFile: keyInCa }), keyInCa, secrets),
      /holds a private key/,
    );
  });
});

describe("on a real server (loopback, password authentication)", { skip }, () => {
  let pg: PgCluster;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => await pg?.destroy());

  test("connects with the URL's password (URL-encoded special characters)", async () => {
    assert.match(pg.password, /[:/@%]/, "the helper's password exercises the decoding");
    const c = await connectClient(pgTarget({ urlFile: urlFile(`${pg.url}\n`) }));
    try {
      const r = await c.query(
        "SELECT current_user AS u, current_database() AS d, application_name AS a FROM pg_stat_activity WHERE pid = pg_backend_pid()",
      );
      assert.deepEqual(r.rows[0], { u: pg.user, d: pg.database, a: "credd" });
    } finally {
      await c.end();
    }
  });

  test("through the unix socket too (?host=FOLDER)", async () => {
    const c = await connectClient(
      pgTarget({ urlFile: urlFile(`postgres://${pg.user}:${encodeURIComponent(pg.password)}@/${pg.database}?host=${pg.socketDir}&port=${pg.port}`) }),
    );
    try {
      const r = await c.query("SELECT client_addr FROM pg_stat_activity WHERE pid = pg_backend_pid()");
      assert.equal(r.rows[0].client_addr, null, "a socket connection has no client address");
    } finally {
      await c.end();
    }
  });

  test("a wrong password: the error names the file, the server and the fix, not the password", async () => {
    const wrong = "Wr0ng-But-Secret";
    const f = urlFile(`postgres://${pg.user}:${wrong}@127.0.0.1:${pg.port}/${pg.database}`);
    const err = await connectClient(pgTarget({ urlFile: f })).then(
      () => assert.fail("connected with a wrong password"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CreddError);
    assert.equal(err.code, "CONFIG");
    assert.ok(err.message.includes(f), err.message);
    assert.ok(err.message.includes(`${pg.user}@127.0.0.1:${pg.port}/${pg.database}`), err.message);
    assert.match(err.message, /password authentication failed.*28P01.*fix: check the user and password/);
    assert.ok(!err.message.includes(wrong) && !err.message.includes(pg.password), err.message);
  });

  test("nothing listening: a NETWORK error saying what to check", async () => {
    const f = urlFile(`postgres://u:pw@127.0.0.1:1/db?connect_timeout=5`);
    const err = await connectClient(pgTarget({ urlFile: f })).then(
      () => assert.fail("connected to port 1"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CreddError);
    assert.equal(err.code, "NETWORK");
    assert.match(err.message, /ECONNREFUSED.*fix: check that PostgreSQL runs/);
  });
});

/** An address of this machine that is not loopback, or undefined. */
function outsideAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return undefined;
}

describe("TLS (server certificate from a test CA)", { skip }, () => {
  let pg: PgCluster;
  let ca: TestCa;
  let otherCa: TestCa;
  const outside = outsideAddress();
  before(async () => {
    ca = makeTestCa({ cn: "credd test PostgreSQL CA" });
    otherCa = makeTestCa({ cn: "some other CA" });
    const server = makeCert(ca, {
      subject: "/CN=localhost",
      san: ["DNS:localhost", "IP:127.0.0.1", ...(outside ? [`IP:${outside}`] : [])],
      usage: "server",
    });
    // The outside address accepts TLS only, as a server reached over a network should.
    pg = await startPostgres({
      tls: server,
      alsoListen: outside ? [outside] : [],
      hba: outside ? [`hostnossl all all ${outside}/32 reject`] : [],
    });
  });
  after(async () => {
    await pg?.destroy();
    if (ca) removeTestPki(ca.dir);
    if (otherCa) removeTestPki(otherCa.dir);
  });

  const sslOf = async (f: string, caFile?: string) => {
    const c = await connectClient(pgTarget({ urlFile: f, ...(caFile ? { caFile } : {}) }));
    try {
      return (await c.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows[0].ssl as boolean;
    } finally {
      await c.end();
    }
  };
  const auth = () => `${pg.user}:${encodeURIComponent(pg.password)}`;

  test("loopback: plain by default, verified TLS with sslmode=verify-full", async () => {
    assert.equal(await sslOf(urlFile(pg.url)), false);
    assert.equal(await sslOf(urlFile(`${pg.url}?sslmode=verify-full`), ca.caPath), true);
    assert.equal(await sslOf(urlFile(`postgres://${auth()}@localhost:${pg.port}/${pg.database}?sslmode=verify-full`), ca.caPath), true);
  });

  test("another host: TLS without asking, verified against the CA file", async (t) => {
    if (!outside) return t.skip("this machine has no non-loopback IPv4 address to reach the server by");
    const f = urlFile(`postgres://${auth()}@${outside}:${pg.port}/${pg.database}`);
    assert.equal(await sslOf(f, ca.caPath), true);

    for (const [caFile, why] of [
      [undefined, /name the CA that signed the server's certificate in store\.postgres\.ca_file/],
      [otherCa.caPath, /check that .* holds the CA that signed the server's certificate/],
    ] as const) {
      const err = await sslOf(f, caFile).then(
        () => assert.fail(`connected with ${caFile ?? "the system roots"}`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CreddError);
      assert.equal(err.code, "NETWORK");
      assert.match(err.message, /TLS verified/);
      assert.match(err.message, why);
      assert.ok(!err.message.includes(pg.password), err.message);
    }
  });
});
