/**
 * The addon's CPU kernels: C++ versions of the pipeline's hottest typed-array loops (the sliding
 * window's gathering, stitching and normalisation, the NIfTI transposes, the orientation gather,
 * the trilinear resampling, the intensity window, the decided-region scan, the mask summary),
 * bit-identical to their TS twins and several times faster than V8 runs those on this project's
 * 2-core machines. The TS modules call `volumeKernels()` and keep their own loops as the
 * fallback, so the package behaves the same with or without the addon; only the speed differs.
 *
 * `SPLEEN_TRT_JS_KERNELS=1` (or setVolumeKernelsEnabled(false), for tests) forces the TS loops.
 */
import type { AxisTable } from '../volume/trilinear.js';
import { addonBuildCommand, loadAddon } from './addon.js';

/** A typed array of voxels as a NIfTI file stores them (64-bit integers arrive as Float64Array). */
export type FileVoxelArray =
  | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;
/** What the writer produces. */
export type WritableVoxelArray = Uint8Array | Int16Array | Int32Array | Float32Array | Float64Array;
type Triple = readonly [number, number, number];

/**
 * The intensity window as the kernels apply it (intensity.ts intensityWindowKernel makes it):
 * float32 a = aMin, b = bMin, lo/hi the clamp, reciprocal = 1 / fl32(aMax - aMin), scale =
 * fl32(bMax - bMin); shiftOnly for a zero input range.
 */
export interface IntensityWindowKernel {
  a: number;
  b: number;
  reciprocal: number;
  scale: number;
  lo: number;
  hi: number;
  clip: boolean;
  shiftOnly: boolean;
}

/** Capabilities beyond the kernels' names (an older addon would ignore an argument it lacks). */
const REQUIRED_FEATURES = ['resampleWindow'];

