// contrib/grafana/credd.json: every query (panels and template variables) names only metrics and
// labels that a real run of credd writes, and the dashboard holds the panels issue 18 asks for.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { labelsOfEveryFamily, promqlMetricNames, promqlSelectorLabels, realMetricsRun } from "../helpers/metrics-run.js";

const FILE = new URL("../../contrib/grafana/credd.json", import.meta.url);
/** Labels Prometheus adds when it scrapes node_exporter: in no metrics file. */
const SCRAPE_LABELS = new Set(["instance", "job"]);

interface Target {
  expr: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query: string };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

const dashboard = (): Dashboard => JSON.parse(readFileSync(FILE, "utf8")) as Dashboard;
const allPanels = (d: Dashboard): Panel[] => d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);

/** Every PromQL the dashboard runs, with where it is: panel targets, and `label_values(EXPR, LABEL)` variables. */
function queries(d: Dashboard): { where: string; expr: string; label?: string }[] {
  const out: { where: string; expr: string; label?: string }[] = [];
  for (const p of allPanels(d)) for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}"`, expr: t.expr });
  for (const v of d.templating.list) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : v.query!.query;
    const m = /^label_values\((.+),\s*([a-zA-Z_]\w*)\)$/.exec(q.trim());
    assert.ok(m, `variable ${v.name}: only label_values(METRIC, LABEL) queries are expected, got ${q}`);
    out.push({ where: `variable $${v.name}`, expr: m[1]!, label: m[2]! });
  }
  return out;
}

test("every metric and label in the dashboard's queries is one a real run of credd writes", async () => {
  const run = await realMetricsRun();
  const everyFamily = labelsOfEveryFamily();
  const d = dashboard();
  const qs = queries(d);
  assert.ok(qs.length >= 10, `only ${qs.length} queries found`);
  const used = new Set<string>();
  for (const q of qs) {
    const names = promqlMetricNames(q.expr);
    assert.ok(names.length > 0, `${q.where}: no metric in ${q.expr}`);
    for (const name of names) {
      assert.ok(run.families.has(name), `${q.where} uses ${name}, which credd does not write:\n${run.text}`);
      used.add(name);
    }
    const selected = promqlSelectorLabels(q.expr).map((s) => ({ ...s, labels: [...s.labels, ...(q.label ? [q.label] : [])] }));
    for (const { metric, labels } of selected) {
      // A family with no sample in the run (no OAuth2 credential): the labels renderMetrics gives it.
      const seen = run.families.get(metric)?.size ? run.families.get(metric) : everyFamily.get(metric);
      if (!seen) continue; // not a metric credd writes: reported above
      for (const l of labels)
        if (!SCRAPE_LABELS.has(l)) assert.ok(seen.has(l), `${q.where}: ${metric} has no label ${l} (it has ${[...seen].join(", ")})`);
    }
  }
  // Every family credd writes has a place on the board.
  for (const name of run.families.keys()) assert.ok(used.has(name), `the dashboard shows nothing of ${name}`);
});

test("the extraction sees through functions, matchers, groupings and variables", () => {
  assert.deepEqual(promqlMetricNames('sum by (severity) (credd_alerts_open{instance=~"$instance"})'), ["credd_alerts_open"]);
  assert.deepEqual(
    promqlMetricNames(
      'changes(credd_token_expiration_timestamp_seconds{credential=~"$credential"}[1h]) and on (credential) credd_token_refresh_failures > 0',
    ),
    ["credd_token_expiration_timestamp_seconds", "credd_token_refresh_failures"],
  );
  assert.deepEqual(promqlMetricNames("(credd_x - time()) / 86400 < 7 * 86400"), ["credd_x"]);
  assert.deepEqual(promqlSelectorLabels('credd_renewal_pending{credential=~"$c",state="sent"} == 1'), [
    { metric: "credd_renewal_pending", labels: ["credential", "state"] },
  ]);
});

test("the panels: days left, renewal state, token refreshes and failures, last check age; one data source variable", () => {
  const d = dashboard();
  assert.equal(d.uid, "credd");
  const panels = allPanels(d);
  const titles = panels.map((p) => p.title);
  for (const t of ["Days left per credential", "Renewal state over time", "Token refreshes and failures", "Last check age"])
    assert.ok(titles.includes(t), `no panel "${t}"`);
  assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, "panel ids are unique");
  const ds = d.templating.list.find((v) => v.type === "datasource");
  assert.equal(ds?.name, "datasource");
  // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own variable syntax, not a template
  for (const p of panels) if (p.targets) assert.equal(p.datasource?.uid, "${datasource}", `panel "${p.title}" uses the data source variable`);
});
