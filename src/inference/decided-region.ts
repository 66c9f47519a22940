/**
 * The final 2-class mask (softmax -> inverse spacing -> inverse orientation -> argmax, spec 7)
 * without resampling the voxels whose label the logits already decide.
 *
 * Why this is exact: the inverse resampling gives each output voxel a convex combination of the
 * probabilities of the 2x2x2 spacing-grid voxels at its lower tap corner (trilinear weights are
 * >= 0 and sum to 1). Where all of them have l1 - l0 < -SURE_MARGIN, each has p0 - p1 >=
 * tanh(SURE_MARGIN / 2) = 0.025, far above float32 rounding, so every convex combination keeps
 * p1 < p0 and argmax gives background; likewise all above +SURE_MARGIN gives spleen. Only output
 * voxels whose corner cube mixes the two (or holds a near-tie) are computed, each from its 8 taps
 * with the same weights and the same softmax. Where the inverse separates into the axes, the
 * float64 sums run in another order than the separable kernels', so such a voxel could differ
 * only where p0 and p1 tie to the last float32 bit; for an oblique inverse they are
 * resampleAffine's own expression, to the bit. For a trained model these voxels are a thin shell
 * around the spleen, so almost all of the postprocessing goes away (on an oblique 512x512x90 CT,
 * 1.9 s -> 0.55 s).
 */
import { volumeKernels } from '../native/volume-kernels.js';
import { storedLayout, type OrientationTransform } from '../volume/orientation.js';
import { inverseSpacingMap, type SpacingTransform } from '../volume/spacing.js';
import { clampIndex, type AxisTable } from '../volume/trilinear.js';
import { uninitializedBytes } from '../volume/uninitialized.js';
import type { Shape3 } from '../volume/volume.js';
import { yieldBudget, yieldToEventLoop } from './yield-to-event-loop.js';
import { softmax2 } from './postprocess.js';

/** |l1 - l0| above this decides a voxel: p0 - p1 >= tanh(0.025) ~ 0.025 (or the reverse). */
export const SURE_MARGIN = 0.05;

/** When more than this share of the grid is undecided (an untrained model) the full path is faster. */
const MAX_UNDECIDED_SHARE = 0.2;

/**
 * Per-voxel state: what the logits decide on their own, as bits so that combining voxels is an OR
 * (Background | Foreground = Undecided).
 */
export const Decided = { Background: 1, Foreground: 2, Undecided: 3 } as const;

/**
 * The state of each voxel of `[2][n]` logits, and whether any logit is NaN or infinite (then
 * l1 - l0 is: both are finite float32 values iff their float64 difference is finite).
 */
export function decideVoxels(logits: Float32Array, voxels: number): { state: Uint8Array; nonFinite: boolean } {
  const state = new Uint8Array(voxels);
  let finite = true;
  for (let v = 0; v < voxels; v++) {
    const d = logits[voxels + v] - logits[v];
    if (d < -SURE_MARGIN) state[v] = Decided.Background;
    else if (d > SURE_MARGIN) state[v] = Decided.Foreground;
    else state[v] = Decided.Undecided;
    if (!(d > -Infinity && d < Infinity)) finite = false;
  }
  return { state, nonFinite: !finite };
}

const LITTLE_ENDIAN_HOST = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * Combines each voxel's state with its +1 neighbour along every axis (clamped at the far border):
 * afterwards state[(i, j, k)] is Background / Foreground iff all of {i, i+1} x {j, j+1} x {k, k+1}
 * were. In place. Returns how many cubes are undecided, and per (i, j) row whether every cube in
 * it is Background (rows the output loop can skip whole). Four voxels at a time when rows are
 * whole 32-bit words (the usual 137x137x148 grid), else one at a time.
 */
