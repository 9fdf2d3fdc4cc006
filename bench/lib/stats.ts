// Medians and spreads of timed samples, and how the bench prints them.

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  p25: number;
  p75: number;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(samples: number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    median: quantile(s, 0.5),
    min: s[0] ?? Number.NaN,
    max: s.at(-1) ?? Number.NaN,
    p25: quantile(s, 0.25),
    p75: quantile(s, 0.75),
  };
}

/** "123 ms" with a precision that suits the size. */
export function ms(v: number): string {
  if (!Number.isFinite(v)) return "n/a";
  if (v >= 100) return `${v.toFixed(0)} ms`;
  if (v >= 10) return `${v.toFixed(1)} ms`;
  return `${v.toFixed(2)} ms`;
}

/** "median (p25–p75, n=N)" for the details column. */
export function spread(s: Summary, unit: (v: number) => string = ms): string {
  return `${unit(s.median)} (IQR ${unit(s.p25)}–${unit(s.p75)}, min ${unit(s.min)}, max ${unit(s.max)}, n=${s.n})`;
}

export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
