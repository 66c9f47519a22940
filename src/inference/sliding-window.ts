/**
 * MONAI 1.4 `sliding_window_inference` (spec 5) as the bundle's SlidingWindowInferer calls it: no
 * buffering, no `process_fn`, no coordinates passed to the network, a single-channel input, output
 * spatial size equal to the ROI. Reproduces MONAI's float32 arithmetic and its order of operations,
 * so results match it to the last bit for a given set of network outputs:
 *
 *   acc   = sum over windows in C order of fl32(importance * logits)     (float32 adds)
 *   count = sum over windows in C order of importance                     (float32 adds)
 *   out   = fl32(acc / count), cropped back from the padded grid.
 *
 * Differences in how (never in what) it computes: padding is applied while gathering a window
 * instead of padding the whole volume, and accumulators live on the unpadded grid only (padded
 * voxels are cropped away by MONAI and never influence kept voxels). In constant mode the count map
 * is the product of per-axis coverage counts (sums of ones are exact in float32, so this equals
 * MONAI's summed map) and never materialised. Batches are pipelined: two are queued in the
 * backend at a time, so it never waits for this thread, whose gathering and stitching overlap the
 * backend's computation (on a worker thread or the GPU); the order of the additions is unchanged.
 * With the addon, each batch's gather and stitch and the final normalisation are single jobs on
 * the libuv pool (the event loop stays free; a gather runs beside the previous batch's stitch),
 * the windows still added in their order; without it the TS loops run here, yielding between windows.
 * The addon's stitch makes one pass over the rows of a batch's windows' union (a batch's windows
 * overlap: about half the accumulator traffic of window after window), adding each voxel's
 * values in window order, and stores each voxel's first value into accumulators that were never
 * zeroed (a per-row state says how far each row holds sums), while a pool job faults their pages
 * in beside the first gathers: the same float32 operations per voxel, so the same bits.
 */
import { SpleenTrtError, expectedRange, expectedType, throwIfAborted } from '../errors.js';
import { volumeKernels, type VolumeKernels } from '../native/volume-kernels.js';
import type { Shape3 } from '../volume/volume.js';
import type { InferenceBackend } from './backend.js';
import { uninitializedFloats } from '../volume/uninitialized.js';
import { computeImportanceMap, type BlendMode } from './importance-map.js';
import { yieldBudget, yieldToEventLoop } from './yield-to-event-loop.js';

export interface SlidingWindowProgress {
  windowsDone: number;
  windowsTotal: number;
  /** 0-based index of the batch that just finished. */
  batchIndex: number;
  batchCount: number;
}

export interface SlidingWindowOptions {
  /** Window size; default 96^3 (the bundle's ROI). */
  roiSize?: Shape3;
  /** Windows per network call; default 4. */
  swBatchSize?: number;
  /** Fraction of the ROI shared by neighbouring windows, in [0, 1); default 0.5. */
  overlap?: number;
  /** Blending of overlapping windows; default 'constant'. */
  mode?: BlendMode;
  /** Gaussian sigma as a fraction of the ROI size (gaussian mode only); default 0.125. */
  sigmaScale?: number;
  /** Value of voxels added where a dimension is smaller than the ROI; default 0. */
  padValue?: number;
  /** Checked between batches; an aborted signal rejects with ERR_ABORTED. */
  signal?: AbortSignal;
  /** Called after each batch. */
  onProgress?: (p: SlidingWindowProgress) => void;
  /**
   * Pad a partial last batch to swBatchSize with zeros and drop the extra outputs: keeps the
   * TensorRT batch shape stable; results are identical (windows are independent in eval mode).
   */
  padLastBatch?: boolean;
}

export interface SlidingWindowResult {
  /** `[C][n0][n1][n2]` float32 blended logits on the unpadded input grid. */
  logits: Float32Array;
  channels: number;
  windowCount: number;
  batchCount: number;
  /**
   * Sums over batches of the backend's own timings; `stitchMs` is the time spent gathering
   * windows, accumulating them and normalising (on the libuv pool with the addon: the time any of
   * those jobs was running); `totalMs` is the wall time of the whole call.
   */
  timings: { computeMs: number; h2dMs: number; d2hMs: number; stitchMs: number; totalMs: number };
}

