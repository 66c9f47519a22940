import { describe, expect, it } from 'vitest';
import { percentile, scaleStats, summarizeSamples } from '../../../src/bench/sample-stats.js';

describe('summarizeSamples', () => {
  it('gives mean, median, nearest-rank percentiles, sample stdev and CV (by hand for 1..10)', () => {
    // Shuffled on purpose: the order of the samples must not matter.
    const s = summarizeSamples([7, 3, 10, 1, 5, 9, 2, 8, 6, 4]);
    expect(s.count).toBe(10);
    expect(s.mean).toBe(5.5);
    expect(s.median).toBe(5.5); // (5 + 6) / 2
    expect(s.p90).toBe(9); // rank ceil(0.9 * 10) = 9
    expect(s.p95).toBe(10); // rank ceil(9.5) = 10
    expect(s.p99).toBe(10);
    expect(s.min).toBe(1);
    expect(s.max).toBe(10);
    // sum of squared deviations = 2 * (0.25 + 2.25 + 6.25 + 12.25 + 20.25) = 82.5; / 9
    expect(s.stdev).toBeCloseTo(Math.sqrt(82.5 / 9), 12);
    expect(s.cv).toBeCloseTo(Math.sqrt(82.5 / 9) / 5.5, 12);
  });

  it('takes the middle sample as median for an odd count, and 0 spread for one sample', () => {
    expect(summarizeSamples([3, 100, 1]).median).toBe(3);
    const one = summarizeSamples([2.5]);
    expect([one.mean, one.median, one.p99, one.stdev, one.cv]).toEqual([2.5, 2.5, 2.5, 0, 0]);
  });

  it('picks the 99th percentile of 200 samples as the 198th smallest', () => {
    const samples = Array.from({ length: 200 }, (_, i) => 200 - i); // 200..1
    expect(summarizeSamples(samples).p99).toBe(198);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 51)).toBe(3);
  });

  it('rejects empty input and non-finite samples', () => {
    expect(() => summarizeSamples([])).toThrow(RangeError);
    expect(() => summarizeSamples([1, Number.NaN])).toThrow(TypeError);
    expect(() => percentile([1], 0)).toThrow(RangeError);
  });
});

describe('scaleStats', () => {
  it('scales every time figure (per-window from per-batch) and keeps count and CV', () => {
    const s = scaleStats(summarizeSamples([4, 8, 12]), 1 / 4);
    expect([s.mean, s.median, s.min, s.max, s.p90]).toEqual([2, 2, 1, 3, 3]);
    expect(s.stdev).toBe(1);
    expect(s.count).toBe(3);
    expect(s.cv).toBe(0.5);
  });
});