export function combineCorners(state: Uint8Array, shape: Shape3): { undecided: number; rowIsBackground: Uint8Array } {
  const words = LITTLE_ENDIAN_HOST && shape[2] % 4 === 0 && state.byteOffset % 4 === 0;
  return words ? combineCornersByWord(state, shape) : combineCornersByByte(state, shape);
}

function combineCornersByByte(state: Uint8Array, shape: Shape3): { undecided: number; rowIsBackground: Uint8Array } {
  const [n0, n1, n2] = shape;
  for (let row = 0; row < n0 * n1; row++) {
    const base = row * n2;
    for (let k = 0; k < n2 - 1; k++) state[base + k] |= state[base + k + 1];
  }
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1 - 1; j++) {
      const base = (i * n1 + j) * n2;
      for (let k = 0; k < n2; k++) state[base + k] |= state[base + n2 + k];
    }
  }
  const slab = n1 * n2;
  const rowIsBackground = new Uint8Array(n0 * n1);
  let undecided = 0;
  for (let i = 0; i < n0; i++) {
    const next = i < n0 - 1 ? slab : 0;
    for (let j = 0; j < n1; j++) {
      const base = i * slab + j * n2;
      let any = 0;
      for (let k = 0; k < n2; k++) {
        const s = (state[base + k] |= state[base + next + k]);
        any |= s;
        if (s === Decided.Undecided) undecided++;
      }
      rowIsBackground[i * n1 + j] = any === Decided.Background ? 1 : 0;
    }
  }
  return { undecided, rowIsBackground };
}

/** combineCornersByByte on 32-bit words (4 voxels of a row, little-endian: voxel k in the low byte). */
function combineCornersByWord(state: Uint8Array, shape: Shape3): { undecided: number; rowIsBackground: Uint8Array } {
  const [n0, n1, n2] = shape;
  const w = new Uint32Array(state.buffer, state.byteOffset, state.length >> 2);
  const rowWords = n2 >> 2;
  for (let row = 0; row < n0 * n1; row++) {
    const base = row * rowWords;
    // Each byte ORs in the next byte; the row's last voxel keeps its own state (clamped neighbour).
    for (let x = 0; x < rowWords - 1; x++) w[base + x] |= (w[base + x] >>> 8) | (w[base + x + 1] << 24);
    w[base + rowWords - 1] |= w[base + rowWords - 1] >>> 8;
  }
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1 - 1; j++) {
      const base = (i * n1 + j) * rowWords;
      for (let x = 0; x < rowWords; x++) w[base + x] |= w[base + rowWords + x];
    }
  }
  const slabWords = n1 * rowWords;
  const rowIsBackground = new Uint8Array(n0 * n1);
  const allBackground = Decided.Background * 0x01010101;
  let undecided = 0;
  for (let i = 0; i < n0; i++) {
    const next = i < n0 - 1 ? slabWords : 0;
    for (let j = 0; j < n1; j++) {
      const base = i * slabWords + j * rowWords;
      let any = 0;
      for (let x = 0; x < rowWords; x++) {
        const v = (w[base + x] |= w[base + next + x]);
        any |= v;
        // Undecided (3) has both low bits set: one flag per byte, summed by the multiply.
        undecided += Math.imul(v & (v >>> 1) & 0x01010101, 0x01010101) >>> 24;
      }
      rowIsBackground[i * n1 + j] = any === allBackground ? 1 : 0;
    }
  }
  return { undecided, rowIsBackground };
}

/**
 * A kernel call the work needs: the generator yields it and is resumed with its result, run on
 * this thread by the synchronous driver or on the libuv pool by the asynchronous one (the same
 * kernel either way, so the same result).
 */
interface KernelCall {
  sync(): number;
  async(): Promise<number>;
}

/** What the work yields: a pause point (undefined) or a kernel call whose result it is resumed with. */
type Step = KernelCall | undefined;

/**
 * decideVoxels then combineCorners (in the addon's kernel when it is there): what each 2x2x2 cube
 * decides, or null when a logit is NaN or infinite.
 */
