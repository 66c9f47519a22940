/**
 * What a user wants to know about a mask at a glance: how many voxels, how many mL, where.
 */
import { transformPoint } from './affine.js';
import type { Shape3, Vec3 } from './volume.js';

export interface MaskSummary {
  /** Foreground voxels. */
  voxelCount: number;
  /** Foreground volume: voxelCount x |det(affine 3x3)| / 1000. */
  volumeMl: number;
  /** Inclusive voxel-index bounding box, null when the mask is empty. */
  boundingBox: { min: Shape3; max: Shape3 } | null;
  /** Mean world position (RAS+ mm) of the foreground voxels, null when empty. */
  centroidMm: Vec3 | null;
  empty: boolean;
}

function determinant3(a: Float64Array): number {
  return (
    a[0] * (a[5] * a[10] - a[6] * a[9]) -
    a[1] * (a[4] * a[10] - a[6] * a[8]) +
    a[2] * (a[4] * a[9] - a[5] * a[8])
  );
}

/** Summarises a C-order (i, j, k) label map; any non-zero voxel is foreground. */
export function summarizeMask(mask: Uint8Array, shape: Shape3, affine: Float64Array): MaskSummary {
  const [n0, n1, n2] = shape;
  let count = 0;
  const sum = [0, 0, 0];
  const min: Shape3 = [n0, n1, n2];
  const max: Shape3 = [-1, -1, -1];
  let index = 0;
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1; j++) {
      for (let k = 0; k < n2; k++, index++) {
        if (mask[index] === 0) continue;
        count++;
        sum[0] += i;
        sum[1] += j;
        sum[2] += k;
        if (i < min[0]) min[0] = i;
        if (j < min[1]) min[1] = j;
        if (k < min[2]) min[2] = k;
        if (i > max[0]) max[0] = i;
        if (j > max[1]) max[1] = j;
        if (k > max[2]) max[2] = k;
      }
    }
  }
  if (count === 0) return { voxelCount: 0, volumeMl: 0, boundingBox: null, centroidMm: null, empty: true };
  return {
    voxelCount: count,
    volumeMl: (count * Math.abs(determinant3(affine))) / 1000,
    boundingBox: { min, max },
    centroidMm: transformPoint(affine, [sum[0] / count, sum[1] / count, sum[2] / count]),
    empty: false,
  };
}
