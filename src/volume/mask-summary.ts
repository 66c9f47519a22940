/**
 * What a user wants to know about a mask at a glance: how many voxels, how many mL, where.
 */
import { volumeKernels } from '../native/volume-kernels.js';
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

/** The scan's totals: foreground count, bounding box and index sums. */
interface MaskScan {
  count: number;
  min: Shape3;
  max: Shape3;
  sum: Vec3;
}

/** Summarises a C-order (i, j, k) label map; any non-zero voxel is foreground. */
export function summarizeMask(mask: Uint8Array, shape: Shape3, affine: Float64Array): MaskSummary {
  return summaryOf(scanMask(mask, shape), affine);
}

/**
 * As summarizeMask, the scan in the addon's kernel on the libuv pool where it is there (the event
 * loop stays free; the mask must not change before the promise settles), else the same TS scan.
 */
export async function summarizeMaskAsync(mask: Uint8Array, shape: Shape3, affine: Float64Array): Promise<MaskSummary> {
  const kernels = volumeKernels();
  if (kernels === null || mask.length !== shape[0] * shape[1] * shape[2]) return summarizeMask(mask, shape, affine);
  const stats = new Float64Array(10);
  await kernels.summarizeLabelsAsync(mask, shape, stats);
  return summaryOf(scanOf(stats), affine);
}

/** The kernel's stats ([count, min ijk, max ijk, sum ijk]) as a scan. */
function scanOf(s: Float64Array): MaskScan {
  return { count: s[0], min: [s[1], s[2], s[3]], max: [s[4], s[5], s[6]], sum: [s[7], s[8], s[9]] };
}

function summaryOf({ count, min, max, sum }: MaskScan, affine: Float64Array): MaskSummary {
  if (count === 0) return { voxelCount: 0, volumeMl: 0, boundingBox: null, centroidMm: null, empty: true };
  return {
    voxelCount: count,
    volumeMl: (count * Math.abs(determinant3(affine))) / 1000,
    boundingBox: { min, max },
    centroidMm: transformPoint(affine, [sum[0] / count, sum[1] / count, sum[2] / count]),
    empty: false,
  };
}

function scanMask(mask: Uint8Array, shape: Shape3): MaskScan {
  const kernels = volumeKernels();
  if (kernels !== null && mask.length === shape[0] * shape[1] * shape[2]) {
    // The same totals from the addon's kernel (integer sums, exact as the doubles below are).
    const s = new Float64Array(10);
    kernels.summarizeLabels(mask, shape, s);
    return scanOf(s);
  }
  const [n0, n1, n2] = shape;
  const n12 = n1 * n2;
  let count = 0;
  let sum0 = 0;
  let sum1 = 0;
  let sum2 = 0;
  const min: Shape3 = [n0, n1, n2];
  const max: Shape3 = [-1, -1, -1];
  const visit = (index: number): void => {
    const i = Math.floor(index / n12);
    const rest = index - i * n12;
    const j = Math.floor(rest / n2);
    const k = rest - j * n2;
    count++;
    sum0 += i;
    sum1 += j;
    sum2 += k;
    if (i < min[0]) min[0] = i;
    if (j < min[1]) min[1] = j;
    if (k < min[2]) min[2] = k;
    if (i > max[0]) max[0] = i;
    if (j > max[1]) max[1] = j;
    if (k > max[2]) max[2] = k;
  };
  // Masks are mostly background: skip it four voxels at a time through a 32-bit view (the index
  // arithmetic only runs for foreground voxels).
  const head = Math.min(mask.length, (4 - (mask.byteOffset % 4)) % 4);
  for (let v = 0; v < head; v++) if (mask[v] !== 0) visit(v);
  const words = new Uint32Array(mask.buffer, mask.byteOffset + head, (mask.length - head) >>> 2);
  for (let w = 0; w < words.length; w++) {
    if (words[w] === 0) continue;
    const base = head + 4 * w;
    for (let v = base; v < base + 4; v++) if (mask[v] !== 0) visit(v);
  }
  for (let v = head + 4 * words.length; v < mask.length; v++) if (mask[v] !== 0) visit(v);
  return { count, min, max, sum: [sum0, sum1, sum2] };
}