const DEFAULT_ROI: Shape3 = [96, 96, 96];

/**
 * How the addon stitches, for A/B benches (bench/gpu-pace.mjs) and tests; every setting gives the
 * same bits. `fused`: one pass per batch over its windows' union (else window after window, the
 * previous versions' passes); `firstStore`: accumulators left uninitialised, each voxel's first
 * value stored (fused only); `threads`: rows of a batch split over up to that many threads;
 * `prefault`: the accumulators' pages faulted in on the pool beside the first gathers;
 * `hugePages`: with it, huge pages advised for them (off: once a 200 ms population that the
 * gathers waited for, and twice the event loop's lag; see the README's fifth round).
 */
export interface StitchTuning {
  fused: boolean;
  firstStore: boolean;
  threads: number;
  prefault: boolean;
  hugePages: boolean;
}
const stitchTuning: StitchTuning = { fused: true, firstStore: true, threads: 2, prefault: true, hugePages: false };

/** Changes the stitch tuning process-wide (benches and tests); returns the previous one. */
export function setStitchTuning(tuning: Partial<StitchTuning>): StitchTuning {
  const previous = { ...stitchTuning };
  Object.assign(stitchTuning, tuning);
  return previous;
}

function checkOverlap(overlap: unknown): number {
  if (typeof overlap !== 'number' || !(overlap >= 0 && overlap < 1)) {
    throw expectedRange('a number in [0, 1)', 'overlap', overlap);
  }
  return overlap;
}

function checkShape(value: unknown, name: string): Shape3 {
  if (!Array.isArray(value) || value.length !== 3) throw expectedType('an array of 3 integers', name, value);
  for (const v of value) {
    if (!Number.isInteger(v) || v < 1) throw expectedRange('3 positive integers', name, value);
  }
  return [value[0], value[1], value[2]];
}

/**
 * MONAI's window starts along one axis (`_get_scan_interval` + `dense_patch_slices`), on the size
 * after padding to the ROI: interval = roi when the padded size equals roi, else
 * max(1, int(roi * (1 - overlap))); starts k * interval until a window reaches the end, the last
 * one shifted back to end at the border. 139 -> [0, 43]; 160 -> [0, 48, 64]; <= 96 -> [0].
 */
export function windowStarts(size: number, roi: number, overlap: number): number[] {
  if (!Number.isInteger(size) || size < 1) throw expectedRange('a positive integer', 'size', size);
  if (!Number.isInteger(roi) || roi < 1) throw expectedRange('a positive integer', 'roi', roi);
  checkOverlap(overlap);
  const padded = Math.max(size, roi);
  // Same double arithmetic as Python's int(roi * (1 - o)) (e.g. 10 * (1 - 0.7) = 3.0000000000000004).
  const interval = padded === roi ? roi : Math.max(1, Math.trunc(roi * (1 - overlap)));
  const num = Math.ceil(padded / interval);
  let scanNum = 1;
  for (let d = 0; d < num; d++) {
    if (d * interval + roi >= padded) {
      scanNum = d + 1;
      break;
    }
  }
  const starts: number[] = [];
  for (let idx = 0; idx < scanNum; idx++) {
    const start = idx * interval;
    starts.push(start - Math.max(start + roi - padded, 0));
  }
  return starts;
}

/** One axis of the geometry: where the unpadded data sits in the padded grid, and the windows. */
interface Axis {
  n: number;
  roi: number;
  /** Padding before the data: floor((max(n, roi) - n) / 2), as MONAI's F.pad call. */
  before: number;
  starts: number[];
}

