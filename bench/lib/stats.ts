/**
 * The statistics every suite reports, one definition each so that a p99 or a
 * median means the same in every results file.
 *
 *   percentile([3, 1, 2, 4], 50)   // 2.5
 *   range([480, 468, 491])         // { median: 480, min: 468, max: 491 }
 *   percentiles(latenciesMs)       // { p50, p90, p99, max, mean }
 */

/**
 * Linear interpolation between the closest ranks (numpy's default, Excel's
 * PERCENTILE.INC): rank (p / 100) × (n − 1), counted from 0 in the sorted
 * values. p 50 is the median, with the two middle values averaged when n is
 * even. NaN for no values.
 */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo]! + (rank - lo) * (s[hi]! - s[lo]!);
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** A distribution of many samples (latencies, durations), rounded to 2 decimals. */
export function percentiles(xs: readonly number[]): Percentiles {
  return {
    p50: round(percentile(xs, 50), 2),
    p90: round(percentile(xs, 90), 2),
    p99: round(percentile(xs, 99), 2),
    max: Math.max(...xs),
    mean: round(xs.reduce((a, b) => a + b, 0) / xs.length, 2),
  };
}

export interface Range {
  median: number;
  min: number;
  max: number;
}

/** A figure over a suite's repetitions: the median, and the range. Null for no repetitions. */
export function range(xs: readonly number[]): Range | null {
  if (xs.length === 0) return null;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

/**
 * Least squares y = intercept + slope × x. Over the fleet sizes it splits a
 * server's cost into a fixed part and a marginal cost per worker, which no
 * single baseline reading gives as reliably. Null below two distinct x.
 */
export function fitLine(points: { x: number; y: number }[]): { slope: number; intercept: number } | null {
  const mx = points.reduce((a, p) => a + p.x, 0) / points.length;
  const my = points.reduce((a, p) => a + p.y, 0) / points.length;
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  if (points.length < 2 || sxx === 0) return null;
  const slope = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0) / sxx;
  return { slope, intercept: my - slope * mx };
}

export function round(x: number, digits = 1): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

/** For a printed table: `-` where there is no number. */
export function fmt(x: number, digits = 0): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}
