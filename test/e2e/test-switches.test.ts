// The test switches (src/test-switches.ts) as the real binary shows them: a banner on the first
// line of `credd status` and `test_switches` in --json, a warning when `credd run` starts, and a
// refusal to start under systemd (INVOCATION_ID) unless CREDD_ALLOW_TEST_SWITCHES=1.
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { configFor, dnFor, runCredd, startCreddDaemon } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, type TestCa } from "../helpers/openssl.js";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp.js";

let smtp: TestSmtpServer;
let ca: TestCa;
before(async () => {
  smtp = await startSmtpServer();
  ca = makeCa(makeTempDir("credd-e2e-switches-ca-"));
});
after(async () => {
  await smtp.stop();
});

const isCheckDone = (l: Record<string, unknown>) => l.msg === "check done";
const BANNER = /^TEST SWITCHES: (.+) set \(test aids, not for production: docs\/operations\.md\)$/;

test("status: a TEST SWITCHES banner on the first line and test_switches in --json, only when one is set", async () => {
  const dir = makeTempDir("credd-e2e-switches-status-");
  const config = configFor(dir, smtp.port, smtp.caPath);
  const c = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, days: 365 });
  assert.equal((await runCredd(["--config", config, "import", "fleet-prod", "--cert", c.certPath, "--key", c.keyPath])).code, 0);
  const clockFile = join(dir, "clock");
  writeFileSync(clockFile, "0");
  const switches = { CREDD_FAKE_NOW: new Date(Date.now() + 86_400_000).toISOString(), CREDD_CLOCK_FILE: clockFile };

  const text = await runCredd(["--config", config, "status"], switches);
  const first = text.stdout.split("\n")[0]!;
  assert.match(first, BANNER, text.stdout);
  assert.equal(BANNER.exec(first)![1], "CREDD_FAKE_NOW, CREDD_CLOCK_FILE");
  assert.match(text.stdout.split("\n")[1]!, /^credd status /);

  const json = JSON.parse((await runCredd(["--config", config, "status", "--json"], switches)).stdout);
  assert.deepEqual(json.test_switches, ["CREDD_FAKE_NOW", "CREDD_CLOCK_FILE"]);
  assert.equal(json.version, 1, "a field added, nothing renamed");

  // An unreadable config: still UNKNOWN, still flagged.
  const unknown = JSON.parse((await runCredd(["--config", join(dir, "missing.yaml"), "status", "--json"], { CREDD_CRASH_AT: "never" })).stdout);
  assert.equal(unknown.status, "unknown");
  assert.deepEqual(unknown.test_switches, ["CREDD_CRASH_AT"]);

  // None set (an empty value is none): no banner, an empty list.
  const plain = await runCredd(["--config", config, "status"], { CREDD_FAKE_NOW: "" });
  assert.match(plain.stdout.split("\n")[0]!, /^credd status /);
  assert.deepEqual(JSON.parse((await runCredd(["--config", config, "status", "--json"])).stdout).test_switches, []);
});

test("run under systemd (INVOCATION_ID) with a test switch: refused, exit 1, nothing created", async () => {
  const dir = makeTempDir("credd-e2e-switches-refused-");
  const config = configFor(dir, smtp.port, smtp.caPath);
  const r = await runCredd(["--config", config, "run"], {
    INVOCATION_ID: "0123456789abcdef0123456789abcdef",
    CREDD_OUTBOX_TICK_MS: "200",
    CREDD_CRASH_AT: "golive-before-rename",
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /^credd: refusing to start under systemd \(INVOCATION_ID is set\) with test switches set: CREDD_CRASH_AT, CREDD_OUTBOX_TICK_MS \(fix: .*CREDD_ALLOW_TEST_SWITCHES=1.*\)\n$/,
  );
  assert.equal(r.stdout, "");
  assert.equal(existsSync(join(dir, "state")), false, "no state folder or database was created");
});

test("run under systemd with CREDD_ALLOW_TEST_SWITCHES=1 starts, and says at warning level which switches are on", async () => {
  const dir = makeTempDir("credd-e2e-switches-allowed-");
  const config = configFor(dir, smtp.port, smtp.caPath);
  const d = startCreddDaemon(["--config", config, "run"], {
    INVOCATION_ID: "0123456789abcdef0123456789abcdef",
    CREDD_ALLOW_TEST_SWITCHES: "1",
    CREDD_TOKEN_TICK_MS: "500",
  });
  await d.waitForLog(isCheckDone);
  assert.equal(await d.stop(), 0);
  const warn = d.lines.find((l) => typeof l.msg === "string" && l.msg.startsWith("test switches set"));
  assert.ok(warn, d.lines.map((l) => JSON.stringify(l)).join("\n"));
  assert.equal(warn.level, 40, "warning level");
  assert.deepEqual(warn.test_switches, { CREDD_TOKEN_TICK_MS: "500" });
  assert.ok(d.lines.indexOf(warn) < d.lines.findIndex((l) => l.msg === "credd started"), "logged before the daemon starts");
});

test("run under systemd with no test switch starts as usual, without the warning", async () => {
  const dir = makeTempDir("credd-e2e-switches-none-");
  const config = configFor(dir, smtp.port, smtp.caPath);
  const d = startCreddDaemon(["--config", config, "run"], { INVOCATION_ID: "0123456789abcdef0123456789abcdef" });
  await d.waitForLog(isCheckDone);
  assert.equal(await d.stop(), 0);
  assert.ok(!d.lines.some((l) => typeof l.msg === "string" && l.msg.startsWith("test switches set")));
});