/** Local index range [lo, hi) of a window (start in padded coordinates) that holds real data. */
function validRange(axis: Axis, start: number): [number, number] {
  const lo = Math.max(0, axis.before - start);
  const hi = Math.min(axis.roi, axis.before + axis.n - start);
  return [lo, hi];
}

/** Copies one window into `dst` at `offset`, writing the pad value where it leaves the data. */
function gatherWindow(
  image: Float32Array,
  axes: readonly [Axis, Axis, Axis],
  origin: Shape3,
  padValue: number,
  dst: Float32Array,
  offset: number,
): void {
  const [x0, x1, x2] = axes;
  const [s0, s1, s2] = origin;
  const rowLen = x2.roi;
  const sliceLen = x1.roi * rowLen;
  const [kLo, kHi] = validRange(x2, s2);
  // Source k of local k = 0; rows are copied as whole contiguous runs.
  const kShift = s2 - x2.before;
  for (let a = 0; a < x0.roi; a++) {
    const i = s0 + a - x0.before;
    const slice = offset + a * sliceLen;
    if (i < 0 || i >= x0.n) {
      dst.fill(padValue, slice, slice + sliceLen);
      continue;
    }
    for (let b = 0; b < x1.roi; b++) {
      const j = s1 + b - x1.before;
      const d = slice + b * rowLen;
      if (j < 0 || j >= x1.n || kLo >= kHi) {
        dst.fill(padValue, d, d + rowLen);
        continue;
      }
      const src = (i * x1.n + j) * x2.n + kShift;
      if (kLo > 0) dst.fill(padValue, d, d + kLo);
      dst.set(image.subarray(src + kLo, src + kHi), d + kLo);
      if (kHi < rowLen) dst.fill(padValue, d + kHi, d + rowLen);
    }
  }
}

/** A window's valid part for the native kernels: local [lo, hi) lands at local + shift. */
function nativePlacement(axes: readonly [Axis, Axis, Axis], origin: Shape3) {
  const ranges = [validRange(axes[0], origin[0]), validRange(axes[1], origin[1]), validRange(axes[2], origin[2])];
  return {
    dims: [axes[0].n, axes[1].n, axes[2].n] as const,
    roi: [axes[0].roi, axes[1].roi, axes[2].roi] as const,
    lo: [ranges[0][0], ranges[1][0], ranges[2][0]] as const,
    hi: [ranges[0][1], ranges[1][1], ranges[2][1]] as const,
    shift: [origin[0] - axes[0].before, origin[1] - axes[1].before, origin[2] - axes[2].before] as const,
  };
}

/**
 * Adds window `slot` of `logits` (weighted by `importance`, null for constant mode) into `acc`,
 * and its weights into `weightSum` when given. Only voxels on the unpadded grid are touched.
 */
function stitchWindow(
  logits: Float32Array,
  slot: number,
  channels: number,
  axes: readonly [Axis, Axis, Axis],
  origin: Shape3,
  importance: Float32Array | null,
  acc: Float32Array,
  weightSum: Float32Array | null,
): void {
  const [x0, x1, x2] = axes;
  const [s0, s1, s2] = origin;
  const roiVolume = x0.roi * x1.roi * x2.roi;
  const voxels = x0.n * x1.n * x2.n;
  const [aLo, aHi] = validRange(x0, s0);
  const [bLo, bHi] = validRange(x1, s1);
  const [kLo, kHi] = validRange(x2, s2);
  const kShift = s2 - x2.before;
  for (let c = 0; c < channels; c++) {
    const logitBase = (slot * channels + c) * roiVolume;
    const outBase = c * voxels + kShift;
    for (let a = aLo; a < aHi; a++) {
      const i = s0 + a - x0.before;
      for (let b = bLo; b < bHi; b++) {
        const j = s1 + b - x1.before;
        const local = (a * x1.roi + b) * x2.roi;
        const l = logitBase + local;
        const o = outBase + (i * x1.n + j) * x2.n;
        if (importance === null) {
          // MONAI multiplies by a map of ones first: exact, so skipped.
          for (let k = kLo; k < kHi; k++) acc[o + k] += logits[l + k];
        } else {
          // fl32(w * logit) first (MONAI's `buffer *= w_t`), then the float32 add.
          for (let k = kLo; k < kHi; k++) acc[o + k] += Math.fround(logits[l + k] * importance[local + k]);
        }
      }
    }
  }
  if (weightSum !== null && importance !== null) {
    for (let a = aLo; a < aHi; a++) {
      const i = s0 + a - x0.before;
      for (let b = bLo; b < bHi; b++) {
        const j = s1 + b - x1.before;
        const local = (a * x1.roi + b) * x2.roi;
        const o = (i * x1.n + j) * x2.n + kShift;
        for (let k = kLo; k < kHi; k++) weightSum[o + k] += importance[local + k];
      }
    }
  }
}

