// The token manager in-process with an injected clock against a real mTLS token endpoint on loopback.
import assert from "node:assert/strict";
import { readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ManualClock } from "../helpers/clock.js";
import { parseConfig } from "../../src/config/load.js";
import { sqliteCtx, type TestCtx } from "../helpers/ctx.js";
import { importCertificate } from "../../src/core/import.js";
import { createLogger } from "../../src/log.js";
import { makeMailerFactory } from "../../src/mail/factory.js";
import { TokenManager } from "../../src/core/tokens.js";
import { openDb } from "../../src/store/db.js";
import { liveCertificate } from "../../src/store/certificates.js";
import { getToken } from "../../src/store/tokens.js";
import { dnFor } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, type TestCa } from "../helpers/openssl.js";
import { startFakeStellantis, type FakeStellantis } from "../helpers/stellantis.js";

let ca: TestCa;
let fake: FakeStellantis;
const clock = new ManualClock(Date.now());
before(async () => {
  ca = makeCa(makeTempDir("credd-tok-ca-"));
  fake = await startFakeStellantis({ clientCaPem: ca.certPem, now: () => clock.now() });
});
after(async () => {
  await fake.close();
});

async function makeCtx(): Promise<{ ctx: TestCtx; fp: string; dir: string }> {
  const dir = makeTempDir("credd-tok-");
  const caFile = join(dir, "stellantis-ca.pem");
  writeFileSync(caFile, ca.certPem + fake.serverCaPem);
  const config = parseConfig(
    `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
smtp: { url: "smtp://127.0.0.1:1", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example] }
stellantis: { contact: c@stellantis.example, ca_file: ${caFile} }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    oauth: { token_url: "${fake.tokenUrl}", client_id: partner-client, scope: openid }
`,
    join(dir, "credd.yaml"),
  );
  const ctx: TestCtx = sqliteCtx({
    config,
    db: openDb(config.state_dir),
    clock,
    log: createLogger({ level: "silent" }),
    mailer: makeMailerFactory(config),
  });
  const hand = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, days: 365 });
  clock.set(Date.now() + 5_000); // after the certificate's notBefore (whole seconds)
  const { X509Certificate } = await import("node:crypto");
  const fp = new X509Certificate(readFileSync(hand.certPath)).fingerprint256;
  fake.register(fp);
  // The go-live of the imported certificate fetches the first token with it.
  await importCertificate(ctx, config.credentials[0]!, {
    certText: readFileSync(hand.certPath, "utf8"),
    certFile: hand.certPath,
    keyText: readFileSync(hand.keyPath, "utf8"),
    keyFile: hand.keyPath,
  });
  return { ctx, fp, dir };
}

test("token fetched with the live certificate, refreshed at 2/3 of its life, old one served while the IDP is down", async () => {
  fake.expiresIn = 300;
  const issued0 = fake.tokensIssued.length;
  const { ctx, fp } = await makeCtx();
  const cred = ctx.config.credentials[0]!;
  const m = new TokenManager(ctx, { random: () => 0.5, timeoutMs: 1000 });
  await m.tick();
  assert.equal(fake.tokensIssued.length, issued0 + 1, "one token, fetched when the certificate went live");
  assert.equal(fake.tokensIssued.at(-1)!.certSha256, fp, "fetched with the live certificate (mTLS)");
  const tokenFile = join(ctx.config.runtime_dir, "fleet-prod/token");
  const first = readFileSync(tokenFile, "utf8");
  assert.equal(first, fake.tokensIssued.at(-1)!.token);
  assert.equal(statSync(tokenFile).mode & 0o777, 0o640);
  const json = JSON.parse(readFileSync(join(ctx.config.runtime_dir, "fleet-prod/token.json"), "utf8"));
  assert.deepEqual(Object.keys(json).sort(), ["expires_at", "obtained_at", "scope", "token", "type"]);
  // Metadata in SQLite, never the token.
  const dump = JSON.stringify(ctx.db.prepare("SELECT * FROM tokens").all());
  assert.ok(!dump.includes(first));

  // The first token came from the go-live, with real jitter: 2/3 of 300 s is 200 s ± 15 s.
  clock.advance(184_000);
  await m.tick();
  assert.equal(fake.tokensIssued.length, issued0 + 1, "not before 2/3 of 300 s (less the jitter)");
  clock.advance(32_000);
  await m.tick();
  assert.equal(fake.tokensIssued.length, issued0 + 2, "refreshed by 216 s");
  const second = readFileSync(tokenFile, "utf8");
  assert.notEqual(second, first);

  await fake.down();
  clock.advance(206_000); // past this manager's refresh at exactly 200 s (jitter 0.5), before expiry
  await m.tick();
  const row = getToken(ctx.db, "fleet-prod")!;
  assert.equal(row.failures, 1);
  assert.equal(Date.parse(row.next_attempt_at!) - clock.now().getTime(), 1000, "retry after 1 s");
  assert.equal(readFileSync(tokenFile, "utf8"), second, "the still-valid old token is served");
  assert.equal((await m.current(cred))?.token, second);
  await m.tick();
  assert.equal(getToken(ctx.db, "fleet-prod")!.failures, 1, "no retry before the backoff ends");
  clock.advance(1000);
  await m.tick();
  assert.equal(getToken(ctx.db, "fleet-prod")!.failures, 2);
  assert.equal(Date.parse(getToken(ctx.db, "fleet-prod")!.next_attempt_at!) - clock.now().getTime(), 2000, "then 2 s");
  await fake.up();
  clock.advance(2000);
  await m.tick();
  assert.equal(getToken(ctx.db, "fleet-prod")!.failures, 0);
  assert.notEqual(readFileSync(tokenFile, "utf8"), second, "the new one came when it was back");
  ctx.db.close();
});

