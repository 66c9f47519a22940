/**
 * Trilinear resampling with border clamping, as torch `grid_sample(mode="bilinear",
 * padding_mode="border", align_corners=False)` does it under MONAI's `SpatialResample` with
 * `normalized=False`: output voxel q reads input continuous index p = M q + t, each p_k clamped to
 * [0, n_k - 1], weights ((i0 + 1) - p, p - i0) per axis, all in float64, stored as float32.
 *
 * Two paths: when M is diagonal (the pipeline's normal case, RAS in and RAS out) the 3-D
 * interpolation factors into 1-D passes driven by per-axis index/weight tables, run one output
 * slab at a time; otherwise every output voxel computes its own eight taps.
 */
import { volumeKernels } from '../native/volume-kernels.js';
import { applyIntensityWindow, intensityWindowKernel, type IntensityWindowParameters } from './intensity.js';
import { uninitializedFloats } from './uninitialized.js';
import type { Shape3 } from './volume.js';

/** One axis of a separable resampling: output index q blends source indices lo[q] and hi[q]. */
export interface AxisTable {
  lo: Int32Array;
  hi: Int32Array;
  wLo: Float64Array;
  wHi: Float64Array;
  /** True when the axis maps each index onto itself (the pass can be skipped). */
  identity: boolean;
}

/**
 * Where output voxel (q0, q1, q2) of channel c is stored:
 * `c * voxelCount + base + q0 * strides[0] + q1 * strides[1] + q2 * strides[2]`. Lets the last
 * resampling step also apply a flip/permutation (the orientation inverse) without another pass.
 */
export interface OutputLayout {
  base: number;
  strides: [number, number, number];
}

function isCOrder(layout: OutputLayout | undefined, shape: Shape3): boolean {
  if (layout === undefined) return true;
  const [s0, s1, s2] = layout.strides;
  return layout.base === 0 && s0 === shape[1] * shape[2] && s1 === shape[2] && s2 === 1;
}

/**
 * Continuous indices this close to an integer are snapped to it. torch carries ~1e-13 of rounding
 * noise through its normalised grid; snapping moves a value by at most 1e-9 of a neighbour
 * difference and makes identity axes and exact fields exact.
 */
const SNAP = 1e-9;

/** Border clamp of a continuous index to [0, n - 1] (grid_sample's padding_mode="border"). */
export function clampIndex(p: number, n: number): number {
  return p < 0 ? 0 : p > n - 1 ? n - 1 : p;
}

/** Index/weight table for p = scale * q + offset, q in [0, outSize), source axis of inSize. */
export function axisTable(scale: number, offset: number, outSize: number, inSize: number): AxisTable {
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const wLo = new Float64Array(outSize);
  const wHi = new Float64Array(outSize);
  let identity = outSize === inSize;
  for (let q = 0; q < outSize; q++) {
    let p = scale * q + offset;
    const r = Math.round(p);
    if (Math.abs(p - r) <= SNAP) p = r;
    p = clampIndex(p, inSize);
    const i0 = Math.floor(p);
    lo[q] = i0;
    hi[q] = Math.min(i0 + 1, inSize - 1);
    wLo[q] = i0 + 1 - p;
    wHi[q] = p - i0;
    if (i0 !== q || wHi[q] !== 0) identity = false;
  }
  return { lo, hi, wLo, wHi, identity };
}

/*
 * The kernels below come in a Float32Array-source and a Float64Array-source copy on purpose: V8
 * compiles a typed-array access for the element kinds it has seen, and one shared kernel fed
 * both kinds ran about 3x slower. Every intermediate is float64 (MONAI resamples in float64);
 * only `storeSlab` / `blendSlabs` round to float32, once per output voxel.
 */