/** Number of windows covering each padded index of one axis (constant-mode count map factor). */
function coverage(axis: Axis): Float64Array {
  const counts = new Float64Array(Math.max(axis.n, axis.roi));
  for (const s of axis.starts) for (let p = s; p < s + axis.roi; p++) counts[p] += 1;
  return counts;
}

/**
 * Window placements for the addon's batch kernels: 12 integers per window (roi, lo, hi, shift),
 * as nativePlacement gives them.
 */
function nativePlacements(axes: readonly [Axis, Axis, Axis], origins: readonly Shape3[]): Int32Array {
  const flat = new Int32Array(12 * origins.length);
  origins.forEach((origin, q) => {
    const p = nativePlacement(axes, origin);
    flat.set([...p.roi, ...p.lo, ...p.hi, ...p.shift], 12 * q);
  });
  return flat;
}

/** normalise in the addon, on the libuv pool (split over threads: each voxel divided once, the same way). */
function normaliseAsync(
  kernels: VolumeKernels, acc: Float32Array, channels: number, axes: readonly [Axis, Axis, Axis], weightSum: Float32Array | null,
): Promise<void> {
  if (weightSum !== null) return kernels.divideByWeightsAsync(acc, channels, weightSum);
  const [c0, c1, c2] = axes.map((x) => coverage(x).subarray(x.before, x.before + x.n));
  return kernels.divideByCoverageAsync(acc, [axes[0].n, axes[1].n, axes[2].n], channels, c0, c1, c2);
}

/** Divides the accumulators by the count map (constant: product of per-axis coverages). */
function normalise(acc: Float32Array, channels: number, axes: readonly [Axis, Axis, Axis], weightSum: Float32Array | null): void {
  const [x0, x1, x2] = axes;
  const voxels = x0.n * x1.n * x2.n;
  if (weightSum !== null) {
    for (let c = 0; c < channels; c++) {
      const base = c * voxels;
      for (let v = 0; v < voxels; v++) acc[base + v] /= weightSum[v];
    }
    return;
  }
  const c0 = coverage(x0);
  const c1 = coverage(x1);
  const c2 = coverage(x2).subarray(x2.before, x2.before + x2.n);
  for (let i = 0; i < x0.n; i++) {
    for (let j = 0; j < x1.n; j++) {
      // Integer counts (<= 2^24 in practice) are exact in float32, so the double division rounds
      // to the same float32 quotient as torch's.
      const cij = c0[i + x0.before] * c1[j + x1.before];
      const row = (i * x1.n + j) * x2.n;
      for (let c = 0; c < channels; c++) {
        const o = c * voxels + row;
        for (let k = 0; k < x2.n; k++) acc[o + k] /= cij * c2[k];
      }
    }
  }
}

/**
 * Runs `backend` over ROI windows of a single-channel C-order float32 volume and blends the
 * logits back onto the input grid, as MONAI's sliding_window_inference does.
 * @example
 * const { logits, channels } = await slidingWindowInference(image, [137, 137, 148], backend);
 */
