import { describe, expect, it } from 'vitest';
import { invertOrientation, ioOrientation, orientToRas } from '../../../src/volume/orientation.js';
import { invert4, transformPoint } from '../../../src/volume/affine.js';
import type { Shape3, Volume } from '../../../src/volume/volume.js';

function ramp(n: number, start = 0): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => start + i);
}

function volume(shape: Shape3, rows: number[][], data?: Float32Array): Volume {
  const affine = new Float64Array(16);
  rows.forEach((row, r) => row.forEach((v, c) => (affine[r * 4 + c] = v)));
  affine[15] = 1;
  return { data: data ?? ramp(shape[0] * shape[1] * shape[2]), shape, spacingMm: [1, 1, 1], affine };
}

/** All 48 signed 3x3 permutation matrices, as affine rows with distinct spacings and an origin. */
function signedPermutations(): number[][][] {
  const perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
  const out: number[][][] = [];
  for (const perm of perms) {
    for (let signs = 0; signs < 8; signs++) {
      const rows = [[0, 0, 0, 4.5], [0, 0, 0, -7], [0, 0, 0, 12.25]];
      perm.forEach((w, i) => (rows[w][i] = (signs >> i) & 1 ? -(i + 1) * 0.5 : (i + 1) * 0.5));
      out.push(rows);
    }
  }
  return out;
}

describe('ioOrientation', () => {
  it('picks the largest component, excluding world axes already taken (nibabel reference)', () => {
    // Columns: (0.7, 0.5, 0.51) normalised, then one whose largest component is also world 0;
    // nibabel.io_orientation gives [[0, 1], [1, -1], [2, -1]].
    const c0 = [0.7, 0.5, 0.51].map((v) => v / Math.hypot(0.7, 0.5, 0.51));
    const raw = [0.72, -0.65, -(c0[0] * 0.72 - c0[1] * 0.65) / c0[2]];
    const c1 = raw.map((v) => v / Math.hypot(...raw));
    const c2 = [c0[1] * c1[2] - c0[2] * c1[1], c0[2] * c1[0] - c0[0] * c1[2], c0[0] * c1[1] - c0[1] * c1[0]];
    const rows = [0, 1, 2].map((r) => [c0[r] * 0.8, c1[r] * 0.9, c2[r] * 5, 0]);
    expect(ioOrientation(volume([2, 2, 2], rows).affine)).toEqual({ axis: [0, 1, 2], sign: [1, -1, -1] });
  });

  it('uses the polar decomposition, not the raw columns (nibabel reference)', () => {
    // Greedy on the normalised columns would give axes [1, 0, 2]; nibabel gives
    // [[1, -1], [2, 1], [0, -1]].
    const rows = [[0.3, -0.5, -0.9, 0], [-1.0, 0.6, 0.8, 0], [0.2, 0.5, 0.1, 0]];
    expect(ioOrientation(volume([2, 2, 2], rows).affine)).toEqual({ axis: [1, 2, 0], sign: [-1, 1, -1] });
  });

  it('rejects a rank-deficient affine', () => {
    const rows = [[1, 2, 0, 0], [2, 4, 0, 0], [0, 0, 1, 0]];
    expect(() => ioOrientation(volume([2, 2, 2], rows).affine)).toThrow(RangeError);
  });
});

