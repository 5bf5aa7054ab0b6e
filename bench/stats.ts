// Summaries of timing samples. Pure: the suites collect samples, these turn them into figures.

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** The p-th percentile (0..100) of samples, nearest-rank: a value that was actually observed. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export function summarize(samples: readonly number[]): Summary {
  const n = samples.length;
  if (n === 0) return { n, p50: NaN, p99: NaN, mean: NaN, min: NaN, max: NaN };
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const s of samples) {
    sum += s;
    if (s < min) min = s;
    if (s > max) max = s;
  }
  return { n, p50: percentile(samples, 50), p99: percentile(samples, 99), mean: sum / n, min, max };
}

/** Milliseconds `work` took, and what it returned. */
export async function timed<T>(work: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await work();
  return { ms: performance.now() - started, value };
}

/**
 * The exponent k in t ∝ N^k between two sizes: 1 is linear, 2 quadratic. Figures below about a
 * millisecond make it noisy; callers say so beside it.
 */
export function growthExponent(smallN: number, smallMs: number, largeN: number, largeMs: number): number {
  return Math.log(largeMs / smallMs) / Math.log(largeN / smallN);
}

/** A number rounded for a table: 3 significant digits, at most 3 decimals. */
export function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  if (value === 0) return 0;
  const digits = Math.max(0, Math.min(3, 2 - Math.floor(Math.log10(Math.abs(value)))));
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
