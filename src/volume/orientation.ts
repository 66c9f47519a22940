/**
 * Reorientation to RAS+ (MONAI `Orientationd(axcodes="RAS")`, spec section 2) and its exact inverse
 * (what `Invertd` does for it, spec section 7.3): a flip and a permutation of the voxel axes, no
 * interpolation.
 */
import { uninitializedFloats } from './uninitialized.js';
import { volumeKernels } from '../native/volume-kernels.js';
import { columnNorms } from './affine.js';
import { assertChannelData, assertShape3, assertVolume } from './assert-volume.js';
import { expectedRange, expectedType } from '../errors.js';
import type { OutputLayout } from './trilinear.js';
import type { Shape3, Volume } from './volume.js';

/** How `orientToRas` rearranged a volume; all `invertOrientation` needs to undo it. */
export interface OrientationTransform {
  /** Shape (i, j, k) of the volume as it was stored. */
  originalShape: Shape3;
  /** The stored volume's affine (row-major 4x4). */
  originalAffine: Float64Array;
  /** Shape after reorientation: `rasShape[rasAxis[i]] = originalShape[i]`. */
  rasShape: Shape3;
  /** For each stored axis i, the RAS axis (0 = R, 1 = A, 2 = S) it becomes. */
  rasAxis: [number, number, number];
  /** For each stored axis i, true when it runs against its RAS axis and is reversed. */
  flipped: [boolean, boolean, boolean];
  /** True when the volume was already RAS (no data was moved). */
  identity: boolean;
}

type Mat3 = Float64Array;

function det3(m: Mat3): number {
  return m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
}

/** Transpose of the inverse, by cofactors. */
function inverseTranspose3(m: Mat3): Mat3 {
  const d = det3(m);
  const c = new Float64Array(9);
  c[0] = m[4] * m[8] - m[5] * m[7];
  c[1] = m[5] * m[6] - m[3] * m[8];
  c[2] = m[3] * m[7] - m[4] * m[6];
  c[3] = m[2] * m[7] - m[1] * m[8];
  c[4] = m[0] * m[8] - m[2] * m[6];
  c[5] = m[1] * m[6] - m[0] * m[7];
  c[6] = m[1] * m[5] - m[2] * m[4];
  c[7] = m[2] * m[3] - m[0] * m[5];
  c[8] = m[0] * m[4] - m[1] * m[3];
  for (let i = 0; i < 9; i++) c[i] /= d;
  return c;
}

/**
 * The orthogonal factor of the polar decomposition (nibabel uses U V^T from the SVD; for a
 * non-singular matrix Newton's iteration X <- (X + X^-T) / 2 converges to the same matrix, and it
 * keeps exact signed permutations exact).
 */
function polarRotation(rs: Mat3): Mat3 {
  let x = Float64Array.from(rs);
  for (let iter = 0; iter < 100; iter++) {
    const it = inverseTranspose3(x);
    let change = 0;
    const next = new Float64Array(9);
    for (let i = 0; i < 9; i++) {
      next[i] = 0.5 * (x[i] + it[i]);
      change = Math.max(change, Math.abs(next[i] - x[i]));
    }
    x = next;
    if (change <= 1e-15) break;
  }
  return x;
}

/**
 * nibabel's `io_orientation`: for each voxel axis in order, the world axis it runs along most
 * (largest |R[w, i]| of the polar rotation, that world axis then excluded) and the direction.
 */
export function ioOrientation(affine: Float64Array): { axis: [number, number, number]; sign: [number, number, number] } {
  const rs = new Float64Array(9);
  for (let c = 0; c < 3; c++) {
    const a = affine[c];
    const b = affine[4 + c];
    const d = affine[8 + c];
    // A zero column stays zero (nibabel sets zero zooms to 1); it then fails the rank check.
    const zoom = Math.sqrt(a * a + b * b + d * d) || 1;
    rs[c] = a / zoom;
    rs[3 + c] = b / zoom;
    rs[6 + c] = d / zoom;
  }
  // nibabel drops singular values below max(S) * 3 * eps; for unit columns |det| is at most 1, so
  // this threshold only rejects (numerically) rank-deficient directions.
  if (!(Math.abs(det3(rs)) > 1e-12)) {
    throw expectedRange('an affine whose 3x3 part has full rank', 'volume.affine', 'a rank-deficient matrix');
  }
  const r = polarRotation(rs);
  const axis: [number, number, number] = [0, 0, 0];
  const sign: [number, number, number] = [1, 1, 1];
  for (let i = 0; i < 3; i++) {
    let best = 0;
    for (let w = 1; w < 3; w++) if (Math.abs(r[w * 3 + i]) > Math.abs(r[best * 3 + i])) best = w;
    if (!(Math.abs(r[best * 3 + i]) > 1e-8)) {
      throw expectedRange('an affine with three independent axis directions', 'volume.affine', 'an ambiguous matrix');
    }
    axis[i] = best;
    sign[i] = r[best * 3 + i] < 0 ? -1 : 1;
    for (let c = 0; c < 3; c++) r[best * 3 + c] = 0;
  }
  return { axis, sign };
}

