import { describe, expect, it } from 'vitest';
import { IMPORTANCE_FLOOR, computeImportanceMap, gaussianProfile } from '../../../src/inference/importance-map.js';
import type { Shape3 } from '../../../src/volume/volume.js';
import { fixtureIndex, readF32, readI32 } from './sliding-window-fixtures.js';

// float32 results agree with torch's (SIMD) exp to 1 ulp; values are <= 1.
const TOL = 1e-6;

describe('computeImportanceMap', () => {
  it('is all ones in constant mode', () => {
    const m = computeImportanceMap([4, 5, 6]);
    expect(m.length).toBe(120);
    expect(m.every((x) => x === 1)).toBe(true);
    expect(computeImportanceMap([2, 2, 2], 'constant', 123).every((x) => x === 1)).toBe(true);
  });

  it('gives exp(-x^2 / (2 sigma^2)) per axis, sigma = 0.125 n, by hand for n = 8 (sigma 1)', () => {
    // x = -3.5 ... 3.5, sigma = 1: exp(-x^2 / 2), not normalised.
    const hand = [-6.125, -3.125, -1.125, -0.125, -0.125, -1.125, -3.125, -6.125].map(Math.exp);
    const g = gaussianProfile(8, 0.125);
    hand.forEach((h, i) => expect(g[i]).toBeCloseTo(h, 7));
    expect(g[0]).toBeCloseTo(0.0021874911, 8);
    // n = 96, sigma = 12: centre pair x = +-0.5, ends x = +-47.5
    const g96 = gaussianProfile(96, 0.125);
    expect(g96[47]).toBeCloseTo(Math.exp(-0.25 / 288), 7);
    expect(g96[95]).toBeCloseTo(Math.exp(-(47.5 * 47.5) / 288), 9);
  });

  it('is the outer product of the profiles, clamped below at 1e-3', () => {
    const m = computeImportanceMap([8, 8, 8], 'gaussian');
    const e = (x: number) => Math.exp(-(x * x) / 2);
    const at = (a: number, b: number, c: number) => m[(a * 8 + b) * 8 + c];
    expect(at(3, 4, 3)).toBeCloseTo(e(0.5) ** 3, 6); // centre: 0.6873
    expect(at(3, 3, 0)).toBeCloseTo(e(0.5) ** 2 * e(3.5), 6); // 0.0017, above the floor
    expect(at(3, 0, 0)).toBe(IMPORTANCE_FLOOR); // 4.2e-6 -> 1e-3
    expect(at(0, 0, 0)).toBe(IMPORTANCE_FLOOR); // 1.0e-8 -> 1e-3
    expect(at(2, 1, 0)).toBe(IMPORTANCE_FLOOR); // 0.32 * 0.044 * 0.0022 = 3.1e-5
    expect(IMPORTANCE_FLOOR).toBe(Math.fround(0.001));
    expect(Math.min(...m)).toBe(IMPORTANCE_FLOOR);
    // symmetric under reversal of each axis
    for (let a = 0; a < 8; a++) for (let b = 0; b < 8; b++) for (let c = 0; c < 8; c++) {
      if (at(a, b, c) !== at(7 - a, b, c) || at(a, b, c) !== at(a, 7 - b, 7 - c)) throw new Error(`asymmetric at ${a},${b},${c}`);
    }
  });

  it('uses sigma = sigmaScale * n per axis for non-cubic ROIs', () => {
    const m = computeImportanceMap([5, 7, 9], 'gaussian', 0.25);
    // centre of [5, 7, 9] is (2, 3, 4): exactly 1 on every axis
    expect(m[(2 * 7 + 3) * 9 + 4]).toBe(1);
    // (2, 3, 0): x = -4 on an axis of 9, sigma 2.25
    expect(m[(2 * 7 + 3) * 9]).toBeCloseTo(Math.exp(-16 / (2 * 2.25 * 2.25)), 7);
    // (0, 3, 4): x = -2 on an axis of 5, sigma 1.25
    expect(m[3 * 9 + 4]).toBeCloseTo(Math.exp(-4 / (2 * 1.25 * 1.25)), 7);
  });

  it("matches MONAI's compute_importance_map", () => {
    for (const c of fixtureIndex.importance) {
      const expected = readF32(c.file);
      const m = computeImportanceMap(c.roi as Shape3, 'gaussian', c.sigmaScale);
      expect(m.length).toBe(expected.length);
      let worst = 0;
      expected.forEach((x, v) => (worst = Math.max(worst, Math.abs(x - m[v]))));
      expect(worst).toBeLessThanOrEqual(TOL);
    }
  });

  it("matches MONAI's 96^3 map (sampled voxels) and its 96 profile", () => {
    const f = fixtureIndex.importance96;
    const m = computeImportanceMap([96, 96, 96], 'gaussian', 0.125);
    const idx = readI32(f.indexFile);
    const val = readF32(f.valueFile);
    expect(idx.length).toBeGreaterThan(3000);
    let worst = 0;
    idx.forEach((v, n) => (worst = Math.max(worst, Math.abs(m[v] - val[n]))));
    expect(worst).toBeLessThanOrEqual(TOL);
    let min = Infinity;
    let max = -Infinity;
    for (const x of m) {
      min = Math.min(min, x);
      max = Math.max(max, x);
    }
    expect(min).toBe(Math.fround(f.min));
    expect(max).toBeCloseTo(f.max, 7);
    // MONAI's 1-D map is clamped too
    const profile = readF32(f.profileFile);
    const g = gaussianProfile(96, 0.125);
    profile.forEach((p, i) => expect(Math.abs(Math.max(g[i], IMPORTANCE_FLOOR) - p)).toBeLessThanOrEqual(TOL));
  });

  it('rejects bad arguments', () => {
    expect(() => computeImportanceMap([8, 8] as unknown as Shape3)).toThrow(TypeError);
    expect(() => computeImportanceMap([8, 0, 8])).toThrow(RangeError);
    expect(() => computeImportanceMap([8, 8, 8], 'linear' as 'constant')).toThrow(/Expected "constant" or "gaussian" for mode/);
    expect(() => computeImportanceMap([8, 8, 8], 'gaussian', -1)).toThrow(/sigmaScale/);
  });
});