test("429 with Retry-After is honoured; concurrent callers cause one fetch", async () => {
  fake.expiresIn = 3600;
  const { ctx } = await makeCtx();
  const cred = ctx.config.credentials[0]!;
  const m = new TokenManager(ctx, { random: () => 0.5, timeoutMs: 1000 });
  fake.failNextTokens(1, "429");
  await assert.rejects(m.fetch(cred, "test"), /429/);
  assert.equal(Date.parse(getToken(ctx.db, "fleet-prod")!.next_attempt_at!) - clock.now().getTime(), 2000, "Retry-After: 2");
  const n = fake.tokensIssued.length;
  const all = await Promise.all([m.fetch(cred, "a"), m.fetch(cred, "b"), m.fetch(cred, "c"), m.fetch(cred, "d")]);
  assert.equal(fake.tokensIssued.length, n + 1, "one request for four callers");
  assert.equal(new Set(all.map((t) => t.token)).size, 1);
  ctx.db.close();
});

test("the tick fetches again when a token file is removed or emptied, and not otherwise", async () => {
  fake.expiresIn = 3600;
  const { ctx } = await makeCtx();
  const m = new TokenManager(ctx, { random: () => 0.5, timeoutMs: 1000 });
  const issued = fake.tokensIssued.length;
  for (let i = 0; i < 3; i++) await m.tick();
  assert.equal(fake.tokensIssued.length, issued, "a valid token and its files: nothing to do");
  const dir = join(ctx.config.runtime_dir, "fleet-prod");
  rmSync(join(dir, "token"));
  await m.tick();
  assert.equal(fake.tokensIssued.length, issued + 1, "token removed: fetched again");
  assert.equal(readFileSync(join(dir, "token"), "utf8"), fake.tokensIssued.at(-1)!.token);
  writeFileSync(join(dir, "token.json"), "");
  await m.tick();
  assert.equal(fake.tokensIssued.length, issued + 2, "token.json emptied: fetched again");
  await m.tick();
  assert.equal(fake.tokensIssued.length, issued + 2);
  // A token file that cannot even be looked at (a symlink loop: stat fails with ELOOP) is treated
  // as missing, and does not stop the tick.
  rmSync(join(dir, "token"));
  symlinkSync("token", join(dir, "token"));
  await m.tick();
  assert.equal(fake.tokensIssued.length, issued + 3, "unreadable token file: fetched again");
  assert.equal(readFileSync(join(dir, "token"), "utf8"), fake.tokensIssued.at(-1)!.token);
  ctx.db.close();
});

test("the token request is handed in: the manager asks its client with the live certificate and stores the answer", async () => {
  fake.expiresIn = 3600;
  const { ctx } = await makeCtx();
  const cred = ctx.config.credentials[0]!;
  const live = liveCertificate(ctx.db, cred.name)!;
  const asked: { config: unknown; cred: string; version: number; timeoutMs: number }[] = [];
  const m = new TokenManager(ctx, {
    random: () => 0.5,
    timeoutMs: 1234,
    client: async (config, c, version, opts) => {
      asked.push({ config, cred: c.name, version, timeoutMs: opts.timeoutMs });
      return { access_token: "from-the-injected-client", token_type: "Bearer", expires_in: 600 };
    },
  });
  const issued = fake.tokensIssued.length;
  const t = await m.fetch(cred, "test");
  assert.deepEqual(asked, [{ config: ctx.config, cred: cred.name, version: live.version, timeoutMs: 1234 }]);
  assert.equal(fake.tokensIssued.length, issued, "the default HTTPS client was not used");
  assert.equal(t.token, "from-the-injected-client");
  assert.equal(readFileSync(join(ctx.config.runtime_dir, "fleet-prod/token"), "utf8"), "from-the-injected-client");
  assert.equal(getToken(ctx.db, cred.name)!.cert_version, live.version);
  assert.equal((await m.current(cred))?.token, "from-the-injected-client");
  ctx.db.close();
});