/** Linear interpolation along the middle axis of a float32 [outer][n][inner] array into float64 [outer][m][inner]. */
function linearPass32(
  src: Float32Array,
  srcOff: number,
  dst: Float64Array,
  outer: number,
  n: number,
  inner: number,
  t: AxisTable,
): void {
  const { lo, hi, wLo, wHi } = t;
  const m = lo.length;
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      const s = srcOff + o * n;
      const d = o * m;
      for (let q = 0; q < m; q++) dst[d + q] = src[s + lo[q]] * wLo[q] + src[s + hi[q]] * wHi[q];
    }
    return;
  }
  for (let o = 0; o < outer; o++) {
    for (let q = 0; q < m; q++) {
      const s0 = srcOff + (o * n + lo[q]) * inner;
      const s1 = srcOff + (o * n + hi[q]) * inner;
      const d = (o * m + q) * inner;
      const w0 = wLo[q];
      const w1 = wHi[q];
      if (w1 === 0) {
        for (let x = 0; x < inner; x++) dst[d + x] = src[s0 + x] * w0;
      } else {
        for (let x = 0; x < inner; x++) dst[d + x] = src[s0 + x] * w0 + src[s1 + x] * w1;
      }
    }
  }
}

/** `linearPass32` for a float64 source (same code, separate type feedback). */
function linearPass64(
  src: Float64Array,
  srcOff: number,
  dst: Float64Array,
  outer: number,
  n: number,
  inner: number,
  t: AxisTable,
): void {
  const { lo, hi, wLo, wHi } = t;
  const m = lo.length;
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      const s = srcOff + o * n;
      const d = o * m;
      for (let q = 0; q < m; q++) dst[d + q] = src[s + lo[q]] * wLo[q] + src[s + hi[q]] * wHi[q];
    }
    return;
  }
  for (let o = 0; o < outer; o++) {
    for (let q = 0; q < m; q++) {
      const s0 = srcOff + (o * n + lo[q]) * inner;
      const s1 = srcOff + (o * n + hi[q]) * inner;
      const d = (o * m + q) * inner;
      const w0 = wLo[q];
      const w1 = wHi[q];
      if (w1 === 0) {
        for (let x = 0; x < inner; x++) dst[d + x] = src[s0 + x] * w0;
      } else {
        for (let x = 0; x < inner; x++) dst[d + x] = src[s0 + x] * w0 + src[s1 + x] * w1;
      }
    }
  }
}

/**
 * Resamples one 2-D slice [n1][n2] (axes 1 and 2) onto float64 `dst` [m1][m2]. The slice is
 * float32 (`src32` at `srcOff`, the input volume) or float64 (`src64`, a blended slab). `tmp` holds
 * the intermediate of whichever axis order touches fewer voxels.
 */
function resampleSlice(
  src32: Float32Array | null,
  src64: Float64Array | null,
  srcOff: number,
  dst: Float64Array,
  n1: number,
  n2: number,
  t1: AxisTable,
  t2: AxisTable,
  tmp: Float64Array,
): void {
  const m1 = t1.lo.length;
  const m2 = t2.lo.length;
  const first = (d: Float64Array, outer: number, n: number, inner: number, t: AxisTable): void => {
    if (src32) linearPass32(src32, srcOff, d, outer, n, inner, t);
    else if (src64) linearPass64(src64, srcOff, d, outer, n, inner, t);
  };
  if (t1.identity && t2.identity) {
    const src = src32 ?? src64;
    if (src) for (let x = 0; x < m1 * m2; x++) dst[x] = src[srcOff + x];
  } else if (t1.identity) {
    first(dst, n1, n2, 1, t2);
  } else if (t2.identity) {
    first(dst, 1, n1, n2, t1);
  } else if (m1 * n2 <= n1 * m2) {
    first(tmp, 1, n1, n2, t1);
    linearPass64(tmp, 0, dst, m1, n2, 1, t2);
  } else {
    first(tmp, n1, n2, 1, t2);
    linearPass64(tmp, 0, dst, 1, n1, m2, t1);
  }
}

function sliceCost(n1: number, n2: number, t1: AxisTable, t2: AxisTable): number {
  const m1 = t1.lo.length;
  const m2 = t2.lo.length;
  const first = t1.identity || t2.identity ? 0 : Math.min(m1 * n2, n1 * m2);
  return first + m1 * m2;
}