/** The kernels as the addon exports them; the argument checks live in native/volume_kernels_js.cc. */
export interface VolumeKernels {
  /** Copies a roi window of `image` into `window` at windowOffset; padValue outside [lo, hi). */
  gatherWindow(
    image: Float32Array, dims: Triple, window: Float32Array, windowOffset: number,
    roi: Triple, lo: Triple, hi: Triple, shift: Triple, padValue: number,
  ): void;
  /** acc[c][lo + shift .. hi + shift) += logits[logitOffset + c * roi volume][lo .. hi), weighted when importance is given. */
  accumulateWindow(
    acc: Float32Array, dims: Triple, channels: number, logits: Float32Array, logitOffset: number,
    roi: Triple, lo: Triple, hi: Triple, shift: Triple, importance: Float32Array | null, weightSum: Float32Array | null,
  ): void;
  /**
   * gatherWindow for a batch on the libuv pool: window q (placements[12q .. 12q + 12): roi, lo,
   * hi, shift; all of the same roi) into batch[q * roi volume ..]. image and batch must not be
   * touched before it settles.
   */
  gatherWindowsAsync(image: Float32Array, dims: Triple, batch: Float32Array, placements: Int32Array, padValue: number): Promise<void>;
  /**
   * accumulateWindow for the windows of a batch, in window order (window q's channels at
   * logits[q * channels * roi volume]), on the libuv pool, in one pass over the rows of the
   * windows' union (each voxel gets the same float32 additions in the same order: the same bits),
   * split over up to `threads` threads by rows (default 1; 0 = window after window, the previous
   * versions' passes, for A/B benches; ignored with `covered`).
   * With `covered` (an Int32Array of dims[0] * dims[1], zeroes before the first batch) the
   * accumulators need no zeroing: a row's [0, covered[row]) holds sums, the rest is unwritten; a
   * window's first values there are stored (x + 0.0f: the bits of 0 + x), a gap zeroed, and
   * covered moved on. zeroUncovered after the last batch zeroes what no window wrote. None of the
   * arrays may be touched before it settles.
   */
  accumulateWindowsAsync(
    acc: Float32Array, dims: Triple, channels: number, logits: Float32Array, placements: Int32Array,
    importance: Float32Array | null, weightSum: Float32Array | null, covered?: Int32Array | null, threads?: number,
  ): Promise<void>;
  /** Zeroes row r's [covered[r], dims[2]) in every channel of acc (and in weightSum when given). */
  zeroUncovered(acc: Float32Array, dims: Triple, channels: number, covered: Int32Array, weightSum: Float32Array | null): void;
  /**
   * Faults the view's pages in for writing on the libuv pool without touching its data (Linux
   * >= 5.14: resolves 1; elsewhere 0), 2 MiB at a time over `parts` equal parts in step; huge
   * pages advised first when `hugePages`. Safe beside a writer of the same memory.
   */
  populatePagesAsync(view: ArrayBufferView, parts: number, hugePages: boolean): Promise<number>;
  /** acc[c][i][j][k] = fl32(acc / (c0[i] * c1[j] * c2[k])), the product and quotient in double. */
  divideByCoverage(acc: Float32Array, dims: Triple, channels: number, c0: Float64Array, c1: Float64Array, c2: Float64Array): void;
  /** divideByCoverage on the libuv pool; acc and the coverages must not be touched before it settles. */
  divideByCoverageAsync(acc: Float32Array, dims: Triple, channels: number, c0: Float64Array, c1: Float64Array, c2: Float64Array): Promise<void>;
  /** acc[c][v] /= weightSum[v] in float32. */
  divideByWeights(acc: Float32Array, channels: number, weightSum: Float32Array): void;
  /** divideByWeights on the libuv pool; acc and weightSum must not be touched before it settles. */
  divideByWeightsAsync(acc: Float32Array, channels: number, weightSum: Float32Array): Promise<void>;
  /** File order -> float32 C order, v * slope (if slope != 1) + inter (if inter != 0) in double. */
  fileToCOrder(src: FileVoxelArray, out: Float32Array, dims: Triple, channels: number, slope: number, inter: number): void;
  /** fileToCOrder on the libuv thread pool; neither array may be touched before it settles. */
  fileToCOrderAsync(src: FileVoxelArray, out: Float32Array, dims: Triple, channels: number, slope: number, inter: number): Promise<void>;
  /**
   * Slices [kBegin, kEnd) of channel `channel` of float32 (or uint8) C-order data into file order
   * at the start of dst; integer targets rounded half to even, clamped to [lo, hi], NaN -> 0.
   */
  cToFileOrder(
    src: Float32Array | Uint8Array, dst: WritableVoxelArray, dims: Triple, channel: number, kBegin: number, kEnd: number,
    integer: boolean, lo: number, hi: number,
  ): void;
  /**
   * trilinear.ts resampleSeparable into `out` (channel c at c * out volume + base + q . strides);
   * with `window`, each stored float32 put through the intensity window as it is written.
   */
  resampleSeparable(
    src: Float32Array, channels: number, inShape: Triple, tables: readonly [AxisTable, AxisTable, AxisTable],
    out: Float32Array, base: number, strides: Triple, window?: IntensityWindowKernel | null,
  ): void;
  /** resampleSeparable on the libuv thread pool; src, the tables and out must not be touched before it settles. */
  resampleSeparableAsync(
    src: Float32Array, channels: number, inShape: Triple, tables: readonly [AxisTable, AxisTable, AxisTable],
    out: Float32Array, base: number, strides: Triple, window?: IntensityWindowKernel | null,
  ): Promise<void>;
  /** orientation.ts gather: dst[c][o0][o1][o2] = src[c * count + base + o . strides]. */
  gatherStrided(src: Float32Array, channels: number, outShape: Triple, strides: Triple, base: number, dst: Float32Array): void;
  /** gatherStrided on the libuv pool; src and dst must not be touched before it settles. */
  gatherStridedAsync(src: Float32Array, channels: number, outShape: Triple, strides: Triple, base: number, dst: Float32Array): Promise<void>;
  /** trilinear.ts resampleAffine into `out` (xform: row-major 4x4, finite); `window` as for resampleSeparable. */
  resampleAffine(
    src: Float32Array, channels: number, inShape: Triple, outShape: Triple, xform: Float64Array,
    out: Float32Array, base: number, strides: Triple, window?: IntensityWindowKernel | null,
  ): void;
  /** resampleAffine on the libuv pool; src and out must not be touched before it settles. */
  resampleAffineAsync(
    src: Float32Array, channels: number, inShape: Triple, outShape: Triple, xform: Float64Array,
    out: Float32Array, base: number, strides: Triple, window?: IntensityWindowKernel | null,
  ): Promise<void>;
  /** mask-summary.ts's scan into stats: [count, min i, j, k, max i, j, k, sum i, j, k]. */
  summarizeLabels(mask: Uint8Array, dims: Triple, stats: Float64Array): void;
  /** summarizeLabels on the libuv pool; mask and stats must not be touched before it settles. */
  summarizeLabelsAsync(mask: Uint8Array, dims: Triple, stats: Float64Array): Promise<void>;
  /**
   * decided-region.ts decideVoxels + combineCorners into `state` and `rowIsBackground`: returns the
   * number of undecided cubes, or -1 when a logit is NaN or infinite.
   */
  decideCorners(logits: Float32Array, dims: Triple, margin: number, state: Uint8Array, rowIsBackground: Uint8Array): number;
  /** decideCorners on the libuv pool; none of the arrays may be touched before it settles. */
  decideCornersAsync(logits: Float32Array, dims: Triple, margin: number, state: Uint8Array, rowIsBackground: Uint8Array): Promise<number>;
  /**
   * decided-region.ts labelThroughAffine's scan: sets labels[o] = 1 under foreground cubes and
   * lists undecided output voxels (linear RAS-grid index) in `undecided`; returns their count.
   */
  affineCubeLabels(
    cube: Uint8Array, gridDims: Triple, xform: Float64Array, outShape: Triple, labels: Uint8Array,
    base: number, strides: Triple, undecided: Int32Array,
  ): number;
  /** affineCubeLabels on the libuv pool; cube, labels and undecided must not be touched before it settles. */
  affineCubeLabelsAsync(
    cube: Uint8Array, gridDims: Triple, xform: Float64Array, outShape: Triple, labels: Uint8Array,
    base: number, strides: Triple, undecided: Int32Array,
  ): Promise<number>;
  /**
   * decided-region.ts labelThroughTables' scan: output voxel q reads the cube at the tables' lo
   * indices, sets labels[o] = 1 under foreground cubes (rows with rowIsBackground skipped) and
   * lists undecided output voxels (linear index over the tables' lengths) in `undecided`; returns their count.
   */
  tableCubeLabels(
    cube: Uint8Array, gridDims: Triple, rowIsBackground: Uint8Array, tables: readonly [AxisTable, AxisTable, AxisTable],
    labels: Uint8Array, base: number, strides: Triple, undecided: Int32Array,
  ): number;
  /** tableCubeLabels on the libuv pool; none of its arrays (the tables' included) may be touched before it settles. */
  tableCubeLabelsAsync(
    cube: Uint8Array, gridDims: Triple, rowIsBackground: Uint8Array, tables: readonly [AxisTable, AxisTable, AxisTable],
    labels: Uint8Array, base: number, strides: Triple, undecided: Int32Array,
  ): Promise<number>;
  /**
   * decided-region.ts labelListedVoxels for a separable inverse: the softmax of each listed
   * undecided output voxel's 8 spacing-grid taps (with jsExp, V8's exp) blended with the tables'
   * weights; labels[base + q . strides] = 1 where the foreground wins.
   */
  blendTableVoxels(
    logits: Float32Array, gridDims: Triple, tables: readonly [AxisTable, AxisTable, AxisTable], undecided: Int32Array, count: number,
    labels: Uint8Array, base: number, strides: Triple,
  ): void;
  /** blendTableVoxels on the libuv pool; none of its arrays (the tables' included) may be touched before it settles. */
  blendTableVoxelsAsync(
    logits: Float32Array, gridDims: Triple, tables: readonly [AxisTable, AxisTable, AxisTable], undecided: Int32Array, count: number,
    labels: Uint8Array, base: number, strides: Triple,
  ): Promise<void>;
  /** The kernels' exp: fdlibm's, as V8's Math.exp computes it (the same bits). */
  jsExp(x: number): number;
  /**
   * The kernels that split their work over threads (by output ranges: the values never change)
   * use at most `threads` of them (clamped to 1-4, never more than the cores; 4 by default), and
   * only where the work is large enough, unless `split`: then every such kernel splits into
   * `threads` ranges whatever its size or the cores. Process-wide; for tests and A/B benches.
   */
  setKernelThreads(threads: number, split: boolean): void;
  /** dst[0, src.length) = src (bit for bit) on the libuv pool; neither may be touched before it settles. */
  copyFloatsAsync(src: Float32Array, dst: Float32Array): Promise<void>;
  /** intensity.ts's arithmetic; see applyIntensityWindow there. */
  applyIntensityWindow(
    data: Float32Array, out: Float32Array, a: number, b: number, reciprocal: number, scale: number,
    lo: number, hi: number, clip: boolean, shiftOnly: boolean,
  ): void;
  /** applyIntensityWindow on the libuv thread pool; data and out must not be touched before it settles. */
  applyIntensityWindowAsync(
    data: Float32Array, out: Float32Array, a: number, b: number, reciprocal: number, scale: number,
    lo: number, hi: number, clip: boolean, shiftOnly: boolean,
  ): Promise<void>;
}

