/**
 * The final 2-class mask (softmax -> inverse spacing -> inverse orientation -> argmax, spec 7)
 * computed only where it is not already decided by the logits.
 *
 * Why this is exact: the inverse resampling gives each output voxel a convex combination of the
 * probabilities of at most 8 spacing-grid voxels (trilinear weights are >= 0 and sum to 1). Where
 * every one of them has l1 - l0 < -SURE_MARGIN, each has p1 < 0.12 < 0.88 < p0, so any convex
 * combination keeps p1 < p0 and argmax gives background, whatever the rounding. Such output
 * voxels are written as 0 without computing anything. The rest, the box of output voxels that read
 * at least one undecided voxel along every axis, goes through the same softmax, resampling kernels
 * and argmax as the full path. For a trained model the undecided voxels hug the spleen, so the box
 * is a small part of the volume and most of the postprocessing time goes away.
 */
import { storedLayout, type OrientationTransform } from '../volume/orientation.js';
import { inverseSpacingTables, type SpacingTransform } from '../volume/spacing.js';
import { resampleSeparable, type AxisTable } from '../volume/trilinear.js';
import type { Shape3 } from '../volume/volume.js';
import { argmaxForeground, softmaxChannels } from './postprocess.js';

/** A voxel with l1 - l0 below -SURE_MARGIN is surely background: p1 <= 1 / (1 + e^2) < 0.12. */
export const SURE_MARGIN = 2;

/** Inclusive index box on a grid, per axis; null when empty. */
type Box = [[number, number], [number, number], [number, number]];

/**
 * The smallest box of the spacing grid holding every voxel that is not surely background
 * (NaN logits count as undecided). Null when there is none.
 */
export function undecidedBox(logits: Float32Array, shape: Shape3): Box | null {
  const [n0, n1, n2] = shape;
  const n = n0 * n1 * n2;
  let i0 = n0;
  let i1 = -1;
  let j0 = n1;
  let j1 = -1;
  let k0 = n2;
  let k1 = -1;
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1; j++) {
      const row = (i * n1 + j) * n2;
      let first = -1;
      for (let k = 0; k < n2; k++) {
        // Negated so that NaN counts as undecided.
        if (!(logits[n + row + k] - logits[row + k] < -SURE_MARGIN)) {
          first = k;
          break;
        }
      }
      if (first < 0) continue;
      let last = first;
      for (let k = n2 - 1; k > first; k--) {
        if (!(logits[n + row + k] - logits[row + k] < -SURE_MARGIN)) {
          last = k;
          break;
        }
      }
      if (i < i0) i0 = i;
      i1 = i;
      if (j < j0) j0 = j;
      if (j > j1) j1 = j;
      if (first < k0) k0 = first;
      if (last > k1) k1 = last;
    }
  }
  return i1 < 0 ? null : [[i0, i1], [j0, j1], [k0, k1]];
}

/** Output indices [qMin, qMax] of one axis that read a source index in [lo, hi]; null if none. */
function readingRange(t: AxisTable, lo: number, hi: number): [number, number] | null {
  let qMin = -1;
  let qMax = -1;
  for (let q = 0; q < t.lo.length; q++) {
    const reads = (t.lo[q] >= lo && t.lo[q] <= hi) || (t.hi[q] >= lo && t.hi[q] <= hi);
    if (reads) {
      if (qMin < 0) qMin = q;
      qMax = q;
    }
  }
  return qMin < 0 ? null : [qMin, qMax];
}

/** The table of output indices [qMin, qMax] reading from a source cropped to start at `sMin`. */
function croppedTable(t: AxisTable, qMin: number, qMax: number, sMin: number, sourceSize: number): AxisTable {
  const lo = t.lo.slice(qMin, qMax + 1).map((v) => v - sMin);
  const hi = t.hi.slice(qMin, qMax + 1).map((v) => v - sMin);
  const wLo = t.wLo.slice(qMin, qMax + 1);
  const wHi = t.wHi.slice(qMin, qMax + 1);
  let identity = lo.length === sourceSize;
  for (let q = 0; q < lo.length && identity; q++) identity = lo[q] === q && wHi[q] === 0;
  return { lo, hi, wLo, wHi, identity };
}

/** Copies box `[s0..][s1..][s2..]` of every channel of C-order `[c][n0][n1][n2]` data. */
function cropChannels(data: Float32Array, channels: number, shape: Shape3, start: Shape3, size: Shape3): Float32Array {
  const [, n1, n2] = shape;
  const n = shape[0] * n1 * n2;
  const m = size[0] * size[1] * size[2];
  const out = new Float32Array(channels * m);
  for (let c = 0; c < channels; c++) {
    for (let a = 0; a < size[0]; a++) {
      for (let b = 0; b < size[1]; b++) {
        const src = c * n + ((start[0] + a) * n1 + start[1] + b) * n2 + start[2];
        out.set(data.subarray(src, src + size[2]), c * m + (a * size[1] + b) * size[2]);
      }
    }
  }
  return out;
}

/**
 * The label map on the original grid and in its stored orientation for 2-channel `logits` on the
 * spacing grid, as `argmaxForeground(invertPreprocessing(softmaxChannels(logits)))` gives it.
 * Null when this shortcut does not apply (the spacing inverse is skipped or oblique): use the
 * full path then.
 */
export function decidedRegionLabels(
  logits: Float32Array,
  resampling: SpacingTransform,
  orientation: OrientationTransform,
): Uint8Array | null {
  const tables = inverseSpacingTables(resampling);
  if (!tables) return null;
  const gridShape = resampling.outputShape;
  const original = orientation.originalShape;
  const labels = new Uint8Array(original[0] * original[1] * original[2]);
  const box = undecidedBox(logits, gridShape);
  if (!box) return labels;

  const qStart: Shape3 = [0, 0, 0];
  const qSize: Shape3 = [0, 0, 0];
  const sStart: Shape3 = [0, 0, 0];
  const sSize: Shape3 = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    const range = readingRange(tables[a], box[a][0], box[a][1]);
    // No output voxel reads an undecided voxel along this axis: all background.
    if (!range) return labels;
    const [qMin, qMax] = range;
    let sMin = Infinity;
    let sMax = -Infinity;
    for (let q = qMin; q <= qMax; q++) {
      sMin = Math.min(sMin, tables[a].lo[q]);
      sMax = Math.max(sMax, tables[a].hi[q]);
    }
    qStart[a] = qMin;
    qSize[a] = qMax - qMin + 1;
    sStart[a] = sMin;
    sSize[a] = sMax - sMin + 1;
  }
  const crop = cropChannels(logits, 2, gridShape, sStart, sSize);
  const subTables = [0, 1, 2].map((a) => croppedTable(tables[a], qStart[a], qStart[a] + qSize[a] - 1, sStart[a], sSize[a]));
  const probabilities = resampleSeparable(softmaxChannels(crop, 2), 2, sSize, qSize, [subTables[0], subTables[1], subTables[2]]);
  const boxLabels = argmaxForeground(probabilities, 2);

  // Box voxel (a, b, c) is RAS voxel qStart + (a, b, c); storedLayout maps RAS to stored indices.
  const { base, strides } = storedLayout(orientation);
  const [t0, t1, t2] = strides;
  let v = 0;
  for (let a = 0; a < qSize[0]; a++) {
    for (let b = 0; b < qSize[1]; b++) {
      let o = base + (qStart[0] + a) * t0 + (qStart[1] + b) * t1 + qStart[2] * t2;
      for (let c = 0; c < qSize[2]; c++, o += t2, v++) labels[o] = boxLabels[v];
    }
  }
  return labels;
}
