// A small seeded PRNG (mulberry32) so a reliability run can be replayed: the seed is printed and
// read back from $CREDD_RELIABILITY_SEED.

export interface Rng {
  readonly seed: number;
  /** [0, 1) */
  next(): number;
  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeRng(seed: number): Rng {
  const next = mulberry32(seed);
  return {
    seed,
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new Error("rng.pick: empty list");
      return items[Math.floor(next() * items.length)]!;
    },
  };
}

/** $CREDD_RELIABILITY_SEED (decimal or 0x hex) when set, else a fresh one; either way the caller prints it. */
export function seedFromEnv(env: NodeJS.ProcessEnv = process.env): { seed: number; fromEnv: boolean } {
  const raw = env.CREDD_RELIABILITY_SEED?.trim();
  if (raw) {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`CREDD_RELIABILITY_SEED must be an integer 0..2^32-1, got ${raw}`);
    return { seed: n, fromEnv: true };
  }
  return { seed: Math.floor(Math.random() * 0xffffffff) >>> 0, fromEnv: false };
}
