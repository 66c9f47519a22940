/**
 * Resampling to the bundle's voxel spacing (MONAI `Spacingd(pixdim=(1.5, 1.5, 2.0),
 * mode="bilinear")`, spec section 3) and its inverse as `Invertd` applies it to the network's
 * probabilities (spec section 7.2).
 *
 * The geometry follows MONAI 1.4.0 step by step (Spacing.__call__, zoom_affine,
 * compute_shape_offset, spatial_resample) rather than the closed forms, because the output shape
 * rounds exact .5 ties half-to-even and a last-bit difference in the affine picks the other side.
 */
import { columnNorms, multiply4 } from './affine.js';
import { assertChannelData, assertVolume } from './assert-volume.js';
import { allClose, choleskyLower, inverse, matmul, roundHalfEven, solveLinear } from './numpy-linalg.js';
import {
  axisTable, resampleAffine, resampleAffineAsync, resampleSeparable, resampleSeparableAsync, type AxisTable, type OutputLayout,
} from './trilinear.js';
import { expectedRange, expectedType } from '../errors.js';
import type { IntensityWindowParameters } from './intensity.js';
import type { OrientationTransform } from './orientation.js';
import type { Shape3, Vec3, Volume } from './volume.js';

/** MONAI's AFFINE_TOL: spacings and affines closer than this count as unchanged. */
const AFFINE_TOL = 1e-3;

/** The bundle's target spacing (mm). */
export const DEFAULT_SPACING_MM: Vec3 = [1.5, 1.5, 2.0];

/** How `resampleToSpacing` changed the grid; all `invertSpacing` needs to undo it. */
export interface SpacingTransform {
  /** True when MONAI would skip the resampling (data and affine passed through unchanged). */
  skipped: boolean;
  /** The RAS grid before resampling (A1 and its shape). */
  inputShape: Shape3;
  inputAffine: Float64Array;
  /** The resampled grid (A2 and its shape); equal to the input grid when skipped. */
  outputShape: Shape3;
  outputAffine: Float64Array;
}

/** Column norms as MONAI's affine_to_spacing computes them (sqrt of the summed squares; 0 -> 1). */
function affineToSpacing(a: Float64Array): Vec3 {
  const out: Vec3 = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    const s = Math.sqrt(a[c] * a[c] + a[4 + c] * a[4 + c] + a[8 + c] * a[8 + c]);
    out[c] = s === 0 ? 1 : s;
  }
  return out;
}

function block3(a: Float64Array): Float64Array {
  return Float64Array.of(a[0], a[1], a[2], a[4], a[5], a[6], a[8], a[9], a[10]);
}

/**
 * zoom_affine(diagonal=False): the rotation factor of rzs = Q R (via Cholesky of rzs^T rzs, as
 * MONAI computes it) scaled column-wise to `scale`, zero translation. For a sheared affine Q is
 * not the column directions: shear is dropped, not preserved.
 */
function zoomAffine(a1: Float64Array, scale: Vec3): Float64Array {
  const rzs = block3(a1);
  const rzsT = Float64Array.of(rzs[0], rzs[3], rzs[6], rzs[1], rzs[4], rzs[7], rzs[2], rzs[5], rzs[8]);
  const lower = choleskyLower(matmul(rzsT, rzs, 3, 3, 3), 3);
  const zs = Float64Array.of(lower[0], lower[3], lower[6], lower[1], lower[4], lower[7], lower[2], lower[5], lower[8]);
  const rotation = matmul(rzs, inverse(zs, 3), 3, 3, 3);
  const out = new Float64Array(16);
  out[15] = 1;
  for (let r = 0; r < 3; r++) {
    // rotation @ diag(s) with s = sign(diag(zs)) * |scale|; the Cholesky diagonal is positive.
    for (let c = 0; c < 3; c++) out[r * 4 + c] = rotation[r * 3 + c] * Math.abs(scale[c]);
  }
  return out;
}

/** The 8 corners of the index box, np.meshgrid(indexing="ij") order, as a 4x8 homogeneous matrix. */
function cornerMatrix(shape: Shape3): Float64Array {
  const m = new Float64Array(32);
  for (let n = 0; n < 8; n++) {
    m[n] = n & 4 ? shape[0] - 1 : 0;
    m[8 + n] = n & 2 ? shape[1] - 1 : 0;
    m[16 + n] = n & 1 ? shape[2] - 1 : 0;
    m[24 + n] = 1;
  }
  return m;
}