/** Float32 [m1][m2] slab `dstOff` of `out`, C order or through the layout's strides. */
interface SlabTarget {
  out: Float32Array;
  rowBase: number;
  contiguous: boolean;
  m1: number;
  m2: number;
  s1: number;
  s2: number;
}

/** Writes `w0 * r0 + w1 * r1` (or `w0 * r0` when r1 is null) into the target slab. */
function blendSlabs(t: SlabTarget, r0: Float64Array, w0: number, r1: Float64Array | null, w1: number): void {
  const { out, rowBase, m1, m2, s1, s2 } = t;
  if (t.contiguous) {
    const n = m1 * m2;
    if (r1) for (let x = 0; x < n; x++) out[rowBase + x] = r0[x] * w0 + r1[x] * w1;
    else for (let x = 0; x < n; x++) out[rowBase + x] = r0[x] * w0;
    return;
  }
  for (let b = 0, x = 0; b < m1; b++) {
    let o = rowBase + b * s1;
    if (r1) {
      for (let k = 0; k < m2; k++, o += s2, x++) out[o] = r0[x] * w0 + r1[x] * w1;
    } else {
      for (let k = 0; k < m2; k++, o += s2, x++) out[o] = r0[x] * w0;
    }
  }
}

/** Blends two float32 source slabs into a float64 one. */
function blendSource(src: Float32Array, s0: number, w0: number, s1: number, w1: number, dst: Float64Array): void {
  for (let x = 0; x < dst.length; x++) dst[x] = src[s0 + x] * w0 + src[s1 + x] * w1;
}

/** The last two source slabs resampled in 2-D, by source index (tables only move one way). */
class SlabCache {
  private readonly slabs: [Float64Array, Float64Array];
  private readonly keys = [-1, -1];
  private readonly lastUse = [0, 0];
  private clock = 0;

  constructor(
    size: number,
    private readonly src: Float32Array,
    private readonly inSlab: number,
    private readonly n1: number,
    private readonly n2: number,
    private readonly t1: AxisTable,
    private readonly t2: AxisTable,
    private readonly tmp: Float64Array,
  ) {
    this.slabs = [new Float64Array(size), new Float64Array(size)];
  }

  /** Forgets the cached slabs (a new channel starts). */
  reset(): void {
    this.keys[0] = this.keys[1] = -1;
  }

  get(offset: number, i: number): Float64Array {
    const key = offset + i * this.inSlab;
    let slot = this.keys[0] === key ? 0 : this.keys[1] === key ? 1 : -1;
    if (slot < 0) {
      // Evict the least recently used slab: never the one the current output voxel also reads.
      slot = this.lastUse[0] <= this.lastUse[1] ? 0 : 1;
      this.keys[slot] = key;
      resampleSlice(this.src, null, key, this.slabs[slot], this.n1, this.n2, this.t1, this.t2, this.tmp);
    }
    this.lastUse[slot] = ++this.clock;
    return this.slabs[slot];
  }
}

/**
 * As resampleSeparable, the addon's kernel on the libuv thread pool (the event loop stays free);
 * where the addon is missing, the TS passes run here. With `window`, the result is
 * applyIntensityWindow's of the resampled values (the addon windows each value as it stores it:
 * one pass over the output instead of two, the same bits).
 */
export async function resampleSeparableAsync(
  src: Float32Array,
  channels: number,
  inShape: Shape3,
  outShape: Shape3,
  tables: readonly [AxisTable, AxisTable, AxisTable],
  layout?: OutputLayout,
  window?: IntensityWindowParameters,
): Promise<Float32Array> {
  const kernelWindow = window === undefined ? null : intensityWindowKernel(window);
  const kernels = volumeKernels();
  if (kernels === null) return windowed(resampleSeparable(src, channels, inShape, outShape, tables, layout), window);
  const [m0, m1, m2] = outShape;
  // In C order the kernel writes every voxel, so the array need not be zero-filled first.
  const out = layout === undefined ? uninitializedFloats(channels * m0 * m1 * m2) : new Float32Array(channels * m0 * m1 * m2);
  await kernels.resampleSeparableAsync(
    src, channels, inShape, tables, out, layout?.base ?? 0, layout?.strides ?? [m1 * m2, m2, 1], kernelWindow,
  );
  return out;
}