function* decideCubes(
  logits: Float32Array,
  shape: Shape3,
): Generator<Step, { cube: Uint8Array; undecided: number; rowIsBackground: Uint8Array } | null, unknown> {
  const voxels = shape[0] * shape[1] * shape[2];
  const kernels = volumeKernels();
  if (kernels !== null) {
    // The kernel writes every state and row flag.
    const cube = uninitializedBytes(voxels);
    const rowIsBackground = uninitializedBytes(shape[0] * shape[1]);
    const undecided = (yield {
      sync: () => kernels.decideCorners(logits, shape, SURE_MARGIN, cube, rowIsBackground),
      async: () => kernels.decideCornersAsync(logits, shape, SURE_MARGIN, cube, rowIsBackground),
    }) as number;
    return undecided < 0 ? null : { cube, undecided, rowIsBackground };
  }
  const { state: cube, nonFinite } = decideVoxels(logits, voxels);
  if (nonFinite) return null;
  return { cube, ...combineCorners(cube, shape) };
}

/** Softmax probabilities computed on first use (most voxels are never read). */
class LazySoftmax {
  readonly probabilities: Float32Array;
  private readonly done: Uint8Array;

  constructor(
    private readonly logits: Float32Array,
    private readonly voxels: number,
  ) {
    this.probabilities = new Float32Array(2 * voxels);
    this.done = new Uint8Array(voxels);
  }

  /** Makes sure the 8 voxels v + {0, di} + {0, dj} + {0, dk} are computed. */
  ensureCube(v: number, di: number, dj: number, dk: number): void {
    this.ensure(v);
    this.ensure(v + dk);
    this.ensure(v + dj);
    this.ensure(v + dj + dk);
    this.ensure(v + di);
    this.ensure(v + di + dk);
    this.ensure(v + di + dj);
    this.ensure(v + di + dj + dk);
  }

  private ensure(w: number): void {
    if (!this.done[w]) {
      softmax2(this.logits, this.probabilities, this.voxels, w);
      this.done[w] = 1;
    }
  }
}

/** What the labelling loops share: the cubes' states, the lazy probabilities, where labels go. */
interface Region {
  logits: Float32Array;
  cube: Uint8Array;
  rowIsBackground: Uint8Array;
  softmax: LazySoftmax;
  gridShape: Shape3;
  voxels: number;
  labels: Uint8Array;
  /** Output voxel q of the pre-resampling RAS grid goes to labels[base + q . strides]. */
  base: number;
  strides: [number, number, number];
  outShape: Shape3;
}

/**
 * Whether the trilinear blend of the two probability channels at spacing-grid voxel w (taps
 * w + {0, di} + {0, dj} + {0, dk}, weights per axis) labels the output foreground, with
 * resampleAffine's float64 expression rounded to float32 and argmaxForeground's rule (ties go to
 * background, a NaN counts as the maximum).
 */
function blendIsForeground(
  p: Float32Array, w: number, voxels: number, di: number, dj: number, dk: number,
  wi0: number, wi1: number, wj0: number, wj1: number, wk0: number, wk1: number,
): boolean {
  let p0 = 0;
  let p1 = 0;
  for (let c = 0, at = w; c < 2; c++, at += voxels) {
    const v00 = p[at] * wk0 + p[at + dk] * wk1;
    const v01 = p[at + dj] * wk0 + p[at + dj + dk] * wk1;
    const v10 = p[at + di] * wk0 + p[at + di + dk] * wk1;
    const v11 = p[at + di + dj] * wk0 + p[at + di + dj + dk] * wk1;
    const value = Math.fround((v00 * wj0 + v01 * wj1) * wi0 + (v10 * wj0 + v11 * wj1) * wi1);
    if (c === 0) p0 = value;
    else p1 = value;
  }
  return p1 > p0 || (Number.isNaN(p1) && !Number.isNaN(p0));
}