const KERNEL_NAMES: readonly (keyof VolumeKernels)[] = [
  'gatherWindow', 'accumulateWindow', 'divideByCoverage', 'divideByWeights', 'fileToCOrder', 'fileToCOrderAsync', 'cToFileOrder',
  'resampleSeparable', 'resampleSeparableAsync', 'resampleAffine', 'gatherStrided', 'summarizeLabels', 'decideCorners', 'affineCubeLabels',
  'tableCubeLabels', 'applyIntensityWindow', 'applyIntensityWindowAsync', 'gatherWindowsAsync', 'accumulateWindowsAsync',
  'divideByCoverageAsync', 'divideByWeightsAsync', 'gatherStridedAsync', 'resampleAffineAsync', 'summarizeLabelsAsync',
  'decideCornersAsync', 'affineCubeLabelsAsync', 'tableCubeLabelsAsync', 'blendTableVoxels', 'blendTableVoxelsAsync', 'jsExp', 'setKernelThreads',
  'copyFloatsAsync', 'zeroUncovered', 'populatePagesAsync',
];

let enabled = process.env.SPLEEN_TRT_JS_KERNELS !== '1';
let loaded: VolumeKernels | null | undefined;

function isVolumeKernels(value: unknown): value is VolumeKernels {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const features = record.features;
  if (!Array.isArray(features) || !REQUIRED_FEATURES.every((f) => features.includes(f))) return false;
  return KERNEL_NAMES.every((name) => typeof record[name] === 'function');
}