export async function slidingWindowInference(
  image: Float32Array,
  shape: Shape3,
  backend: InferenceBackend,
  options: SlidingWindowOptions = {},
): Promise<SlidingWindowResult> {
  const tStart = performance.now();
  if (!(image instanceof Float32Array)) throw expectedType('a Float32Array', 'image', image);
  const dims = checkShape(shape, 'shape');
  if (image.length !== dims[0] * dims[1] * dims[2]) {
    throw expectedRange(`a Float32Array of length ${dims[0] * dims[1] * dims[2]}`, 'image', `length ${image.length}`);
  }
  if (backend === null || typeof backend !== 'object' || typeof backend.run !== 'function') {
    throw expectedType('an InferenceBackend', 'backend', backend);
  }
  const roi = checkShape(options.roiSize ?? DEFAULT_ROI, 'options.roiSize');
  const swBatchSize = options.swBatchSize ?? 4;
  if (!Number.isInteger(swBatchSize) || swBatchSize < 1) {
    throw expectedRange('a positive integer', 'options.swBatchSize', swBatchSize);
  }
  const overlap = checkOverlap(options.overlap ?? 0.5);
  const mode = options.mode ?? 'constant';
  const padValue = options.padValue ?? 0;
  if (typeof padValue !== 'number' || !Number.isFinite(padValue)) {
    throw expectedRange('a finite number', 'options.padValue', padValue);
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw expectedType('a function', 'options.onProgress', options.onProgress);
  }
  const channels = backend.outputChannels;
  if (!Number.isInteger(channels) || channels < 1) {
    throw expectedRange('a positive integer', 'backend.outputChannels', channels);
  }
  // Constant mode multiplies by ones (exact, skipped): no map. Any other mode is validated, with
  // sigmaScale, where the map is made.
  const importance = mode === 'constant' ? null : computeImportanceMap(roi, mode, options.sigmaScale ?? 0.125);
  const { signal, onProgress } = options;
  throwIfAborted(signal);

  const axes = [0, 1, 2].map((d) => ({
    n: dims[d],
    roi: roi[d],
    before: Math.floor((Math.max(dims[d], roi[d]) - dims[d]) / 2),
    starts: windowStarts(dims[d], roi[d], overlap),
  })) as [Axis, Axis, Axis];
  const [n0s, n1s, n2s] = axes.map((x) => x.starts.length);
  const windowCount = n0s * n1s * n2s;
  const batchCount = Math.ceil(windowCount / swBatchSize);
  const roiVolume = roi[0] * roi[1] * roi[2];
  const voxels = image.length;
  // MONAI's window order: np.meshgrid(..., indexing='ij') flattened, dim 0 slowest.
  const originOf = (w: number): Shape3 => [
    axes[0].starts[Math.floor(w / (n1s * n2s))],
    axes[1].starts[Math.floor(w / n2s) % n1s],
    axes[2].starts[w % n2s],
  ];

  const kernels = volumeKernels();
  const tuning = { ...stitchTuning };
  // With the addon, each voxel's first value is stored (the row state `covered` tells where):
  // no zero-filling pass, and each page faulted once rather than read as zeroes and copied on write.
  const firstStore = kernels !== null && tuning.fused && tuning.firstStore;
  const fresh = (count: number): Float32Array =>
    firstStore ? uninitializedFloats(count, { hugePages: false }) : new Float32Array(count);
  // Allocated once the first gathers are queued (below): they then start without waiting for a
  // 67 MB allocation (and the garbage collection it may set off) on this thread, and the page
  // population, which holds the address space's lock while it works, does not hold up the
  // allocations before them. The population is not awaited: it holds the arrays itself, and a
  // stitch may fault the same pages meanwhile.
  let acc: Float32Array = new Float32Array(0);
  let weightSum = null as Float32Array | null;
  let covered = null as Int32Array | null;
  const allocateAccumulators = (): void => {
    acc = fresh(channels * voxels);
    weightSum = importance === null ? null : fresh(voxels);
    covered = firstStore ? new Int32Array(dims[0] * dims[1]) : null;
    if (kernels === null || !tuning.prefault) return;
    void kernels.populatePagesAsync(acc, channels, tuning.hugePages).catch(() => 0);
    if (weightSum !== null) void kernels.populatePagesAsync(weightSum, 1, tuning.hugePages).catch(() => 0);
  };
  const stitchThreads = tuning.fused ? tuning.threads : 0;
  const timings = { computeMs: 0, h2dMs: 0, d2hMs: 0, stitchMs: 0, totalMs: 0 };
  // Two input buffers, each the backend's from a batch's submission until it settles: batch b + 2
  // reuses batch b's.
  // Every element is written before a batch is sent (the gathers pad, a short last batch is
  // zero-filled), so they need no zeroing here (a 14 MB calloc from reused heap memory is a
  // memset on this thread).
  const buffers = [uninitializedFloats(swBatchSize * roiVolume), uninitializedFloats(swBatchSize * roiVolume)];
  const batchShape = (batch: number): { first: number; count: number; sent: number } => {
    const first = batch * swBatchSize;
    const count = Math.min(swBatchSize, windowCount - first);
    return { first, count, sent: options.padLastBatch ? swBatchSize : count };
  };
  const placementsOf = (batch: number): Int32Array => {
    const { first, count } = batchShape(batch);
    return nativePlacements(axes, Array.from({ length: count }, (_, q) => originOf(first + q)));
  };
  const batchInputOf = (batch: number): Float32Array => {
    const { count, sent } = batchShape(batch);
    const batchInput = buffers[batch % 2];
    if (sent > count) batchInput.fill(0, count * roiVolume);
    return sent === swBatchSize ? batchInput : batchInput.subarray(0, sent * roiVolume);
  };
  // The TS loops, on this thread.
  const gather = (batch: number): Float32Array => {
    const { first, count } = batchShape(batch);
    const t = performance.now();
    for (let q = 0; q < count; q++) gatherWindow(image, axes, originOf(first + q), padValue, buffers[batch % 2], q * roiVolume);
    const input = batchInputOf(batch);
    timings.stitchMs += performance.now() - t;
    return input;
  };
  // The addon's batch kernel, on the libuv pool: the event loop stays free, and the gather of
  // batch b + 2 overlaps the stitching of batch b on another core.
  // The pool's kernels may overlap (a gather with a stitch): stitchMs counts the time any of them runs.
  let running = 0;
  let runningSince = 0;
  const onPool = async <T>(job: () => Promise<T>): Promise<T> => {
    if (running++ === 0) runningSince = performance.now();
    try {
      return await job();
    } finally {
      if (--running === 0) timings.stitchMs += performance.now() - runningSince;
    }
  };
  const gatherAsync = (native: VolumeKernels, batch: number): Promise<Float32Array> =>
    onPool(async () => {
      await native.gatherWindowsAsync(image, dims, buffers[batch % 2], placementsOf(batch), padValue);
      return batchInputOf(batch);
    });
  type Settled = { ok: true; value: Awaited<ReturnType<InferenceBackend['run']>> } | { ok: false; error: unknown };
  // Settled into a value at once: a failure is rethrown where it is awaited, never left unhandled.
  // Calls the backend before returning (the native path relies on that to hand batches over in
  // order); a synchronous throw settles as a failure, like a rejection.
  const submit = (input: Float32Array, sent: number): Promise<Settled> => {
    try {
      return Promise.resolve(backend.run(input, sent, [roi[0], roi[1], roi[2]])).then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      );
    } catch (error) {
      return Promise.resolve({ ok: false as const, error });
    }
  };

  // A software pipeline with two batches in the backend: while it computes batch b + 1, batch
  // b + 2 already waits in its queue (so it starts the moment b + 1 ends) and this thread stitches
  // batch b. Batch b + 2 is gathered into b's input buffer, free once b has settled. Windows are
  // still accumulated in window order, so the results are unchanged.
  const inFlight: Promise<Settled>[] = [];
  // The native stitches, chained: each starts when the one before has ended.
  let stitched: Promise<void> = Promise.resolve();
  const budget = yieldBudget();
  const settledFailure = (error: unknown): Settled => ({ ok: false, error });
  // The native gathers run concurrently, but batches reach the backend in order: batch b + 1 is
  // handed over only once batch b has been (the reaction that hands b over is registered first).
  let handedOver: Promise<unknown> = Promise.resolve();
  const enqueue = (batch: number): void => {
    const { sent } = batchShape(batch);
    if (kernels === null) {
      inFlight.push(submit(gather(batch), sent));
      return;
    }
    const ready = Promise.all([gatherAsync(kernels, batch), handedOver]);
    handedOver = ready;
    inFlight.push(ready.then(([input]) => submit(input, sent), settledFailure));
  };
  try {
    enqueue(0);
    if (batchCount > 1) {
      if (kernels === null && budget.due()) await yieldToEventLoop();
      enqueue(1);
    }
    allocateAccumulators();
    for (let batch = 0; batch < batchCount; batch++) {
      const { first, count, sent } = batchShape(batch);
      const settled: Settled = await inFlight[0];
      inFlight.shift();
      if (!settled.ok) throw settled.error;
      const result = settled.value;
      const logits = result?.logits;
      if (!(logits instanceof Float32Array) || logits.length !== sent * channels * roiVolume) {
        throw new SpleenTrtError(
          'ERR_INFERENCE_FAILED',
          `The ${backend.name} backend returned ${logits instanceof Float32Array ? `${logits.length} values` : 'no Float32Array'} ` +
            `for a batch of ${sent} windows; expected ${sent * channels * roiVolume} (${channels} channels of ${roi.join('x')})`,
        );
      }
      timings.computeMs += result.timings?.computeMs ?? 0;
      timings.h2dMs += result.timings?.h2dMs ?? 0;
      timings.d2hMs += result.timings?.d2hMs ?? 0;
      onProgress?.({ windowsDone: first + count, windowsTotal: windowCount, batchIndex: batch, batchCount });
      throwIfAborted(signal);
      if (batch + 2 < batchCount) enqueue(batch + 2);

      if (kernels !== null) {
        // The whole batch in one job on the libuv pool, after the previous batch's (window
        // order), without waiting for it here: the next batch's result and gather go on meanwhile.
        const placements = placementsOf(batch);
        stitched = stitched.then(() =>
          onPool(() => kernels.accumulateWindowsAsync(acc, dims, channels, logits, placements, importance, weightSum, covered, stitchThreads)),
        );
        // Handled here (awaited below): a failed stitch is not an unhandled rejection meanwhile.
        stitched.catch(() => undefined);
        continue;
      }
      let t = performance.now();
      for (let q = 0; q < count; q++) {
        // Between windows the event loop may run (each window's stitch is a few ms).
        if (budget.due()) {
          timings.stitchMs += performance.now() - t;
          await yieldToEventLoop();
          t = performance.now();
        }
        stitchWindow(logits, q, channels, axes, originOf(first + q), importance, acc, weightSum);
      }
      timings.stitchMs += performance.now() - t;
    }
    await stitched;
  } finally {
    // After a failure, let the batches still in the backend settle before their buffers are
    // dropped, and a stitch still on the pool end (its failure, if any, is not the one reported).
    await Promise.all(inFlight);
    await stitched.catch(() => undefined);
  }
  throwIfAborted(signal);

  if (kernels !== null) {
    // The windows cover every voxel, so this finds nothing to zero; it keeps the result exact
    // should a placement ever leave a voxel out.
    if (covered !== null) kernels.zeroUncovered(acc, dims, channels, covered, weightSum);
    await onPool(() => normaliseAsync(kernels, acc, channels, axes, weightSum));
  } else {
    const t = performance.now();
    normalise(acc, channels, axes, weightSum);
    timings.stitchMs += performance.now() - t;
  }
  timings.totalMs = performance.now() - tStart;
  return { logits: acc, channels, windowCount, batchCount, timings };
}