/** Output rows (q0) handled between two points where the TS scan may pause. */
const ROWS_PER_STEP = 8;

/**
 * The separable inverse: each output axis reads its spacing-grid indices from a table. The hot
 * loops are plain functions over a range (V8 optimises those better than a generator's body);
 * the generator only pauses between ranges.
 */
function* labelThroughTables(r: Region, tables: [AxisTable, AxisTable, AxisTable]): Generator<Step, void, unknown> {
  const kernels = volumeKernels();
  const m0 = r.outShape[0];
  if (kernels === null) {
    for (let q0 = 0; q0 < m0; q0 += ROWS_PER_STEP) {
      labelTableRows(r, tables, q0, Math.min(m0, q0 + ROWS_PER_STEP));
      yield;
    }
    return;
  }
  // The addon scans every output voxel (volume_kernels.cc tableCubeLabels), lists the undecided
  // ones, the shell, and blends those as labelTableRows does (blendTableVoxels: the same
  // softmax, with V8's exp, and the same float64 blend, so the same labels).
  const [, m1, m2] = r.outShape;
  const scan = (list: Int32Array): KernelCall => ({
    sync: () => kernels.tableCubeLabels(r.cube, r.gridShape, r.rowIsBackground, tables, r.labels, r.base, r.strides, list),
    async: () => kernels.tableCubeLabelsAsync(r.cube, r.gridShape, r.rowIsBackground, tables, r.labels, r.base, r.strides, list),
  });
  // Room for a shell of 1/16 of the voxels at once (a second scan when there is more): the large
  // phantom's is 2.4 %, 564 k voxels, and a second scan of 23.6 M labels cost ~15 ms.
  const outVoxels = m0 * m1 * m2;
  let undecided = new Int32Array(Math.min(outVoxels, Math.max(1 << 16, Math.ceil(outVoxels / 16))));
  let count = (yield scan(undecided)) as number;
  if (count > undecided.length) {
    undecided = new Int32Array(count);
    count = (yield scan(undecided)) as number;
  }
  const listed = undecided;
  const shell = count;
  yield {
    sync: () => {
      kernels.blendTableVoxels(r.logits, r.gridShape, tables, listed, shell, r.labels, r.base, r.strides);
      return 0;
    },
    async: async () => {
      await kernels.blendTableVoxelsAsync(r.logits, r.gridShape, tables, listed, shell, r.labels, r.base, r.strides);
      return 0;
    },
  };
}

/** labelThroughTables' TS scan of output rows [q0Begin, q0End). */
function labelTableRows(r: Region, [t0, t1, t2]: [AxisTable, AxisTable, AxisTable], q0Begin: number, q0End: number): void {
  const [, n1, n2] = r.gridShape;
  const [s0, s1, s2] = r.strides;
  const [, m1, m2] = r.outShape;
  const { cube, labels, softmax } = r;
  for (let q0 = q0Begin; q0 < q0End; q0++) {
    const i = t0.lo[q0];
    const di = (t0.hi[q0] - i) * n1 * n2;
    for (let q1 = 0; q1 < m1; q1++) {
      const j = t1.lo[q1];
      // Every output voxel of this row reads cubes of source row (i, j) only.
      if (r.rowIsBackground[i * n1 + j]) continue;
      const dj = (t1.hi[q1] - j) * n2;
      const row = (i * n1 + j) * n2;
      let o = r.base + q0 * s0 + q1 * s1;
      for (let q2 = 0; q2 < m2; q2++, o += s2) {
        const k = t2.lo[q2];
        const state = cube[row + k];
        if (state === Decided.Background) continue;
        if (state === Decided.Foreground) {
          labels[o] = 1;
          continue;
        }
        const v = row + k;
        const dk = t2.hi[q2] - k;
        softmax.ensureCube(v, di, dj, dk);
        const foreground = blendIsForeground(
          softmax.probabilities, v, r.voxels, di, dj, dk, t0.wLo[q0], t0.wHi[q0], t1.wLo[q1], t1.wHi[q1], t2.wLo[q2], t2.wHi[q2],
        );
        if (foreground) labels[o] = 1;
      }
    }
  }
}