/**
 * dst[c][o0][o1][o2] = src[c][base + o0*s0 + o1*s1 + o2*s2]: every flip/permutation is a strided
 * gather. The innermost axis is usually contiguous (k stays k); long rows then copy as one block.
 */
function gather(
  src: Float32Array,
  channels: number,
  outShape: Shape3,
  strides: [number, number, number],
  base: number,
): Float32Array {
  const [m0, m1, m2] = outShape;
  const n = m0 * m1 * m2;
  const dst = new Float32Array(channels * n);
  const kernels = volumeKernels();
  if (kernels !== null) {
    // The same copy in C++, in cache-sized blocks (native/core/volume_kernels.cc).
    kernels.gatherStrided(src, channels, outShape, strides, base, dst);
    return dst;
  }
  const [s0, s1, s2] = strides;
  for (let c = 0; c < channels; c++) {
    let o = c * n;
    const cBase = c * n + base;
    for (let a = 0; a < m0; a++) {
      for (let b = 0; b < m1; b++) {
        const start = cBase + a * s0 + b * s1;
        if (s2 === 1 && m2 >= 256) {
          dst.set(src.subarray(start, start + m2), o);
          o += m2;
        } else {
          // Short rows: a plain loop beats allocating a subarray view per row.
          for (let k = 0, p = start; k < m2; k++, p += s2) dst[o++] = src[p];
        }
      }
    }
  }
  return dst;
}

function cStrides(shape: Shape3): [number, number, number] {
  return [shape[1] * shape[2], shape[2], 1];
}

/**
 * What `orientToRas` does to a volume's grid, without moving any data: the transform and the RAS
 * affine (A1) and shape. For pipelines that fold the flips into a later step (spacing.ts).
 */
export function rasGeometry(volume: Volume): { orientation: OrientationTransform; affine: Float64Array } {
  assertVolume(volume);
  const a0 = volume.affine;
  const shape = volume.shape;
  const { axis, sign } = ioOrientation(a0);
  const flipped: [boolean, boolean, boolean] = [sign[0] < 0, sign[1] < 0, sign[2] < 0];
  const rasShape: Shape3 = [0, 0, 0];
  for (let i = 0; i < 3; i++) rasShape[axis[i]] = shape[i];
  const identity = axis[0] === 0 && axis[1] === 1 && axis[2] === 2 && !flipped.some(Boolean);

  // A1 = A0 @ inv_ornt_aff: column axis[i] of A1 is sign[i] * column i of A0, and each flipped
  // axis moves the origin to its far end, (n_i - 1) * column i.
  const a1 = new Float64Array(16);
  a1[15] = 1;
  for (let r = 0; r < 3; r++) {
    let t = 0;
    for (let i = 0; i < 3; i++) {
      // `+ 0` turns -1 * 0 into +0, as the matrix product in MONAI does.
      a1[r * 4 + axis[i]] = sign[i] * a0[r * 4 + i] + 0;
      t += a0[r * 4 + i] * (flipped[i] ? shape[i] - 1 : 0);
    }
    a1[r * 4 + 3] = t + a0[r * 4 + 3];
  }
  const orientation: OrientationTransform = {
    originalShape: [...shape],
    originalAffine: Float64Array.from(a0),
    rasShape,
    rasAxis: axis,
    flipped,
    identity,
  };
  return { orientation, affine: a1 };
}

/**
 * Reorients a volume to RAS+ by flipping and permuting voxel axes (spec section 2). When the volume
 * is already RAS the returned volume shares `data` with the input. `geometry`: `rasGeometry(volume)`
 * when the caller has it already.
 */
