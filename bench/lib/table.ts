// The one table `npm run bench` prints: each figure with its reference, target and verdict.

export type Verdict = "PASS" | "MISS" | "info" | "skip" | "ERROR";

export interface Row {
  figure: string;
  credd: string;
  reference: string;
  target: string;
  verdict: Verdict;
  /** How it was measured: medians, spread, what was skipped and why. */
  detail: string;
}

export const verdict = (ok: boolean): Verdict => (ok ? "PASS" : "MISS");

/** A Markdown table (readable in a terminal, pasteable into docs/benchmark.md), details as notes below it. */
export function renderTable(rows: Row[]): string {
  const head = ["figure", "credd", "reference", "target", "result"];
  const body = rows.map((r) => [r.figure, r.credd, r.reference, r.target, r.verdict]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  const out = [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...body.map(line), ""];
  for (const [i, r] of rows.entries()) out.push(`${i + 1}. ${r.figure}: ${r.detail}`);
  return out.join("\n");
}
