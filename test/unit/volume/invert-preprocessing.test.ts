import { describe, expect, it } from 'vitest';
import { invertPreprocessing } from '../../../src/volume/invert-preprocessing.js';
import { invertOrientation, orientToRas } from '../../../src/volume/orientation.js';
import { invertSpacing, resampleToSpacing } from '../../../src/volume/spacing.js';
import type { Shape3, Volume } from '../../../src/volume/volume.js';

function noise(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  });
}

/** Signed permutations with anisotropic spacings (some grow, some shrink), optionally sheared. */
function cases(): { name: string; affine: Float64Array }[] {
  const perms = [[0, 1, 2], [1, 0, 2], [1, 2, 0], [2, 1, 0]];
  const spacing = [0.7, 2.9, 1.3];
  const out: { name: string; affine: Float64Array }[] = [];
  for (const perm of perms) {
    for (let signs = 0; signs < 8; signs++) {
      for (const shear of [0, 0.4]) {
        const a = new Float64Array(16);
        a[15] = 1;
        perm.forEach((w, i) => (a[w * 4 + i] = (signs >> i) & 1 ? -spacing[i] : spacing[i]));
        a[perm[1] * 4 + 2] += shear;
        a[3] = 7;
        a[7] = -3;
        a[11] = 11;
        out.push({ name: `perm ${perm} signs ${signs} shear ${shear}`, affine: a });
      }
    }
  }
  return out;
}

describe('invertPreprocessing', () => {
  it('equals invertOrientation(invertSpacing(...)) exactly, for flips, permutations and shear', () => {
    const shape: Shape3 = [9, 7, 6];
    for (const { name, affine } of cases()) {
      const v: Volume = { data: noise(9 * 7 * 6, 3), shape, spacingMm: [1, 1, 1], affine };
      const { volume: ras, orientation } = orientToRas(v);
      const { volume: rs, resampling } = resampleToSpacing(ras);
      const probs = noise(2 * rs.data.length, 5);
      const composed = invertOrientation(invertSpacing(probs, 2, resampling), 2, ras.shape, orientation);
      const fused = invertPreprocessing(probs, 2, resampling, orientation);
      expect(fused.length, name).toBe(2 * 9 * 7 * 6);
      expect(Array.from(fused), name).toEqual(Array.from(composed));
    }
  });

  it('falls back to the orientation inverse alone when the spacing was skipped', () => {
    const affine = Float64Array.of(-1.5, 0, 0, 0, 0, -1.5, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1);
    const v: Volume = { data: noise(24, 1), shape: [2, 3, 4], spacingMm: [1.5, 1.5, 2], affine };
    const { volume: ras, orientation } = orientToRas(v);
    const { resampling } = resampleToSpacing(ras);
    expect(resampling.skipped).toBe(true);
    expect(Array.from(invertPreprocessing(ras.data, 1, resampling, orientation))).toEqual(Array.from(v.data));
  });

  it('rejects transforms from different volumes', () => {
    const affine = Float64Array.of(-1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1);
    const a = orientToRas({ data: noise(24, 1), shape: [2, 3, 4], spacingMm: [1, 1, 1], affine });
    const b = orientToRas({ data: noise(24, 1), shape: [4, 3, 2], spacingMm: [1, 1, 1], affine });
    const { volume, resampling } = resampleToSpacing(a.volume);
    expect(() => invertPreprocessing(volume.data, 1, resampling, b.orientation)).toThrow(RangeError);
  });
});