/** compute_shape_offset(scale_extent=False): output shape and world position of output voxel 0. */
function shapeAndOffset(shape: Shape3, inAffine: Float64Array, outAffine: Float64Array): { shape: Shape3; offset: Vec3 } {
  const corners = cornerMatrix(shape);
  const dist = matmul(solveLinear(outAffine, inAffine, 4, 4), corners, 4, 4, 8);
  const outShape: Shape3 = [0, 0, 0];
  for (let r = 0; r < 3; r++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let n = 0; n < 8; n++) {
      const v = dist[r * 8 + n] / dist[24 + n];
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    outShape[r] = roundHalfEven(hi - lo + 1);
  }
  const world = matmul(inAffine, corners, 4, 4, 8);
  // Keep the first corner that is minimal along every output axis (np.allclose(.., 0) with the
  // default atol 1e-8; its rtol is void against 0).
  for (let n = 0; n < 8; n++) {
    let minimal = true;
    for (let r = 0; r < 3 && minimal; r++) {
      let m = Infinity;
      for (let j = 0; j < 8; j++) m = Math.min(m, dist[r * 8 + j] - dist[r * 8 + n]);
      if (!(Math.abs(m) <= 1e-8)) minimal = false;
    }
    if (minimal) return { shape: outShape, offset: [world[n], world[8 + n], world[16 + n]] };
  }
  // No such corner (the output axes cut the box obliquely): centre the output on the input, with
  // MONAI's shape / 2 (not (shape - 1) / 2).
  const offset: Vec3 = [0, 0, 0];
  for (let r = 0; r < 3; r++) {
    let inC = 0;
    let outC = 0;
    for (let c = 0; c < 3; c++) {
      inC += inAffine[r * 4 + c] * (shape[c] / 2);
      outC += outAffine[r * 4 + c] * (outShape[c] / 2);
    }
    offset[r] = inC + inAffine[r * 4 + 3] - outC;
  }
  return { shape: outShape, offset };
}

/** spatial_resample's "nothing to do" test, with src the grid the data is on. */
function resampleIsNoop(src: Float64Array, dst: Float64Array, xform: Float64Array, srcShape: Shape3, dstShape: Shape3): boolean {
  if (!dstShape.every((n, i) => n === srcShape[i])) return false;
  const eye = Float64Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1);
  return allClose(src, dst, AFFINE_TOL) || allClose(xform, eye, AFFINE_TOL);
}

/** Per-axis tables when the index map separates into the three axes, else null. */
function separableTables(inShape: Shape3, outShape: Shape3, xform: Float64Array): [AxisTable, AxisTable, AxisTable] | null {
  // Off-diagonal terms that move no output voxel by more than 1e-9 of an index are rounding
  // residue of inv(A) @ A' for directions both grids share; drop them and separate the axes.
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) {
      if (r !== c && Math.abs(xform[r * 4 + c]) * Math.max(outShape[c] - 1, 1) > 1e-9) return null;
    }
  }
  const tables = [0, 1, 2].map((a) => axisTable(xform[a * 5], xform[a * 4 + 3], outShape[a], inShape[a]));
  return [tables[0], tables[1], tables[2]];
}

/** Trilinear border-clamped resampling of `channels` volumes for the index map p = xform * q. */
function resample(
  data: Float32Array,
  channels: number,
  inShape: Shape3,
  outShape: Shape3,
  xform: Float64Array,
  layout?: OutputLayout,
): Float32Array {
  const tables = separableTables(inShape, outShape, xform);
  if (!tables) return resampleAffine(data, channels, inShape, outShape, xform, layout);
  return resampleSeparable(data, channels, inShape, outShape, tables, layout);
}

/** resample on the libuv thread pool where the addon has the kernels, windowed if asked. */
function resampleAsync(
  data: Float32Array, channels: number, inShape: Shape3, outShape: Shape3, xform: Float64Array, window?: IntensityWindowParameters,
): Promise<Float32Array> {
  const tables = separableTables(inShape, outShape, xform);
  if (!tables) return resampleAffineAsync(data, channels, inShape, outShape, xform, undefined, window);
  return resampleSeparableAsync(data, channels, inShape, outShape, tables, undefined, window);
}

