// "Did you mean ...?" for unknown config keys: the closest known key by edit distance.

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions (`credentails`). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * cols + j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * The known key a typo most likely meant, or undefined. Case is ignored; up to 1 edit for short
 * keys and 2 for longer ones, or a prefix of at least 4 letters (`renew_before` → `renew_before_days`).
 */
export function closest(word: string, known: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: { key: string; score: number } | undefined;
  for (const key of known) {
    const k = key.toLowerCase();
    let score = editDistance(w, k);
    const limit = Math.min(w.length, k.length) <= 4 ? 1 : 2;
    if (score > limit) score = w.length >= 4 && (k.startsWith(w) || w.startsWith(k)) ? limit + 1 : Infinity;
    if (score !== Infinity && (best === undefined || score < best.score)) best = { key, score };
  }
  return best?.key;
}
