import { describe, expect, it } from 'vitest';
import { invert4, transformPoint } from '../../../src/volume/affine.js';
import { orientToRas, rasGeometry } from '../../../src/volume/orientation.js';
import { invertSpacing, resampleFlippedToSpacing, resampleToSpacing } from '../../../src/volume/spacing.js';
import { axisTable, resampleAffine, resampleSeparable } from '../../../src/volume/trilinear.js';
import type { Shape3, Vec3, Volume } from '../../../src/volume/volume.js';

function affineOf(rows: number[][]): Float64Array {
  const a = new Float64Array(16);
  rows.forEach((row, r) => row.forEach((v, c) => (a[r * 4 + c] = v)));
  a[15] = 1;
  return a;
}

function diagonal(sp: Vec3, t: Vec3 = [-10, 20, 5.5]): Float64Array {
  return affineOf([[sp[0], 0, 0, t[0]], [0, sp[1], 0, t[1]], [0, 0, sp[2], t[2]]]);
}

function field(shape: Shape3, f: (i: number, j: number, k: number) => number): Float32Array {
  const out = new Float32Array(shape[0] * shape[1] * shape[2]);
  let o = 0;
  for (let i = 0; i < shape[0]; i++) for (let j = 0; j < shape[1]; j++) for (let k = 0; k < shape[2]; k++) out[o++] = f(i, j, k);
  return out;
}

function vol(shape: Shape3, affine: Float64Array, data?: Float32Array): Volume {
  return { data: data ?? new Float32Array(shape[0] * shape[1] * shape[2]), shape, spacingMm: [1, 1, 1], affine };
}

/** Deterministic pseudo-random values in [-1000, 1000). */
function noise(n: number, seed = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2000 - 1000;
  });
}

describe('resampleToSpacing: output grid', () => {
  it('rounds exact .5 extents half to even', () => {
    // 59 * 5 / 2 + 1 = 148.5 -> 148; 61 * 5 / 2 + 1 = 153.5 -> 154; 19 * 0.75 / 1.5 + 1 = 10.5 -> 10;
    // 21 * 0.75 / 1.5 + 1 = 11.5 -> 12 (the 1.5 mm axes are left alone).
    expect(resampleToSpacing(vol([2, 2, 60], diagonal([1.5, 1.5, 5]))).volume.shape).toEqual([2, 2, 148]);
    expect(resampleToSpacing(vol([2, 2, 62], diagonal([1.5, 1.5, 5]))).volume.shape).toEqual([2, 2, 154]);
    expect(resampleToSpacing(vol([20, 2, 2], diagonal([0.75, 1.5, 2]))).volume.shape).toEqual([10, 2, 2]);
    expect(resampleToSpacing(vol([22, 2, 2], diagonal([0.75, 1.5, 2]))).volume.shape).toEqual([12, 2, 2]);
  });

  it('gives the spec example: 256x256x60 at 0.8x0.8x5 -> 137x137x148, origin kept', () => {
    const { volume } = resampleToSpacing(vol([256, 256, 60], diagonal([0.8, 0.8, 5])));
    expect(volume.shape).toEqual([137, 137, 148]);
    expect(Array.from(volume.affine)).toEqual(Array.from(diagonal([1.5, 1.5, 2])));
    expect(volume.spacingMm).toEqual([1.5, 1.5, 2]);
  });

  it('skips when the spacing is already the target, sharing the data', () => {
    const v = vol([4, 3, 5], diagonal([1.5, 1.5, 2]), noise(60));
    const { volume, resampling } = resampleToSpacing(v);
    expect(resampling.skipped).toBe(true);
    expect(volume.data).toBe(v.data);
    const probs = new Float32Array(120);
    expect(invertSpacing(probs, 2, resampling)).toBe(probs);
  });

  it('skips within 1e-3 and then keeps the input affine, not the target spacing', () => {
    const a = diagonal([1.5009, 1.4991, 2.0009]);
    const { volume, resampling } = resampleToSpacing(vol([4, 3, 5], a));
    expect(resampling.skipped).toBe(true);
    expect(Array.from(volume.affine)).toEqual(Array.from(a));
  });

  it('resamples just outside the tolerance', () => {
    const v = vol([5, 3, 5], diagonal([1.502, 1.5, 2]), noise(75));
    const { volume, resampling } = resampleToSpacing(v);
    expect(resampling.skipped).toBe(false);
    expect(volume.shape).toEqual([5, 3, 5]);
    expect(volume.affine[0]).toBeCloseTo(1.5, 12);
    expect(Array.from(volume.data)).not.toEqual(Array.from(v.data));
  });

  it('rejects a non-positive target spacing', () => {
    expect(() => resampleToSpacing(vol([2, 2, 2], diagonal([1, 1, 1])), [1.5, 0, 2])).toThrow(RangeError);
  });
});