/**
 * An oblique inverse: each output voxel computes its continuous spacing-grid index exactly as
 * resampleAffine does (affinePoint), so the blend of an undecided one is that kernel's value to
 * the bit.
 */
function* labelThroughAffine(r: Region, x: Float64Array): Generator<Step, void, unknown> {
  const [, n1, n2] = r.gridShape;
  const sI = n1 * n2;
  const [s0, s1, s2] = r.strides;
  const [m0, m1, m2] = r.outShape;
  const { cube, labels } = r;
  const kernels = volumeKernels();
  if (kernels !== null) {
    // The addon scans every output voxel and lists the undecided ones; they are blended here.
    const scan = (list: Int32Array): KernelCall => ({
      sync: () => kernels.affineCubeLabels(cube, r.gridShape, x, r.outShape, labels, r.base, r.strides, list),
      async: () => kernels.affineCubeLabelsAsync(cube, r.gridShape, x, r.outShape, labels, r.base, r.strides, list),
    });
    let undecided = new Int32Array(Math.min(m0 * m1 * m2, 1 << 16));
    let count = (yield scan(undecided)) as number;
    if (count > undecided.length) {
      undecided = new Int32Array(count);
      count = (yield scan(undecided)) as number;
    }
    yield;
    for (let u = 0; u < count; u++) {
      if ((u & YIELD_EVERY) === YIELD_EVERY) yield;
      const q = undecided[u];
      const a = Math.floor(q / (m1 * m2));
      const b = Math.floor(q / m2) - a * m1;
      const k = q - (a * m1 + b) * m2;
      labelUndecidedAffine(r, x, a, b, k, r.base + a * s0 + b * s1 + k * s2);
    }
    return;
  }
  const p = new Float64Array(3);
  for (let a = 0; a < m0; a++) {
    yield;
    for (let b = 0; b < m1; b++) {
      for (let k = 0, o = r.base + a * s0 + b * s1; k < m2; k++, o += s2) {
        affinePoint(x, a, b, k, r.gridShape, p);
        const state = cube[Math.floor(p[0]) * sI + Math.floor(p[1]) * n2 + Math.floor(p[2])];
        if (state === Decided.Background) continue;
        if (state === Decided.Foreground) labels[o] = 1;
        else labelUndecidedAffine(r, x, a, b, k, o);
      }
    }
  }
}

/**
 * resampleAffine's continuous spacing-grid index of output voxel (a, b, k), clamped, into `p`:
 * the same expression in the same order, so the cube and the weights are the ones it uses.
 */
function affinePoint(x: Float64Array, a: number, b: number, k: number, [n0, n1, n2]: Shape3, p: Float64Array): void {
  p[0] = clampIndex(x[0] * a + x[1] * b + x[2] * k + x[3], n0);
  p[1] = clampIndex(x[4] * a + x[5] * b + x[6] * k + x[7], n1);
  p[2] = clampIndex(x[8] * a + x[9] * b + x[10] * k + x[11], n2);
}

/** labelThroughAffine's blend for one undecided output voxel (a, b, k), label at labels[o]. */
function labelUndecidedAffine(r: Region, x: Float64Array, a: number, b: number, k: number, o: number): void {
  const [n0, n1, n2] = r.gridShape;
  const sI = n1 * n2;
  const point = new Float64Array(3);
  affinePoint(x, a, b, k, r.gridShape, point);
  const [p0, p1, p2] = point;
  const i0 = Math.floor(p0);
  const j0 = Math.floor(p1);
  const k0 = Math.floor(p2);
  const v = i0 * sI + j0 * n2 + k0;
  const di = i0 < n0 - 1 ? sI : 0;
  const dj = j0 < n1 - 1 ? n2 : 0;
  const dk = k0 < n2 - 1 ? 1 : 0;
  r.softmax.ensureCube(v, di, dj, dk);
  const foreground = blendIsForeground(
    r.softmax.probabilities, v, r.voxels, di, dj, dk, i0 + 1 - p0, p0 - i0, j0 + 1 - p1, p1 - j0, k0 + 1 - p2, p2 - k0,
  );
  if (foreground) r.labels[o] = 1;
}