describe('orientToRas', () => {
  it('flips an LPS volume (hand-computed)', () => {
    const v = volume([2, 3, 2], [[-2, 0, 0, 10], [0, -3, 0, 20], [0, 0, 4, 30]]);
    const { volume: ras, orientation } = orientToRas(v);
    expect(ras.shape).toEqual([2, 3, 2]);
    expect(Array.from(ras.data)).toEqual([10, 11, 8, 9, 6, 7, 4, 5, 2, 3, 0, 1]);
    expect(Array.from(ras.affine)).toEqual([2, 0, 0, 8, 0, 3, 0, 14, 0, 0, 4, 30, 0, 0, 0, 1]);
    expect(ras.spacingMm).toEqual([2, 3, 4]);
    expect(orientation.flipped).toEqual([true, true, false]);
    expect(orientation.identity).toBe(false);
  });

  it('permutes axes (hand-computed): i is S, j runs R->L, k is A', () => {
    const v = volume([2, 3, 4], [[0, -1, 0, 5], [0, 0, 3, 6], [2, 0, 0, 7]]);
    const { volume: ras, orientation } = orientToRas(v);
    expect(orientation.rasAxis).toEqual([2, 0, 1]);
    expect(orientation.flipped).toEqual([false, true, false]);
    expect(ras.shape).toEqual([3, 4, 2]);
    expect(Array.from(ras.affine)).toEqual([1, 0, 0, 3, 0, 3, 0, 6, 0, 0, 2, 7, 0, 0, 0, 1]);
    // RAS (r, a, s) reads stored (i, j, k) = (s, 2 - r, a), stored value (i * 3 + j) * 4 + k.
    const at = (r: number, a: number, s: number) => ras.data[(r * 4 + a) * 2 + s];
    expect(at(0, 0, 0)).toBe(8);
    expect(at(0, 0, 1)).toBe(20);
    expect(at(2, 3, 1)).toBe(15);
    expect(at(1, 2, 0)).toBe(6);
  });

  it('takes the identity fast path for RAS input, sharing the data', () => {
    const v = volume([3, 2, 2], [[0.7, 0, 0, 1], [0, 0.8, 0, 2], [0, 0, 2.5, 3]]);
    const { volume: ras, orientation } = orientToRas(v);
    expect(orientation.identity).toBe(true);
    expect(ras.data).toBe(v.data);
    expect(Array.from(ras.affine)).toEqual(Array.from(v.affine));
    const two = new Float32Array(24);
    expect(invertOrientation(two, 2, [3, 2, 2], orientation)).toBe(two);
  });

  it('reorients an oblique volume by its dominant directions', () => {
    const c = Math.cos(Math.PI / 6);
    const s = Math.sin(Math.PI / 6);
    // LPS rotated 30 degrees about S: i mostly -R, j mostly -A.
    const v = volume([3, 4, 2], [[-0.8 * c, 0.9 * s, 0, 1], [-0.8 * s, -0.9 * c, 0, 2], [0, 0, 5, 3]]);
    const { volume: ras, orientation } = orientToRas(v);
    expect(orientation.rasAxis).toEqual([0, 1, 2]);
    expect(orientation.flipped).toEqual([true, true, false]);
    // The oblique directions are kept (no resampling), flipped to point along +R and +A.
    expect(ras.affine[0]).toBeCloseTo(0.8 * c, 12);
    expect(ras.affine[4]).toBeCloseTo(0.8 * s, 12);
    // Origin moves to stored voxel (2, 3, 0): t + 2 * column 0 + 3 * column 1.
    expect(ras.affine[3]).toBeCloseTo(1 - 2 * 0.8 * c + 3 * 0.9 * s, 12);
    expect(ras.affine[7]).toBeCloseTo(2 - 2 * 0.8 * s - 3 * 0.9 * c, 12);
  });

  it('keeps every voxel at its world position, for all 48 axis flips/permutations', () => {
    for (const rows of signedPermutations()) {
      const v = volume([2, 3, 4], rows);
      const { volume: ras } = orientToRas(v);
      for (let c = 0; c < 3; c++) expect(ras.affine[c * 4 + c]).toBeGreaterThan(0);
      const toStored = invert4(v.affine);
      const [m0, m1, m2] = ras.shape;
      for (let a = 0; a < m0; a++) {
        for (let b = 0; b < m1; b++) {
          for (let k = 0; k < m2; k++) {
            const p = transformPoint(toStored, transformPoint(ras.affine, [a, b, k])).map(Math.round);
            expect(ras.data[(a * m1 + b) * m2 + k]).toBe(v.data[(p[0] * 3 + p[1]) * 4 + p[2]]);
          }
        }
      }
    }
  });

  it('round-trips 2-channel data exactly through invertOrientation, for all 48 cases', () => {
    for (const rows of signedPermutations()) {
      const v = volume([2, 3, 4], rows);
      const { volume: ras, orientation } = orientToRas(v);
      const twoRas = new Float32Array(48);
      twoRas.set(ras.data);
      twoRas.set(orientToRas(volume([2, 3, 4], rows, ramp(24, 100))).volume.data, 24);
      const back = invertOrientation(twoRas, 2, ras.shape, orientation);
      expect(Array.from(back)).toEqual([...ramp(24), ...ramp(24, 100)]);
    }
  });

  it('rejects data of the wrong length or grid', () => {
    const { orientation } = orientToRas(volume([2, 3, 4], [[-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0]]));
    expect(() => invertOrientation(new Float32Array(47), 2, [2, 3, 4], orientation)).toThrow(RangeError);
    expect(() => invertOrientation(new Float32Array(48), 2, [4, 3, 2], orientation)).toThrow(RangeError);
    expect(() => orientToRas({ ...volume([2, 2, 2], [[1, 0, 0, 0]]), data: new Float32Array(7) })).toThrow(RangeError);
  });
});
