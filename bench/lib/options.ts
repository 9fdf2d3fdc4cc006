// What every bench section is handed: run counts (BENCH_QUICK=1 for fewer), a temp folder, progress output.
import { mkdtempSync } from "node:fs";
import { join } from "node:path";

export interface BenchOptions {
  quick: boolean;
  /** Picks the full or the quick run count. */
  runs(full: number, quick: number): number;
  /** A new folder under the bench's temp root (removed at the end unless BENCH_KEEP=1). */
  tempDir(prefix: string): string;
  /** Progress on stderr, so stdout is the table alone. */
  progress(msg: string): void;
}

export function benchOptions(root: string, env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const quick = env.BENCH_QUICK === "1";
  return {
    quick,
    runs: (full, q) => (quick ? q : full),
    tempDir: (prefix) => mkdtempSync(join(root, prefix)),
    progress: (msg) => process.stderr.write(`bench: ${msg}\n`),
  };
}
