// src/test-switches.ts: which switches count as set, the tick knobs, and when `credd run` refuses.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CreddError } from "../../src/errors.js";
import { activeTestSwitches, daemonTicksFromEnv, refuseTestSwitchesUnderSystemd, testSwitchBanner, TEST_SWITCHES } from "../../src/test-switches.js";

const SYSTEMD = { INVOCATION_ID: "0123456789abcdef0123456789abcdef" };

test("every switch is found when set, an empty one is not, and other CREDD_ variables are not switches", () => {
  for (const name of Object.keys(TEST_SWITCHES)) {
    assert.deepEqual(activeTestSwitches({ [name]: "1" }), [{ name, value: "1" }], name);
    assert.deepEqual(activeTestSwitches({ [name]: "" }), [], `${name} empty`);
  }
  assert.deepEqual(activeTestSwitches({ CREDD_CONFIG: "/etc/credd/credd.yaml", CREDD_LOG_LEVEL: "debug", CREDD_ALLOW_TEST_SWITCHES: "1" }), []);
  assert.equal(testSwitchBanner([]), undefined);
  assert.equal(testSwitchBanner(["CREDD_CRASH_AT"]), "TEST SWITCHES: CREDD_CRASH_AT set (test aids, not for production: docs/operations.md)");
});

test("the tick knobs: only numbers are taken", () => {
  const cases: [NodeJS.ProcessEnv, ReturnType<typeof daemonTicksFromEnv>][] = [
    [{}, {}],
    [{ CREDD_OUTBOX_TICK_MS: "200" }, { outboxTickMs: 200 }],
    [
      { CREDD_INBOX_POLL_MS: "50", CREDD_INBOX_MIN_AGE_MS: "0", CREDD_TOKEN_TICK_MS: "300" },
      { inboxPollMs: 50, inboxMinAgeMs: 0, tokenTickMs: 300 },
    ],
    [{ CREDD_OUTBOX_TICK_MS: "fast", CREDD_TOKEN_TICK_MS: "" }, {}],
  ];
  for (const [env, want] of cases) assert.deepEqual(daemonTicksFromEnv(env), want, JSON.stringify(env));
});

test("run refuses a switch under systemd, unless CREDD_ALLOW_TEST_SWITCHES=1; outside systemd, never", () => {
  const refused = (env: NodeJS.ProcessEnv) => {
    try {
      refuseTestSwitchesUnderSystemd(env);
      return undefined;
    } catch (err) {
      assert.ok(err instanceof CreddError);
      assert.equal(err.code, "CONFIG", "exit 1, like any other reason run cannot start");
      return err.message;
    }
  };
  assert.match(
    refused({ ...SYSTEMD, CREDD_FAKE_NOW: "2030-01-01T00:00:00Z" }) ?? "",
    /test switches set: CREDD_FAKE_NOW \(fix: .*CREDD_ALLOW_TEST_SWITCHES=1/,
  );
  assert.equal(refused({ ...SYSTEMD, CREDD_FAKE_NOW: "2030-01-01T00:00:00Z", CREDD_ALLOW_TEST_SWITCHES: "1" }), undefined);
  assert.match(refused({ ...SYSTEMD, CREDD_CRASH_AT: "x", CREDD_ALLOW_TEST_SWITCHES: "yes" }) ?? "", /CREDD_CRASH_AT/, "only 1 allows");
  assert.equal(refused({ CREDD_CRASH_AT: "x" }), undefined, "not under systemd");
  assert.equal(refused({ ...SYSTEMD }), undefined, "under systemd with none");
});
