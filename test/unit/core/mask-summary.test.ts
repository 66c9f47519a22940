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

  it('agrees with a voxel-by-voxel count on a sparse mask at an unaligned offset', () => {
    const shape: [number, number, number] = [7, 9, 11]; // 693 voxels: not a multiple of 4
    const backing = new Uint8Array(1 + 693);
    const mask = backing.subarray(1); // byteOffset 1: exercises the unaligned head and the tail
    let seed = 12345;
    for (let v = 0; v < mask.length; v++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      if (seed % 17 === 0) mask[v] = 1 + (seed % 3);
    }
    mask[0] = 1;
    mask[692] = 1;
    let count = 0;
    const sum = [0, 0, 0];
    const min = [7, 9, 11];
    const max = [-1, -1, -1];
    for (let i = 0; i < 7; i++) for (let j = 0; j < 9; j++) for (let k = 0; k < 11; k++) {
      if (mask[(i * 9 + j) * 11 + k] === 0) continue;
      count++;
      [i, j, k].forEach((x, a) => {
        sum[a] += x;
        min[a] = Math.min(min[a], x);
        max[a] = Math.max(max[a], x);
      });
    }
    const s = summarizeMask(mask, shape, affine);
    expect(s.voxelCount).toBe(count);
    expect(s.boundingBox).toEqual({ min, max });
    expect(s.centroidMm).toEqual([-2 * (sum[0] / count) + 10, sum[1] / count, 4 * (sum[2] / count) - 8]);
  });
});
