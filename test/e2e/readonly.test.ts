// Reading never writes, with the real binary: status, token (while its token is valid), doctor and
// alerts create no folder and no database; status with no database is UNKNOWN (exit 3) naming the path.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { dnFor, runCredd, writeConfig } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, type TestCa } from "../helpers/openssl.js";
import { startFakeStellantis, type FakeStellantis } from "../helpers/stellantis.js";

let ca: TestCa;
let fake: FakeStellantis;
before(async () => {
  ca = makeCa(makeTempDir("credd-ro-ca-"));
  fake = await startFakeStellantis({ clientCaPem: ca.certPem });
});
after(async () => {
  await fake.close();
});

/** Every path under `root` with its kind and, for files, its size: what "nothing created or changed" compares. */
function tree(root: string, skip: (name: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      if (skip(name)) continue;
      const p = join(dir, name);
      const st = lstatSync(p);
      out.push(`${rel}${name}${st.isDirectory() ? "/" : ` ${st.size}`}`);
      if (st.isDirectory()) walk(p, `${rel}${name}/`);
    }
  };
  walk(root, "");
  return out;
}

/** A config with one OAuth2 credential against the loopback IDP; state_dir as given (it may not exist). */
function setup(stateDir?: string) {
  const dir = makeTempDir("credd-ro-");
  const caFile = join(dir, "stellantis-ca.pem");
  writeFileSync(caFile, ca.certPem + fake.serverCaPem);
  const state = stateDir ?? join(dir, "state");
  const config = writeConfig(
    dir,
    `state_dir: ${state}
runtime_dir: ${join(dir, "run")}
smtp: { url: "smtp://127.0.0.1:9", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example] }
stellantis: { contact: connectedcar@stellantis.example, ca_file: ${caFile} }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    client_id: app-1a2b3c
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    oauth: { token_url: "${fake.tokenUrl}", client_id: partner-client, scope: openid }
    api: { base_url: "${fake.apiBaseUrl}", probe_path: /fleets }
`,
  );
  return { dir, config, state };
}

describe("no database yet", () => {
  test("an empty state_dir: status exits 3 naming the database and what to do; status, token, doctor and alerts create nothing", async () => {
    const s = setup();
    mkdirSync(s.state);
    const before = tree(s.dir);

    const text = await runCredd(["--config", s.config, "status"]);
    assert.equal(text.code, 3, text.stdout + text.stderr);
    assert.match(text.stderr, /^credd status: UNKNOWN: no credd database at \S+\/state\/credd\.db: \S+\/state exists but holds no database yet/);
    assert.match(text.stderr, /credd has not run with this state_dir yet \(start `credd run`/);
    assert.match(text.stderr, new RegExp(`state_dir in ${s.config.replace(/[.]/g, "\\.")} names the wrong folder`));
    assert.equal(text.stdout, "");

    const json = await runCredd(["--config", s.config, "status", "--json"]);
    assert.equal(json.code, 3);
    const j = JSON.parse(json.stdout);
    assert.equal(j.status, "unknown");
    assert.equal(j.exit_code, 3);
    assert.ok(j.error.includes(join(s.state, "credd.db")), j.error);

    const one = await runCredd(["--config", s.config, "status", "fleet-prod"]);
    assert.equal(one.code, 3);

    const token = await runCredd(["--config", s.config, "token", "fleet-prod"]);
    assert.equal(token.code, 1, token.stderr);
    assert.match(token.stderr, /no valid token for fleet-prod: no credd database at \S+credd\.db/);

    const doctor = await runCredd(["--config", s.config, "doctor", "fleet-prod"]);
    assert.equal(doctor.code, 1, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /FAIL {2}key matches the live certificate/);

    const alerts = await runCredd(["--config", s.config, "alerts"]);
    assert.equal(alerts.code, 1);
    assert.match(alerts.stderr, /no credd database at/);

    assert.deepEqual(tree(s.dir), before, "no folder, no database, no file was created");
  });

  test("a state_dir that does not exist (a typo) is not created: status says so, exit 3", async () => {
    const root = makeTempDir("credd-ro-typo-");
    const s = setup(join(root, "var/lib/credd-typo"));
    const beforeRoot = tree(root);
    const beforeDir = tree(s.dir);
    const r = await runCredd(["--config", s.config, "status"]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /the folder \S+\/var\/lib\/credd-typo does not exist/);
    for (const cmd of [["token", "fleet-prod"], ["doctor", "fleet-prod"], ["alerts"]]) await runCredd(["--config", s.config, ...cmd]);
    assert.ok(!existsSync(join(root, "var")), "state_dir was not created");
    assert.deepEqual(tree(root), beforeRoot);
    assert.deepEqual(tree(s.dir), beforeDir);
  });
});

describe("with a live certificate", () => {
  test("token while its token is valid and doctor: nothing asked of the IDP by token, nothing written by either", async () => {
    const s = setup();
    const hand = makeKeyAndCert(s.dir, dnFor("MZP128745"), { ca, days: 365 });
    fake.register(new X509Certificate(readFileSync(hand.certPath)).fingerprint256);
    assert.equal((await runCredd(["--config", s.config, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath])).code, 0);
    const first = await runCredd(["--config", s.config, "token", "fleet-prod"]);
    assert.equal(first.code, 0, first.stderr);

    // SQLite itself adds -wal and -shm beside an existing database for any reader; the database stays as it was.
    const sqliteOwn = (n: string) => n.endsWith("-wal") || n.endsWith("-shm");
    const before = tree(s.dir, sqliteOwn);
    const db = readFileSync(join(s.state, "credd.db"));
    const asked = fake.tokenRequests.length;

    const again = await runCredd(["--config", s.config, "token", "fleet-prod"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.trim(), first.stdout.trim(), "the same valid token");
    assert.equal(fake.tokenRequests.length, asked, "no request to the token endpoint");

    const doctor = await runCredd(["--config", s.config, "doctor", "fleet-prod"]);
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    // Text output writes times one way: no ISO 8601 in it.
    assert.match(doctor.stdout, /until \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    assert.doesNotMatch(doctor.stdout, /\d{4}-\d\d-\d\dT\d\d:\d\d/);

    const status = await runCredd(["--config", s.config, "status"]);
    assert.equal(status.code, 1, "never checked by the daemon: warning");

    assert.deepEqual(tree(s.dir, sqliteOwn), before, "no file or folder created or resized");
    assert.deepEqual(readFileSync(join(s.state, "credd.db")), db, "the database is unchanged");
  });
});
