// check_schedule is judged by node-cron alone (src/config/cron.ts): its verdict and its message,
// placed in the config's own FILE:LINE: KEY: PROBLEM (fix: ...) message.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import cron from "node-cron";
import { cronProblem } from "../../src/config/cron.js";
import { loadConfig } from "../../src/config/load.js";
import { ConfigError } from "../../src/errors.js";

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "credd-cron-"));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

const config = (schedule: string) => `smtp:
  url: smtp://mail.partner.example
  from: credd@partner.example
alerts:
  to: ops@partner.example
check_schedule: ${JSON.stringify(schedule)}
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
`;

test("cronProblem: node-cron's verdict and message", () => {
  const valid = ["*/10 * * * *", "@daily", "0 0 * * MON", "*/30 * * * * *", "0 9,17 * * 1-5", "0 0 L * *", "0 0 * * 1#2"];
  for (const e of valid) assert.equal(cronProblem(e), undefined, e);
  const invalid = ["60 * * * *", "* * * *", "every 10 minutes", "0 25 * * *", "0 0 32 * *", "0 0 * 13 *", ""];
  for (const e of invalid) {
    const detailed = cron.validateDetailed(e);
    assert.equal(detailed.valid, false, `node-cron refuses ${JSON.stringify(e)}`);
    assert.equal(cronProblem(e), detailed.errors[0]?.message ?? "not a cron expression", e);
  }
  assert.match(cronProblem("60 * * * *") ?? "", /60 is a invalid expression for minute/);
});

test("a schedule node-cron refuses is a config error: file, line, key, node-cron's problem, the fix", () => {
  const cases: [string, RegExp][] = [
    ["61 * * * *", /61 is a invalid expression for minute/],
    ["0 25 * * *", /hour/],
    ["every 10 minutes", /./],
  ];
  for (const [i, [schedule, problem]] of cases.entries()) {
    const dir = path.join(tmpRoot, `c${i}`);
    fs.mkdirSync(dir);
    const file = path.join(dir, "credd.yaml");
    fs.writeFileSync(file, config(schedule));
    let err: unknown;
    try {
      loadConfig(file, {});
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError, `${schedule}: a ConfigError, got ${String(err)}`);
    const msg = err.message;
    assert.ok(msg.startsWith(`${file}:6: check_schedule: is not a valid cron expression (`), `${schedule}: ${msg}`);
    assert.match(msg, problem);
    assert.ok(msg.includes(`got "${schedule}"`), msg);
    assert.match(msg, /\(fix: a cron expression \(minute hour day month weekday\), quoted: check_schedule: "\*\/10 \* \* \* \*"\)/);
  }
});

test("a schedule node-cron takes is kept as written", () => {
  const dir = path.join(tmpRoot, "ok");
  fs.mkdirSync(dir);
  const file = path.join(dir, "credd.yaml");
  fs.writeFileSync(file, config("0 9 * * MON-FRI"));
  assert.equal(loadConfig(file, {}).check_schedule, "0 9 * * MON-FRI");
});