describe('resampleToSpacing: values', () => {
  it('keeps a constant field exactly, separable and sheared alike', () => {
    const shape: Shape3 = [7, 5, 9];
    const data = new Float32Array(7 * 5 * 9).fill(123.25);
    const sheared = affineOf([[0.8, 0, 0, 0], [0, 2.5, 0.7, 0], [0.1, 0, 3.3, 0]]);
    for (const affine of [diagonal([0.8, 2.5, 3.3]), sheared]) {
      const { volume } = resampleToSpacing(vol(shape, affine, data));
      expect(volume.data.every((v) => v === 123.25)).toBe(true);
    }
  });

  it('reproduces a linear field exactly, with border clamping (hand-computed)', () => {
    const f = (i: number, j: number, k: number) => 2 * i + 3 * j - k + 5;
    // 0.75 -> 1.5: 4 voxels at p = 0, 2, 4, 6 (6 clamps to 5); 3 -> 1.5: 9 voxels at p = q / 2;
    // 1 -> 2: 4 voxels at p = 0, 2, 4, 6 (6 clamps to 6, the last voxel).
    const { volume } = resampleToSpacing(vol([6, 5, 7], diagonal([0.75, 3, 1]), field([6, 5, 7], f)));
    expect(volume.shape).toEqual([4, 9, 4]);
    expect(Array.from(volume.data)).toEqual(Array.from(field([4, 9, 4], (a, b, c) => f(Math.min(2 * a, 5), b / 2, 2 * c))));
  });

  it('clamps to the border when upsampling past the last voxel (hand-computed)', () => {
    // 1 mm -> 1.5 mm over 5 voxels: 4 outputs at p = 0, 1.5, 3, 4.5 -> 4.
    const { volume } = resampleToSpacing(vol([5, 1, 1], diagonal([1, 1.5, 2]), Float32Array.of(10, 20, 30, 40, 50)));
    expect(Array.from(volume.data)).toEqual([10, 25, 40, 50]);
  });

  it('interpolates sheared grids on the general path, exact on a linear field', () => {
    const f = (i: number, j: number, k: number) => 0.5 * i - 2 * j + 4 * k;
    const shape: Shape3 = [9, 8, 6];
    const a1 = affineOf([[0.9, 0, 0, 3], [0, 1.1, -0.8, -4], [0, 0, 2.6, 1]]);
    const { volume } = resampleToSpacing(vol(shape, a1, field(shape, f)));
    // Independent of the code under test: index map from invert4, clamp, then the linear field.
    const map = (q: number[]) => transformPoint(invert4(a1), transformPoint(volume.affine, q));
    const [m0, m1, m2] = volume.shape;
    let worst = 0;
    let o = 0;
    for (let a = 0; a < m0; a++) {
      for (let b = 0; b < m1; b++) {
        for (let c = 0; c < m2; c++) {
          const p = map([a, b, c]).map((v, d) => Math.min(Math.max(v, 0), shape[d] - 1));
          worst = Math.max(worst, Math.abs(volume.data[o++] - f(p[0], p[1], p[2])));
        }
      }
    }
    expect(worst).toBeLessThan(1e-5);
  });
});

describe('resampleFlippedToSpacing', () => {
  /** A stored volume whose axis i runs along world axis perm[i], reversed where bit i of signs is set. */
  function stored(shape: Shape3, spacing: Vec3, perm: number[], signs: number, shear = 0): Volume {
    const a = new Float64Array(16);
    a[15] = 1;
    perm.forEach((w, i) => (a[w * 4 + i] = (signs >> i) & 1 ? -spacing[i] : spacing[i]));
    a[perm[1] * 4 + 2] += shear;
    a[3] = -12.5;
    a[7] = 30;
    a[11] = 4;
    return vol(shape, a, noise(shape[0] * shape[1] * shape[2], signs + 3));
  }

  it('gives orientToRas + resampleToSpacing bit for bit when only axes are reversed', () => {
    for (const spacing of [[0.8, 0.8, 5.0], [2.1, 0.7, 1.3]] as Vec3[]) {
      for (let signs = 0; signs < 8; signs++) {
        const volume = stored([23, 19, 11], spacing, [0, 1, 2], signs);
        const { orientation, affine } = rasGeometry(volume);
        const fused = resampleFlippedToSpacing(volume, orientation, affine, [1.5, 1.5, 2.0]);
        const reference = resampleToSpacing(orientToRas(volume).volume, [1.5, 1.5, 2.0]);
        expect(fused, `spacing ${spacing} signs ${signs}`).not.toBeNull();
        expect(fused!.volume.shape).toEqual(reference.volume.shape);
        expect(Array.from(fused!.volume.affine)).toEqual(Array.from(reference.volume.affine));
        expect(fused!.resampling).toEqual(reference.resampling);
        expect(Buffer.from(fused!.volume.data.buffer).equals(Buffer.from(reference.volume.data.buffer)), `spacing ${spacing} signs ${signs}`).toBe(true);
      }
    }
  });

  it('declines (null) for a permutation, MONAI\'s skip, or an oblique grid', () => {
    const cases = [
      stored([23, 19, 11], [0.8, 0.8, 5.0], [1, 0, 2], 1),
      stored([23, 19, 11], [1.5, 1.5, 2.0], [0, 1, 2], 3),
      stored([23, 19, 11], [0.8, 0.9, 3.0], [0, 1, 2], 1, 0.4),
    ];
    for (const volume of cases) {
      const { orientation, affine } = rasGeometry(volume);
      expect(resampleFlippedToSpacing(volume, orientation, affine, [1.5, 1.5, 2.0])).toBeNull();
    }
  });
});

