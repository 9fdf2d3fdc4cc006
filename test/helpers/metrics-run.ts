// A metrics file written by a real run (test/integration/metrics.test.ts checks it): a config with two
// credentials, a certificate imported with 20 days left, one check (which starts a renewal), then
// the status view rendered and written as the daemon does. For tests of what reads the metrics
// (contrib/prometheus, contrib/grafana): every name they use must be one credd writes.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ManualClock } from "./clock.js";
import { parseConfig } from "../../src/config/load.js";
import { checkAll } from "../../src/core/check.js";
import { sqliteCtx, type TestCtx } from "./ctx.js";
import { importCertificate } from "../../src/core/import.js";
import { buildStatus, type StatusView } from "../../src/core/status.js";
import { renderMetrics, writeMetricsFile, type MetricsView } from "../../src/daemon/metrics.js";
import { createLogger } from "../../src/log.js";
import { makeMailerFactory } from "../../src/mail/factory.js";
import { openDb } from "../../src/store/db.js";
import { dnFor } from "./credd.js";
import { makeCa, makeKeyAndCert, makeTempDir } from "./openssl.js";

const DAY = 86_400_000;

export interface MetricsRun {
  file: string;
  text: string;
  /** Metric family name → the label names its samples carry (empty when it has no sample). */
  families: Map<string, Set<string>>;
  /** The run's time (its ManualClock), in ms. */
  now: number;
  /** The status view the file was rendered from. */
  view: StatusView;
  /** fleet-prod's imported certificate: its serial and expiry (20 days after `now`). */
  serial: string;
  notAfter: Date;
}

export async function realMetricsRun(): Promise<MetricsRun> {
  const dir = makeTempDir("credd-metrics-run-");
  const now = Date.parse("2026-11-25T15:00:00Z");
  const config = parseConfig(
    `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
metrics_file: ${join(dir, "credd.prom")}
smtp: { url: "smtp://127.0.0.1:9", from: "credd <credd@partner.example>", timeout_ms: 1000 }
alerts: { to: [ops@partner.example] }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
  - name: fleet-test
    mzp: MZP654321
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
`,
    join(dir, "credd.yaml"),
    {},
  );
  const ctx: TestCtx = sqliteCtx({
    config,
    db: openDb(config.state_dir),
    clock: new ManualClock(now),
    log: createLogger({ level: "silent" }),
    mailer: makeMailerFactory(config),
  });
  const notAfter = new Date(now + 20 * DAY);
  let serial: string;
  let view: StatusView;
  try {
    // Made by hand, 20 days left: the check starts a renewal (key + CSR, email queued).
    const ca = makeCa(makeTempDir("credd-metrics-run-ca-"));
    const hand = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, notBefore: new Date(now - 345 * DAY), notAfter });
    ({ serial } = await importCertificate(ctx, config.credentials[0]!, {
      certText: readFileSync(hand.certPath, "utf8"),
      certFile: hand.certPath,
      keyText: readFileSync(hand.keyPath, "utf8"),
      keyFile: hand.keyPath,
    }));
    await checkAll(ctx);
    view = await buildStatus(ctx);
    writeMetricsFile(config.metrics_file!, renderMetrics(view));
  } finally {
    ctx.db.close();
  }
  const text = readFileSync(config.metrics_file!, "utf8");
  return { file: config.metrics_file!, text, families: metricFamilies(text), now, view, serial, notAfter };
}

/**
 * The label names of every family, from renderMetrics over a view where each family has a sample
 * (an OAuth2 token, an open alert): for the families a real run above leaves without one.
 */
export function labelsOfEveryFamily(): Map<string, Set<string>> {
  const view: MetricsView = {
    status: "warning",
    daemon: { last_check_at: "2026-11-25T15:00:00.000Z" },
    outbox: { queued: 0 },
    alerts: [{ credential: "a", kind: "token-failing", severity: "warning" }],
    credentials: [
      {
        name: "a",
        mzp: "MZP128745",
        status: "warning",
        certificate: { serial: "0A", not_after: "2027-01-01T00:00:00.000Z" },
        renewal: { state: "sent" },
        next_renewal_at: "2026-12-01T00:00:00.000Z",
        next_renewal_set_by: { certificate: "intermediate", not_after: "2026-12-31T00:00:00.000Z" },
        token: { expires_at: "2026-11-25T16:00:00.000Z", failures: 1 },
      },
    ],
  };
  return metricFamilies(renderMetrics(view));
}

/** Family name → label names seen on its samples, from `# TYPE` lines and sample lines. */
export function metricFamilies(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type) out.set(type[1]!, out.get(type[1]!) ?? new Set());
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!m) continue;
    const labels = out.get(m[1]!) ?? new Set<string>();
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]!);
    out.set(m[1]!, labels);
  }
  return out;
}

/**
 * The metric names a PromQL expression uses: identifiers that are not functions, keywords,
 * label names inside `{...}` or `by (...)`/`on (...)` lists, or string contents. Enough for the
 * expressions in contrib/ (no recording rules): a name it cannot tell is reported, not skipped.
 */
export function promqlMetricNames(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const noMatchers = noStrings.replace(/\{[^}]*\}/g, "{}");
  const noGroupings = noMatchers.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "$1()");
  const names = new Set<string>();
  for (const m of noGroupings.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w])(\s*\()?/g)) {
    const [, name, call] = m;
    if (call) continue; // a function or aggregation: rate(...), sum(...), absent(...)
    if (PROMQL_WORDS.has(name!)) continue;
    names.add(name!);
  }
  return [...names];
}

const PROMQL_WORDS = new Set([
  ...["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "inf", "nan", "Inf", "NaN"],
  // Aggregations, which may take `by (...)` before their parenthesis: `sum by (x) (m)`.
  ...["sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"],
]);

/** Label names an expression selects or groups on, by the metric they go with (`{credential="x"}`, `by (state)`). */
export function promqlSelectorLabels(expr: string): { metric: string; labels: string[] }[] {
  const out: { metric: string; labels: string[] }[] = [];
  for (const m of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)) {
    out.push({ metric: m[1]!, labels: [...m[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!) });
  }
  return out;
}