export function orientToRas(
  volume: Volume,
  geometry: ReturnType<typeof rasGeometry> = rasGeometry(volume),
): { volume: Volume; orientation: OrientationTransform } {
  const { orientation, affine: a1 } = geometry;
  let data = volume.data;
  if (!orientation.identity) {
    const { strides, base } = rasReadLayout(orientation);
    data = gather(volume.data, 1, orientation.rasShape, strides, base);
  }
  return { volume: { data, shape: orientation.rasShape, spacingMm: columnNorms(a1), affine: a1 }, orientation };
}

/**
 * As orientToRas, the reordering copy in the addon's kernel on the libuv thread pool where it is
 * there (the event loop stays free; volume.data must not change before the promise settles): the
 * same copy, so the same values.
 */
export async function orientToRasAsync(
  volume: Volume,
  geometry: ReturnType<typeof rasGeometry> = rasGeometry(volume),
): Promise<{ volume: Volume; orientation: OrientationTransform }> {
  const kernels = volumeKernels();
  const { orientation, affine: a1 } = geometry;
  if (kernels === null || orientation.identity) return orientToRas(volume, geometry);
  const { strides, base } = rasReadLayout(orientation);
  const [m0, m1, m2] = orientation.rasShape;
  // The gather writes every voxel.
  const data = uninitializedFloats(m0 * m1 * m2);
  await kernels.gatherStridedAsync(volume.data, 1, orientation.rasShape, strides, base, data);
  return { volume: { data, shape: orientation.rasShape, spacingMm: columnNorms(a1), affine: a1 }, orientation };
}

/** Where RAS voxel q is stored: p_i = q_{axis[i]}, or n_i - 1 - q_{axis[i]} if flipped, as gather strides. */
function rasReadLayout(orientation: OrientationTransform): { strides: [number, number, number]; base: number } {
  const { originalShape: shape, rasAxis: axis, flipped } = orientation;
  const inStrides = cStrides(shape);
  const strides: [number, number, number] = [0, 0, 0];
  let base = 0;
  for (let i = 0; i < 3; i++) {
    strides[axis[i]] = flipped[i] ? -inStrides[i] : inStrides[i];
    if (flipped[i]) base += (shape[i] - 1) * inStrides[i];
  }
  return { strides, base };
}

/**
 * Undoes `orientToRas` on multi-channel data: `[c][RAS i][j][k]` -> `[c][stored i][j][k]`.
 * Returns `data` itself when the orientation was the identity.
 */
export function invertOrientation(
  data: Float32Array,
  channels: number,
  rasShape: Shape3,
  orientation: OrientationTransform,
): Float32Array {
  if (typeof orientation !== 'object' || orientation === null) {
    throw expectedType('an OrientationTransform', 'orientation', orientation);
  }
  assertShape3(rasShape, 'rasShape');
  if (!rasShape.every((n, i) => n === orientation.rasShape[i])) {
    throw expectedRange(`[${orientation.rasShape.join(', ')}]`, 'rasShape', `[${rasShape.join(', ')}]`);
  }
  assertChannelData(data, channels, rasShape, 'data');
  if (orientation.identity) return data;
  const { originalShape: shape, rasAxis: axis, flipped } = orientation;
  // Stored voxel p reads RAS voxel q with q_{axis[i]} = p_i, or n_i - 1 - p_i if flipped.
  const rasStrides = cStrides(rasShape);
  const strides: [number, number, number] = [0, 0, 0];
  let base = 0;
  for (let i = 0; i < 3; i++) {
    const s = rasStrides[axis[i]];
    strides[i] = flipped[i] ? -s : s;
    if (flipped[i]) base += (shape[i] - 1) * s;
  }
  return gather(data, channels, shape, strides, base);
}

/**
 * Where each RAS voxel lands in the stored layout (`[c][stored i][j][k]`), for writing a
 * resampling result straight into the original orientation.
 */
export function storedLayout(orientation: OrientationTransform): OutputLayout {
  const { originalShape: shape, rasAxis: axis, flipped } = orientation;
  const storedStrides = cStrides(shape);
  const strides: [number, number, number] = [0, 0, 0];
  let base = 0;
  for (let i = 0; i < 3; i++) {
    strides[axis[i]] = flipped[i] ? -storedStrides[i] : storedStrides[i];
    if (flipped[i]) base += (shape[i] - 1) * storedStrides[i];
  }
  return { base, strides };
}