describe('invertSpacing', () => {
  it('maps 2-channel data back onto the original grid with border clamp (hand-computed)', () => {
    // 6 voxels at 1 mm -> 4 at 1.5 mm; back: p = q / 1.5 = 0, 2/3, 4/3, 2, 8/3, 10/3 -> 3.
    const { resampling } = resampleToSpacing(vol([6, 1, 1], diagonal([1, 1.5, 2])));
    expect(resampling.outputShape).toEqual([4, 1, 1]);
    const back = invertSpacing(Float32Array.of(0, 3, 6, 9, 1, 1, 1, 1), 2, resampling);
    const want = [0, 2, 4, 6, 8, 9, 1, 1, 1, 1, 1, 1];
    expect(back.length).toBe(12);
    back.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
  });

  it('round-trips a linear field away from the clamped border', () => {
    const f = (i: number, j: number, k: number) => i + 2 * j + 3 * k;
    const shape: Shape3 = [11, 9, 7];
    const { volume, resampling } = resampleToSpacing(vol(shape, diagonal([0.7, 0.9, 2.5]), field(shape, f)));
    const back = invertSpacing(volume.data, 1, resampling);
    const want = field(shape, f);
    // The last forward voxel on each axis may sit short of the input's far edge (rounding the
    // shape down), so the inverse clamps there; compare the interior only.
    for (let i = 0; i < 9; i++) {
      for (let j = 0; j < 7; j++) {
        for (let k = 0; k < 5; k++) {
          const o = (i * 9 + j) * 7 + k;
          expect(Math.abs(back[o] - want[o])).toBeLessThan(1e-4);
        }
      }
    }
  });

  it('rejects data that does not match the resampled grid', () => {
    const { resampling } = resampleToSpacing(vol([6, 1, 1], diagonal([1, 1.5, 2])));
    expect(() => invertSpacing(new Float32Array(7), 2, resampling)).toThrow(RangeError);
  });
});

describe('trilinear kernels', () => {
  it.each([
    ['shrinking i (blend first)', [1.7, 0.6, 0.77], [-0.4, 0.3, 0.2]],
    ['growing i (resample first)', [0.4, 1.3, 0.77], [0.1, -0.2, 0.6]],
    ['reversed i', [-0.7, 0.6, 1.1], [12.5, 0.3, -0.5]],
  ])('agree between the separable and the general path: %s', (_name, scale, offset) => {
    const inShape: Shape3 = [13, 11, 9];
    const outShape: Shape3 = [19, 17, 12];
    const src = noise(2 * 13 * 11 * 9, 7);
    const xform = affineOf([[scale[0], 0, 0, offset[0]], [0, scale[1], 0, offset[1]], [0, 0, scale[2], offset[2]]]);
    const tables = [0, 1, 2].map((a) => axisTable(scale[a], offset[a], outShape[a], inShape[a]));
    const sep = resampleSeparable(src, 2, inShape, outShape, [tables[0], tables[1], tables[2]]);
    const gen = resampleAffine(src, 2, inShape, outShape, xform);
    expect(sep.length).toBe(2 * 19 * 17 * 12);
    let worst = 0;
    for (let i = 0; i < sep.length; i++) worst = Math.max(worst, Math.abs(sep[i] - gen[i]));
    expect(worst).toBeLessThan(1e-3);
  });

  it('samples a single voxel correctly (hand-computed 2x2x2 blend)', () => {
    // Corner values v(i,j,k) = i + 10 j + 100 k; the centre blends all eight equally.
    const src = Float32Array.of(0, 100, 10, 110, 1, 101, 11, 111);
    const xform = affineOf([[0, 0, 0, 0.5], [0, 0, 0, 0.25], [0, 0, 0, 0.75]]);
    const out = resampleAffine(src, 1, [2, 2, 2], [1, 1, 1], xform);
    expect(out[0]).toBeCloseTo(0.5 + 2.5 + 75, 5);
  });
});
