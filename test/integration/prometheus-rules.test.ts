// contrib/prometheus/credd.rules.yml: promtool accepts it and its unit tests pass; the unit tests
// catch a wrong threshold; every metric and label it uses is one a real run of credd writes; the
// expiry thresholds are credd's own.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { parse } from "yaml";
import { parseConfig } from "../../src/config/load.js";
import { makeTempDir } from "../helpers/openssl.js";
import { labelsOfEveryFamily, promqlMetricNames, promqlSelectorLabels, realMetricsRun } from "../helpers/metrics-run.js";

const DIR = fileURLToPath(new URL("../../contrib/prometheus/", import.meta.url));
const RULES = join(DIR, "credd.rules.yml");
const TESTS = join(DIR, "credd.rules.test.yml");
const NO_PROMTOOL = "promtool not installed (Debian package prometheus): the rules were not checked by it";

/** `promtool ARGS` in `cwd`; undefined when promtool is not installed. */
function promtool(args: string[], cwd: string): { status: number | null; out: string } | undefined {
  const r = spawnSync("sh", ["-c", 'command -v promtool >/dev/null || exit 127; exec promtool "$@"', "sh", ...args], { cwd, encoding: "utf8" });
  if (r.status === 127) return undefined;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

interface Rule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
}
const rules = (): Rule[] => (parse(readFileSync(RULES, "utf8")) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

test("promtool check rules and promtool test rules pass", (t) => {
  const check = promtool(["check", "rules", RULES], DIR);
  if (!check) return t.skip(NO_PROMTOOL);
  assert.equal(check.status, 0, check.out);
  assert.match(check.out, new RegExp(`SUCCESS: ${rules().length} rules found`));
  const unit = promtool(["test", "rules", TESTS], DIR);
  assert.equal(unit!.status, 0, unit!.out);
});

test("the unit tests fail when a rule is wrong: a changed threshold, a dropped condition", (t) => {
  const text = readFileSync(RULES, "utf8");
  const mutants: [string, string, string][] = [
    ["warning from 14 days instead of 30", "< 30 * 86400", "< 14 * 86400"],
    ["critical from 3 days instead of 7", ") < 7 * 86400", ") < 3 * 86400"],
    ["stale after 2 hours", "> 30 * 60", "> 120 * 60"],
    ["lapsing without the failure condition", "credd_token_refresh_failures > 0\n          and", "credd_token_refresh_failures >= 0\n          and"],
    ["hook rule on another kind", 'kind="hook-failed"', 'kind="hook-failing"'],
  ];
  for (const [what, from, to] of mutants) {
    assert.ok(text.includes(from), `${what}: "${from}" is no longer in the rules; update this test`);
    const dir = makeTempDir("credd-rules-mutant-");
    writeFileSync(join(dir, "credd.rules.yml"), text.replace(from, to));
    copyFileSync(TESTS, join(dir, "credd.rules.test.yml"));
    const r = promtool(["test", "rules", "credd.rules.test.yml"], dir);
    if (!r) return t.skip(NO_PROMTOOL);
    assert.notEqual(r.status, 0, `${what}: the unit tests still pass`);
  }
});

test("every metric and label the rules use is one a real run of credd writes", async () => {
  const run = await realMetricsRun();
  const everyFamily = labelsOfEveryFamily();
  for (const rule of rules()) {
    const names = promqlMetricNames(rule.expr);
    assert.ok(names.length > 0, `${rule.alert}: no metric found in ${rule.expr}`);
    for (const name of names) assert.ok(run.families.has(name), `${rule.alert} uses ${name}, which credd does not write:\n${run.text}`);
    for (const { metric, labels } of promqlSelectorLabels(rule.expr)) {
      // A family with no sample in the run (no OAuth2 credential): the labels renderMetrics gives it.
      const seen = run.families.get(metric)?.size ? run.families.get(metric) : everyFamily.get(metric);
      if (!seen) continue; // not a metric credd writes: reported above
      for (const l of labels) assert.ok(seen.has(l), `${rule.alert}: ${metric} has no label ${l} (it has ${[...seen].join(", ")})`);
    }
  }
});

test("the expiry thresholds are credd's: the first default expiry_days alert (warning) and 7 days (critical)", () => {
  const config = parseConfig(
    `smtp: { url: "smtp://127.0.0.1:25", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example] }
credentials: [{ name: a, mzp: MZP128745, subject: { C: FR, ST: X, L: Y, O: Z, emailAddress: it@partner.example } }]
`,
    "/etc/credd/credd.yaml",
    {},
  );
  const first = Math.max(...config.alerts.expiry_days);
  const byName = new Map(rules().map((r) => [r.alert, r]));
  const warning = byName.get("CreddCertificateExpiringSoon")!;
  const critical = byName.get("CreddCertificateExpiryCritical")!;
  assert.match(warning.expr, new RegExp(`< ${first} \\* 86400`));
  assert.match(warning.expr, />= 7 \* 86400/);
  assert.match(critical.expr, /< 7 \* 86400/);
  assert.equal(warning.labels?.severity, "warning");
  assert.equal(critical.labels?.severity, "critical");
  // Stale after two check_schedule periods, as `credd status` says (default: every 10 minutes).
  assert.equal(config.check_schedule, "*/10 * * * *");
  assert.match(byName.get("CreddCheckStale")!.expr, /> 30 \* 60/);
});