/** The TS paths' window: applied in place after the resampling (the same values as the fused kernels). */
function windowed(out: Float32Array, window: IntensityWindowParameters | undefined): Float32Array {
  if (window === undefined) return out;
  return applyIntensityWindow(out, window.aMin, window.aMax, window.bMin, window.bMax, window.clip, out);
}

/**
 * resampleAffine on the libuv thread pool where the addon has it (the event loop stays free; src
 * must not change before the promise settles), else the same TS loop. The same values. `window`
 * as for resampleSeparableAsync.
 */
export async function resampleAffineAsync(
  src: Float32Array,
  channels: number,
  inShape: Shape3,
  outShape: Shape3,
  xform: Float64Array,
  layout?: OutputLayout,
  window?: IntensityWindowParameters,
): Promise<Float32Array> {
  const kernelWindow = window === undefined ? null : intensityWindowKernel(window);
  const kernels = volumeKernels();
  if (kernels === null || !xform.every(Number.isFinite)) {
    return windowed(resampleAffine(src, channels, inShape, outShape, xform, layout), window);
  }
  const [m0, m1, m2] = outShape;
  const out = layout === undefined ? uninitializedFloats(channels * m0 * m1 * m2) : new Float32Array(channels * m0 * m1 * m2);
  await kernels.resampleAffineAsync(
    src, channels, inShape, outShape, xform, out, layout?.base ?? 0, layout?.strides ?? [m1 * m2, m2, 1], kernelWindow,
  );
  return out;
}

/**
 * Separable trilinear resampling of `channels` C-order volumes of `inShape` onto `outShape`,
 * with `tables[k]` driving axis k; output in C order or through `layout`.
 *
 * Works one output slab (fixed i) at a time so every intermediate stays in cache: either blend the
 * two source slabs along i first and then resample that slab in 2-D ("blend first", cheaper when i
 * shrinks), or resample each source slab in 2-D once and blend the results ("resample first",
 * cheaper when i grows).
 */
export function resampleSeparable(
  src: Float32Array,
  channels: number,
  inShape: Shape3,
  outShape: Shape3,
  tables: readonly [AxisTable, AxisTable, AxisTable],
  layout?: OutputLayout,
): Float32Array {
  const [n0, n1, n2] = inShape;
  const [m0, m1, m2] = outShape;
  const [t0, t1, t2] = tables;
  const inSlab = n1 * n2;
  const outSlab = m1 * m2;
  const inCount = n0 * inSlab;
  const outCount = m0 * outSlab;
  const out = new Float32Array(channels * outCount);
  const base = layout?.base ?? 0;
  const [o0, o1, o2] = layout?.strides ?? [outSlab, m2, 1];
  const kernels = volumeKernels();
  if (kernels !== null) {
    // The same passes in C++ (native/core/volume_kernels.cc).
    kernels.resampleSeparable(src, channels, inShape, tables, out, base, [o0, o1, o2]);
    return out;
  }
  const tmp = new Float64Array(Math.max(m1 * n2, n1 * m2));
  const perSlice = sliceCost(n1, n2, t1, t2);
  let used = 0;
  for (let q = 0; q < m0; q++) used += t0.wHi[q] === 0 ? 1 : 2;
  const blendFirst = t0.identity || m0 * (inSlab + perSlice) <= Math.min(used, n0) * perSlice + m0 * outSlab;
  const target: SlabTarget = { out, rowBase: 0, contiguous: isCOrder(layout, outShape), m1, m2, s1: o1, s2: o2 };

  if (blendFirst) {
    const slab = new Float64Array(inSlab);
    const finished = new Float64Array(outSlab);
    for (let c = 0; c < channels; c++) {
      const cIn = c * inCount;
      for (let q = 0; q < m0; q++) {
        const s0 = cIn + t0.lo[q] * inSlab;
        const w1 = t0.wHi[q];
        if (w1 === 0) {
          // Weight 1 on one source slab: resample it directly.
          resampleSlice(src, null, s0, finished, n1, n2, t1, t2, tmp);
        } else {
          blendSource(src, s0, t0.wLo[q], cIn + t0.hi[q] * inSlab, w1, slab);
          resampleSlice(null, slab, 0, finished, n1, n2, t1, t2, tmp);
        }
        target.rowBase = c * outCount + base + q * o0;
        blendSlabs(target, finished, 1, null, 0);
      }
    }
    return out;
  }

  const cache = new SlabCache(outSlab, src, inSlab, n1, n2, t1, t2, tmp);
  for (let c = 0; c < channels; c++) {
    const cIn = c * inCount;
    cache.reset();
    for (let q = 0; q < m0; q++) {
      const w1 = t0.wHi[q];
      const r0 = cache.get(cIn, t0.lo[q]);
      const r1 = w1 === 0 ? null : cache.get(cIn, t0.hi[q]);
      target.rowBase = c * outCount + base + q * o0;
      blendSlabs(target, r0, t0.wLo[q], r1, w1);
    }
  }
  return out;
}

