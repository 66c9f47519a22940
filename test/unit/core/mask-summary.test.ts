import { describe, expect, it } from 'vitest';
import { fromRows } from '../../../src/volume/affine.js';
import { summarizeMask } from '../../../src/volume/mask-summary.js';

describe('summarizeMask', () => {
  const affine = fromRows([
    [-2, 0, 0, 10],
    [0, 1, 0, 0],
    [0, 0, 4, -8],
  ]);

  it('counts voxels, volume in mL, bounding box and world centroid', () => {
    const shape: [number, number, number] = [3, 4, 5];
    const mask = new Uint8Array(60);
    // Voxels (1,2,3) and (2,2,1): C order index (i*4 + j)*5 + k.
    mask[(1 * 4 + 2) * 5 + 3] = 1;
    mask[(2 * 4 + 2) * 5 + 1] = 1;
    const s = summarizeMask(mask, shape, affine);
    expect(s.voxelCount).toBe(2);
    expect(s.volumeMl).toBeCloseTo((2 * 2 * 1 * 4) / 1000, 12);
    expect(s.boundingBox).toEqual({ min: [1, 2, 1], max: [2, 2, 3] });
    // Mean index (1.5, 2, 2) -> x = -2*1.5 + 10, y = 2, z = 4*2 - 8.
    expect(s.centroidMm).toEqual([7, 2, 0]);
    expect(s.empty).toBe(false);
  });

  it('says so when the mask is empty', () => {
    const s = summarizeMask(new Uint8Array(8), [2, 2, 2], affine);
    expect(s).toEqual({ voxelCount: 0, volumeMl: 0, boundingBox: null, centroidMm: null, empty: true });
  });
});
