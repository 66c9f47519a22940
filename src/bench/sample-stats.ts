/**
 * Summary statistics of timing samples, as trtexec reports them: mean (the figure the bundle's
 * table publishes), median, percentiles 90/95/99, and the coefficient of variation (stdev / mean)
 * that says whether the mean is worth quoting.
 */
import { expectedRange, expectedType } from '../errors.js';

export interface SampleStats {
  /** Number of samples. */
  count: number;
  mean: number;
  median: number;
  p90: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
  /** Sample standard deviation (n - 1 in the denominator; 0 for a single sample). */
  stdev: number;
  /** stdev / mean: 0.01 means the samples spread about 1 % around the mean. */
  cv: number;
}

/**
 * Nearest-rank percentile of ascending `sorted` values: the smallest value with at least `p` %
 * of the samples at or below it (for p90 of 10 samples: the 9th).
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw expectedRange('at least one sample', 'sorted', sorted);
  if (!(p > 0 && p <= 100)) throw expectedRange('a percentage in (0, 100]', 'p', p);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Mean, median, p90/p95/p99, min/max, stdev and CV of `samples` (any order, at least one). */
export function summarizeSamples(samples: readonly number[]): SampleStats {
  if (!Array.isArray(samples)) throw expectedType('an array of numbers', 'samples', samples);
  if (samples.length === 0) throw expectedRange('at least one sample', 'samples', samples);
  if (!samples.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw expectedType('finite numbers', 'samples', samples);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  const mean = sorted.reduce((s, x) => s + x, 0) / n;
  const median = n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  const variance = n > 1 ? sorted.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) : 0;
  const stdev = Math.sqrt(variance);
  return {
    count: n,
    mean,
    median,
    p90: percentile(sorted, 90),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    min: sorted[0],
    max: sorted[n - 1],
    stdev,
    cv: mean === 0 ? 0 : stdev / mean,
  };
}

/** Multiplies every time statistic by `factor` (e.g. 1 / batch for per-window figures); CV is unchanged. */
export function scaleStats(stats: SampleStats, factor: number): SampleStats {
  return {
    ...stats,
    mean: stats.mean * factor,
    median: stats.median * factor,
    p90: stats.p90 * factor,
    p95: stats.p95 * factor,
    p99: stats.p99 * factor,
    min: stats.min * factor,
    max: stats.max * factor,
    stdev: stats.stdev * factor,
  };
}