/**
 * The label map on the original grid and in its stored orientation for 2-channel `logits` on the
 * spacing grid: the same labels as `argmaxForeground(invertPreprocessing(softmaxChannels(logits)))`.
 * Null when the shortcut does not apply (nothing to invert, NaN or infinite logits) or would not
 * pay (mostly undecided logits): use the full path then.
 */
export function decidedRegionLabels(
  logits: Float32Array,
  resampling: SpacingTransform,
  orientation: OrientationTransform,
): Uint8Array | null {
  const steps = decidedRegionSteps(logits, resampling, orientation);
  let result: number | undefined;
  for (;;) {
    const step = steps.next(result);
    if (step.done) return step.value;
    result = step.value?.sync();
  }
}

/**
 * As decidedRegionLabels, with the addon's scans (decideCorners, the cube labelling) on the libuv
 * pool, and letting the event loop run whenever a stretch of the TS work (the undecided shell) has
 * taken a few ms: the same steps in the same order, so the same labels.
 */
export async function decidedRegionLabelsAsync(
  logits: Float32Array,
  resampling: SpacingTransform,
  orientation: OrientationTransform,
): Promise<Uint8Array | null> {
  const steps = decidedRegionSteps(logits, resampling, orientation);
  const budget = yieldBudget();
  let result: number | undefined;
  for (;;) {
    const step = steps.next(result);
    if (step.done) return step.value;
    result = undefined;
    if (step.value !== undefined) result = await step.value.async();
    else if (budget.due()) await yieldToEventLoop();
  }
}

/** Shell voxels blended between two points where the work may pause (a mask of low bits). */
const YIELD_EVERY = 1023;

/** decidedRegionLabels' work, pausing (`yield`) between steps. */
function* decidedRegionSteps(
  logits: Float32Array,
  resampling: SpacingTransform,
  orientation: OrientationTransform,
): Generator<Step, Uint8Array | null, unknown> {
  const inverse = inverseSpacingMap(resampling);
  if (!inverse) return null;
  const gridShape = resampling.outputShape;
  const voxels = gridShape[0] * gridShape[1] * gridShape[2];
  const corners = yield* decideCubes(logits, gridShape);
  // NaN propagation depends on which taps a kernel multiplies by a zero weight; leave it to the
  // full path rather than reproduce its kernels' choices here.
  if (corners === null) return null;
  const { cube, undecided, rowIsBackground } = corners;
  if (undecided > MAX_UNDECIDED_SHARE * voxels) return null;
  yield;

  const original = orientation.originalShape;
  const { base, strides } = storedLayout(orientation);
  // Made on first use: the addon's shell blend needs none (75 MB for a 512x512x90 CT's grid).
  let softmax: LazySoftmax | undefined;
  const region: Region = {
    logits,
    cube,
    rowIsBackground,
    get softmax() {
      return (softmax ??= new LazySoftmax(logits, voxels));
    },
    gridShape,
    voxels,
    // The addon's scans write every label; the TS scans only set the foreground ones.
    labels: volumeKernels() !== null ? uninitializedBytes(original[0] * original[1] * original[2]) : new Uint8Array(original[0] * original[1] * original[2]),
    base,
    strides,
    outShape: resampling.inputShape,
  };
  if (inverse.tables) yield* labelThroughTables(region, inverse.tables);
  else yield* labelThroughAffine(region, inverse.xform);
  return region.labels;
}