function assertSpacing(value: unknown): asserts value is Vec3 {
  if (!Array.isArray(value) || value.length !== 3) throw expectedType('an array of three numbers', 'targetSpacingMm', value);
  if (!value.every((v) => typeof v === 'number' && Number.isFinite(v) && v > 0)) {
    throw expectedRange('three positive finite numbers', 'targetSpacingMm', `[${value.join(', ')}]`);
  }
}

/** Where resampleToSpacing takes a RAS grid: MONAI's skip, or the output grid and index map. */
type SpacingPlan =
  | { skipped: true; affine: Float64Array }
  | { skipped: false; outShape: Shape3; outAffine: Float64Array; xform: Float64Array; inAffine: Float64Array };

function planSpacing(shape: Shape3, affine: Float64Array, targetSpacingMm: Vec3): SpacingPlan {
  assertSpacing(targetSpacingMm);
  const a1 = Float64Array.from(affine);
  const current = affineToSpacing(a1);
  const outSpacing = current.map((sp, k) => {
    const target = targetSpacingMm[k];
    return target - AFFINE_TOL <= sp && sp <= target + AFFINE_TOL ? sp : target;
  }) as Vec3;

  let a2: Float64Array;
  try {
    a2 = zoomAffine(a1, outSpacing);
  } catch {
    throw expectedRange('an affine whose 3x3 part has full rank', 'volume.affine', 'a singular matrix');
  }
  const { shape: outShape, offset } = shapeAndOffset(shape, a1, a2);
  for (let r = 0; r < 3; r++) a2[r * 4 + 3] = offset[r];

  const xform = solveLinear(a1, a2, 4, 4);
  // MONAI then returns the data as is and leaves the affine at A1, not the computed A2.
  if (resampleIsNoop(a1, a2, xform, shape, outShape)) return { skipped: true, affine: a1 };
  // MONAI stores A1 @ xform as the new affine, which the inverse then solves against.
  return { skipped: false, outShape, outAffine: multiply4(a1, xform), xform, inAffine: a1 };
}

/**
 * The grid resampleToSpacing would produce from a RAS grid (`shape`, `affine`), computed from the
 * geometry alone, so that a caller can refuse an oversized grid before allocating it.
 */
export function spacingOutputShape(shape: Shape3, affine: Float64Array, targetSpacingMm: Vec3): Shape3 {
  const plan = planSpacing(shape, affine, targetSpacingMm);
  return plan.skipped ? [...shape] : plan.outShape;
}

function resampledVolume(
  data: Float32Array,
  shape: Shape3,
  plan: Extract<SpacingPlan, { skipped: false }>,
): { volume: Volume; resampling: SpacingTransform } {
  const { outShape, outAffine, inAffine } = plan;
  return {
    volume: { data, shape: outShape, spacingMm: columnNorms(outAffine), affine: outAffine },
    resampling: { skipped: false, inputShape: [...shape], inputAffine: inAffine, outputShape: outShape, outputAffine: outAffine },
  };
}

/**
 * Resamples a RAS volume to `targetSpacingMm` (trilinear, border clamp, float64 maths, float32
 * result), keeping its rotation (oblique stays oblique; shear is dropped, as MONAI's zoom_affine
 * does) and voxel 0's world position. When MONAI would skip (spacing already within 1e-3) the
 * returned volume shares `data` with the input.
 */
export function resampleToSpacing(
  volume: Volume,
  targetSpacingMm: Vec3 = DEFAULT_SPACING_MM,
): { volume: Volume; resampling: SpacingTransform } {
  assertVolume(volume);
  const shape: Shape3 = [...volume.shape];
  const plan = planSpacing(shape, volume.affine, targetSpacingMm);
  if (plan.skipped) return skippedResampling(volume, shape, plan.affine);
  return resampledVolume(resample(volume.data, 1, shape, plan.outShape, plan.xform), shape, plan);
}

/**
 * As resampleToSpacing, the resampling (separable or oblique) on the libuv thread pool where the
 * addon has the kernels: the same values; volume.data must not change before the promise settles.
 * With `window`, the resampled values come out intensity-windowed (applyIntensityWindow's bits,
 * applied as each value is stored) and `windowed` is true; where MONAI skips the resampling the
 * data is the caller's, not windowed (`windowed` false).
 */