/**
 * The native kernels, or null where the addon is missing, predates them, or they are switched off.
 * Loads the addon on first use (once per process).
 */
export function volumeKernels(): VolumeKernels | null {
  if (!enabled) return null;
  if (loaded === undefined) {
    const exported = (loadAddon() as { volumeKernels?: unknown } | null)?.volumeKernels;
    loaded = isVolumeKernels(exported) ? exported : null;
  }
  return loaded;
}

/** Which loops the CPU stages run, and why, for `spleen-trt info` and the bench's stamp. */
export function volumeKernelsStatus(): { native: boolean; reason: string } {
  if (volumeKernels() !== null) return { native: true, reason: "the native addon's C++ kernels" };
  if (!enabled) {
    const why = process.env.SPLEEN_TRT_JS_KERNELS === '1' ? 'SPLEEN_TRT_JS_KERNELS=1' : 'switched off';
    return { native: false, reason: `TypeScript loops (${why})` };
  }
  const addonLoaded = loadAddon() !== null;
  return { native: false, reason: `TypeScript loops (${addonLoaded ? 'the loaded addon predates the kernels: rebuild it with ' + addonBuildCommand() : 'the native addon is not loaded'})` };
}

/** Turns the native kernels off (the TS loops run) or back on; for tests that compare the two. */
export function setVolumeKernelsEnabled(on: boolean): void {
  enabled = on;
}
