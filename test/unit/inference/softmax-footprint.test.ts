import { describe, expect, it } from 'vitest';
import { softmaxChannels } from '../../../src/inference/postprocess.js';
import { invertPreprocessing } from '../../../src/volume/invert-preprocessing.js';
import { orientToRas } from '../../../src/volume/orientation.js';
import { inverseSpacingFootprint, resampleToSpacing } from '../../../src/volume/spacing.js';
import type { Shape3, Vec3, Volume } from '../../../src/volume/volume.js';

function volume(shape: Shape3, spacing: Vec3, flip: boolean): Volume {
  const affine = new Float64Array(16);
  affine[0] = (flip ? -1 : 1) * spacing[0];
  affine[5] = (flip ? -1 : 1) * spacing[1];
  affine[10] = spacing[2];
  affine[3] = 7.3;
  affine[7] = -2.1;
  affine[11] = 40;
  affine[15] = 1;
  return { data: new Float32Array(shape[0] * shape[1] * shape[2]), shape, spacingMm: spacing, affine };
}

function logitsFor(n: number, seed: number): Float32Array {
  const out = new Float32Array(2 * n);
  let s = seed;
  for (let v = 0; v < out.length; v++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[v] = (s / 2 ** 32 - 0.5) * 12;
  }
  return out;
}

describe('softmax restricted to the inverse resampling footprint', () => {
  it('marks the source slices that 5 mm outputs read from a 2 mm grid (by hand)', () => {
    // 6 slices at 5 mm span 25 mm -> round(25 / 2 + 1) = 14 slices at 2 mm. Output slice k' reads
    // p = 2.5 k': 0, 2.5, 5, 7.5, 10, 12.5 -> {0}, {2, 3}, {5}, {7, 8}, {10}, {12, 13}.
    const v = volume([4, 4, 6], [1.5, 1.5, 5], false);
    const { resampling } = resampleToSpacing(orientToRas(v).volume, [1.5, 1.5, 2]);
    expect(resampling.outputShape).toEqual([4, 4, 14]);
    const used = inverseSpacingFootprint(resampling);
    expect(used).not.toBeNull();
    expect(Array.from(used![2])).toEqual([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1]);
    // 1.5 mm axes are not resampled: every index is read.
    expect(Array.from(used![0])).toEqual([1, 1, 1, 1]);
  });

  it.each<[string, Shape3, Vec3, boolean]>([
    ['LPS 0.8 x 0.8 x 5 mm (upsampled in plane, downsampled in k)', [23, 19, 9], [0.8, 0.8, 5], true],
    ['RAS 4 mm (downsampled in every axis)', [9, 8, 7], [4, 4, 4], false],
    ['LPS 1.1 x 1.7 x 6 mm', [17, 12, 6], [1.1, 1.7, 6], true],
  ])('gives bit-identical probabilities on the original grid: %s', (_name, shape, spacing, flip) => {
    const { volume: ras, orientation } = orientToRas(volume(shape, spacing, flip));
    const { volume: resampled, resampling } = resampleToSpacing(ras, [1.5, 1.5, 2]);
    const n = resampled.shape[0] * resampled.shape[1] * resampled.shape[2];
    const logits = logitsFor(n, shape[0] * 31 + shape[2]);
    const used = inverseSpacingFootprint(resampling);
    expect(used).not.toBeNull();
    const full = invertPreprocessing(softmaxChannels(logits, 2), 2, resampling, orientation);
    const partial = softmaxChannels(logits, 2, { shape: resampled.shape, used: used! });
    const skipped = partial.filter((p) => p === 0).length;
    const restricted = invertPreprocessing(partial, 2, resampling, orientation);
    expect(Buffer.from(restricted.buffer).equals(Buffer.from(full.buffer))).toBe(true);
    // Something was left out, or the comparison proves nothing.
    expect(skipped).toBeGreaterThan(0);
  });

  it('is null when the inverse reads every voxel (no resampling)', () => {
    const { resampling } = resampleToSpacing(orientToRas(volume([5, 5, 5], [1.5, 1.5, 2], true)).volume, [1.5, 1.5, 2]);
    expect(inverseSpacingFootprint(resampling)).toBeNull();
  });

  it('rejects a footprint of the wrong size', () => {
    const used: [Uint8Array, Uint8Array, Uint8Array] = [new Uint8Array(2), new Uint8Array(2), new Uint8Array(2)];
    expect(() => softmaxChannels(new Float32Array(2 * 9), 2, { shape: [2, 2, 2], used })).toThrow(RangeError);
  });
});