/**
 * General trilinear resampling for any affine index map p = M q + t (`xform` row-major 4x4):
 * oblique or sheared cases where the axes do not separate.
 */
export function resampleAffine(
  src: Float32Array,
  channels: number,
  inShape: Shape3,
  outShape: Shape3,
  xform: Float64Array,
  layout?: OutputLayout,
): Float32Array {
  const [n0, n1, n2] = inShape;
  const [m0, m1, m2] = outShape;
  const inCount = n0 * n1 * n2;
  const outCount = m0 * m1 * m2;
  const out = new Float32Array(channels * outCount);
  const base = layout?.base ?? 0;
  const [o0, o1, o2] = layout?.strides ?? [m1 * m2, m2, 1];
  const kernels = volumeKernels();
  if (kernels !== null && xform.every(Number.isFinite)) {
    // The same arithmetic in C++ (native/core/volume_kernels.cc).
    kernels.resampleAffine(src, channels, inShape, outShape, xform, out, base, [o0, o1, o2]);
    return out;
  }
  const s0 = n1 * n2;
  const s1 = n2;
  const x = xform;
  for (let a = 0; a < m0; a++) {
    for (let b = 0; b < m1; b++) {
      for (let k = 0, o = base + a * o0 + b * o1; k < m2; k++, o += o2) {
        const p0 = clampIndex(x[0] * a + x[1] * b + x[2] * k + x[3], n0);
        const p1 = clampIndex(x[4] * a + x[5] * b + x[6] * k + x[7], n1);
        const p2 = clampIndex(x[8] * a + x[9] * b + x[10] * k + x[11], n2);
        const i0 = Math.floor(p0);
        const j0 = Math.floor(p1);
        const k0 = Math.floor(p2);
        const di = i0 < n0 - 1 ? s0 : 0;
        const dj = j0 < n1 - 1 ? s1 : 0;
        const dk = k0 < n2 - 1 ? 1 : 0;
        const wi1 = p0 - i0;
        const wi0 = i0 + 1 - p0;
        const wj1 = p1 - j0;
        const wj0 = j0 + 1 - p1;
        const wk1 = p2 - k0;
        const wk0 = k0 + 1 - p2;
        const base = i0 * s0 + j0 * s1 + k0;
        for (let c = 0, cOff = 0; c < channels; c++, cOff += inCount) {
          const p = base + cOff;
          const v00 = src[p] * wk0 + src[p + dk] * wk1;
          const v01 = src[p + dj] * wk0 + src[p + dj + dk] * wk1;
          const v10 = src[p + di] * wk0 + src[p + di + dk] * wk1;
          const v11 = src[p + di + dj] * wk0 + src[p + di + dj + dk] * wk1;
          out[c * outCount + o] = (v00 * wj0 + v01 * wj1) * wi0 + (v10 * wj0 + v11 * wj1) * wi1;
        }
      }
    }
  }
  return out;
}