export async function resampleToSpacingAsync(
  volume: Volume,
  targetSpacingMm: Vec3 = DEFAULT_SPACING_MM,
  window?: IntensityWindowParameters,
): Promise<{ volume: Volume; resampling: SpacingTransform; windowed: boolean }> {
  assertVolume(volume);
  const shape: Shape3 = [...volume.shape];
  const plan = planSpacing(shape, volume.affine, targetSpacingMm);
  if (plan.skipped) return { ...skippedResampling(volume, shape, plan.affine), windowed: false };
  const data = await resampleAsync(volume.data, 1, shape, plan.outShape, plan.xform, window);
  return { ...resampledVolume(data, shape, plan), windowed: window !== undefined };
}

/** MONAI's skip: the data passed through, the affine left at A1. */
function skippedResampling(volume: Volume, shape: Shape3, a1: Float64Array): { volume: Volume; resampling: SpacingTransform } {
  const resampling: SpacingTransform = { skipped: true, inputShape: shape, inputAffine: a1, outputShape: [...shape], outputAffine: Float64Array.from(a1) };
  return { volume: { data: volume.data, shape: [...shape], spacingMm: columnNorms(a1), affine: Float64Array.from(a1) }, resampling };
}

/**
 * `resampleToSpacing(orientToRas(volume).volume)` without materialising the RAS volume, for the
 * common case where RAS differs from the stored order only by reversed axes (LPS and the like):
 * each flip is folded into its axis's index table, so the stored data is read in place. The same
 * taps and weights, so the same values. Null when that does not apply (a permutation, MONAI's
 * skip, or an index map that does not separate into the axes): reorient the data first then.
 */
export function resampleFlippedToSpacing(
  volume: Volume,
  orientation: OrientationTransform,
  rasAffine: Float64Array,
  targetSpacingMm: Vec3 = DEFAULT_SPACING_MM,
): { volume: Volume; resampling: SpacingTransform } | null {
  const flipped = planFlipped(volume, orientation, rasAffine, targetSpacingMm);
  if (!flipped) return null;
  const { shape, plan, stored } = flipped;
  return resampledVolume(resampleSeparable(volume.data, 1, shape, plan.outShape, stored), shape, plan);
}

/**
 * As resampleFlippedToSpacing, the resampling on the libuv thread pool where the addon has it;
 * with `window`, intensity-windowed as resampleToSpacingAsync does it (`windowed` true).
 */
export async function resampleFlippedToSpacingAsync(
  volume: Volume,
  orientation: OrientationTransform,
  rasAffine: Float64Array,
  targetSpacingMm: Vec3 = DEFAULT_SPACING_MM,
  window?: IntensityWindowParameters,
): Promise<{ volume: Volume; resampling: SpacingTransform; windowed: boolean } | null> {
  const flipped = planFlipped(volume, orientation, rasAffine, targetSpacingMm);
  if (!flipped) return null;
  const { shape, plan, stored } = flipped;
  const data = await resampleSeparableAsync(volume.data, 1, shape, plan.outShape, stored, undefined, window);
  return { ...resampledVolume(data, shape, plan), windowed: window !== undefined };
}

/** resampleFlippedToSpacing's plan: the RAS shape, the spacing plan and the stored-order tables. */
function planFlipped(
  volume: Volume,
  orientation: OrientationTransform,
  rasAffine: Float64Array,
  targetSpacingMm: Vec3,
): { shape: Shape3; plan: Extract<SpacingPlan, { skipped: false }>; stored: [AxisTable, AxisTable, AxisTable] } | null {
  assertVolume(volume);
  const [a, b, c] = orientation.rasAxis;
  if (a !== 0 || b !== 1 || c !== 2) return null;
  const shape: Shape3 = [...orientation.rasShape];
  const plan = planSpacing(shape, rasAffine, targetSpacingMm);
  if (plan.skipped) return null;
  const tables = separableTables(shape, plan.outShape, plan.xform);
  if (!tables) return null;
  const stored = tables.map((t, axis) => (orientation.flipped[axis] ? flippedTable(t, shape[axis]) : t)) as [AxisTable, AxisTable, AxisTable];
  return { shape, plan, stored };
}

/** An axis table reading index n - 1 - p wherever `t` reads p (the axis is stored reversed). */
function flippedTable(t: AxisTable, n: number): AxisTable {
  return {
    lo: t.lo.map((p) => n - 1 - p),
    hi: t.hi.map((p) => n - 1 - p),
    wLo: t.wLo,
    wHi: t.wHi,
    identity: false,
  };
}

/**
 * Resamples multi-channel data on the spacing grid (`[c][i][j][k]`, e.g. softmax probabilities)
 * back onto the grid before `resampleToSpacing`, trilinear with border clamp, as Invertd does.
 * Returns `data` itself when the forward resampling was skipped.
 */
export function invertSpacing(data: Float32Array, channels: number, resampling: SpacingTransform): Float32Array {
  return invertSpacingInto(data, channels, resampling) ?? data;
}

/**
 * `invertSpacing` writing each voxel through `layout` (default C order on the pre-resampling
 * grid); null when MONAI would leave the data as it is. For `invertPreprocessing`.
 */
export function invertSpacingInto(
  data: Float32Array,
  channels: number,
  resampling: SpacingTransform,
  layout?: OutputLayout,
): Float32Array | null {
  if (typeof resampling !== 'object' || resampling === null) {
    throw expectedType('a SpacingTransform', 'resampling', resampling);
  }
  const { inputShape, inputAffine, outputShape, outputAffine } = resampling;
  assertChannelData(data, channels, outputShape, 'data');
  if (resampling.skipped) return null;
  // Invertd re-runs SpatialResample from the current grid (A2, as stored) to A1.
  const xform = solveLinear(outputAffine, inputAffine, 4, 4);
  if (resampleIsNoop(outputAffine, inputAffine, xform, outputShape, inputShape)) return null;
  return resample(data, channels, outputShape, inputShape, xform, layout);
}

/**
 * Which indices of the spacing grid, per axis, the inverse resampling (invertSpacing) reads: a
 * voxel (i, j, k) is read iff used[0][i], used[1][j] and used[2][k] are all 1. Voxels it never
 * reads cannot influence the result, so per-voxel work before the inverse (the softmax) may skip
 * them; when downsampling 2 mm back to 5 mm slices about 40 % of them. An index read only with
 * weight 0 counts as unread (the kernels then multiply a finite value by 0). Null when every voxel
 * may be read: the inverse is skipped, or the index map is not separable.
 */
export function inverseSpacingFootprint(resampling: SpacingTransform): [Uint8Array, Uint8Array, Uint8Array] | null {
  const tables = inverseSpacingTables(resampling);
  if (!tables) return null;
  return [0, 1, 2].map((a) => {
    const used = new Uint8Array(resampling.outputShape[a]);
    const t = tables[a];
    for (let q = 0; q < t.lo.length; q++) {
      if (t.wLo[q] !== 0) used[t.lo[q]] = 1;
      if (t.wHi[q] !== 0) used[t.hi[q]] = 1;
    }
    return used;
  }) as [Uint8Array, Uint8Array, Uint8Array];
}

/**
 * The per-axis index/weight tables the inverse resampling (invertSpacing) runs on: output index q
 * of axis a (on the grid before resampling) blends spacing-grid indices lo[q] and hi[q]. Null when
 * there is nothing to invert (skipped or no-op) or the index map does not separate into the axes.
 */
export function inverseSpacingTables(resampling: SpacingTransform): [AxisTable, AxisTable, AxisTable] | null {
  return inverseSpacingMap(resampling)?.tables ?? null;
}

/**
 * The index map of the inverse resampling (invertSpacing): output voxel q on the grid before
 * resampling reads spacing-grid continuous index p = xform * q (row-major 4x4), clamped per axis;
 * with its per-axis tables when it separates (else null). Null when there is nothing to invert
 * (skipped or no-op).
 */
export function inverseSpacingMap(
  resampling: SpacingTransform,
): { xform: Float64Array; tables: [AxisTable, AxisTable, AxisTable] | null } | null {
  if (typeof resampling !== 'object' || resampling === null) throw expectedType('a SpacingTransform', 'resampling', resampling);
  const { inputShape, inputAffine, outputShape, outputAffine } = resampling;
  if (resampling.skipped) return null;
  const xform = solveLinear(outputAffine, inputAffine, 4, 4);
  if (resampleIsNoop(outputAffine, inputAffine, xform, outputShape, inputShape)) return null;
  return { xform, tables: separableTables(outputShape, inputShape, xform) };
}
