// Passes fused into the kernels (issue 13, "fewer passes"): the intensity window applied by the
// resampling kernels as they store each value. Each must give the bits of the separate passes it
// replaces (the TS loops: resampling, then the window), for every window branch, specials in the
// input (NaN, -0, infinities, subnormals, values on the window's edges), every resampling path
// (blend first, resample first, identity and flipped axes, strided layouts, the oblique kernel),
// split over threads or not, and through segmentVolume on every geometry path.
import { afterEach, describe, expect, it } from 'vitest';
import { volumeKernels } from '../../src/native/volume-kernels.js';
import { mulberry32 } from '../../src/phantom/make-phantom.js';
import { BUNDLE_PIPELINE, type IntensityWindow, type PipelineParameters } from '../../src/model/manifest.js';
import { segmentVolume } from '../../src/segment-volume.js';
import { applyIntensityWindow, intensityWindowKernel } from '../../src/volume/intensity.js';
import { resampleToSpacingAsync } from '../../src/volume/spacing.js';
import {
  axisTable, resampleAffine, resampleAffineAsync, resampleSeparable, resampleSeparableAsync, type AxisTable, type OutputLayout,
} from '../../src/volume/trilinear.js';
import type { Shape3, Volume } from '../../src/volume/volume.js';
import { fakeBackend } from '../unit/inference/sliding-window-fixtures.js';
import { bothWays, bytesOf, kernels, useNativeKernels } from './kernel-test-helpers.js';

useNativeKernels();

afterEach(() => {
  volumeKernels()?.setKernelThreads(4, false);
});

// Every branch of the window: the bundle's (scale 1, clipped), a scaled unclipped one, a clipped
// scaled one, an inverted clamp (lo > hi), and a zero input range (shift only).
const WINDOWS: IntensityWindow[] = [
  { aMin: -57, aMax: 164, bMin: 0, bMax: 1, clip: true },
  { aMin: -100.5, aMax: 300.25, bMin: -2, bMax: 3.3, clip: false },
  { aMin: 0, aMax: 1000, bMin: -1, bMax: 1, clip: true },
  { aMin: -57, aMax: 164, bMin: 1, bMax: 0, clip: true },
  { aMin: 5, aMax: 5, bMin: 0.5, bMax: 2, clip: true },
];

const SPECIALS = [NaN, -0, 0, Infinity, -Infinity, -57, 164, 1e-42, -1e-40, 3e38, -3e38, 5, 1000, -100.5];

/** CT-like values with the specials scattered in (a NaN or infinity spreads to its neighbours' taps). */
function ctValues(count: number, seed: number, specials: boolean): Float32Array {
  const random = mulberry32(seed);
  const data = Float32Array.from({ length: count }, () => (random() - 0.35) * 700);
  if (specials) for (let s = 0; s < SPECIALS.length; s++) data[Math.floor(random() * count)] = SPECIALS[s];
  // Exact edges and near-edges of the bundle's window survive where no special lands nearby.
  for (let i = 0; i < count; i += 97) data[i] = [-57, 164, Math.fround(-57.00001), Math.fround(163.99999)][i % 4];
  return data;
}

/** The separate passes: the TS resampling loops, then the TS window in place. */
function separatePasses(resampled: () => Float32Array, w: IntensityWindow): Float32Array {
  const out = resampled();
  return applyIntensityWindow(out, w.aMin, w.aMax, w.bMin, w.bMax, w.clip, out);
}

async function withTsLoops<T>(compute: () => T): Promise<T> {
  return (await bothWays(() => compute())).typescript;
}

const IN: Shape3 = [11, 13, 12];

// Axis 0 shrinking (blend first), growing (resample first), identity; axes 1/2 identity or not,
// flipped (reading n - 1 - p, as resampleFlippedToSpacing does).
function tableSets(): { name: string; outShape: Shape3; tables: [AxisTable, AxisTable, AxisTable] }[] {
  const flip = (t: AxisTable, n: number): AxisTable => ({ ...t, lo: t.lo.map((p) => n - 1 - p), hi: t.hi.map((p) => n - 1 - p), identity: false });
  const shrink = [axisTable(1.6, 0.2, 7, IN[0]), axisTable(1.3, -0.1, 10, IN[1]), axisTable(0.9, 0.05, 13, IN[2])] as [AxisTable, AxisTable, AxisTable];
  const grow = [axisTable(0.55, 0.1, 19, IN[0]), axisTable(0.8, 0.3, 15, IN[1]), axisTable(1, 0, IN[2], IN[2])] as [AxisTable, AxisTable, AxisTable];
  const ident = [axisTable(1, 0, IN[0], IN[0]), axisTable(0.7, 0, 17, IN[1]), axisTable(1, 0, IN[2], IN[2])] as [AxisTable, AxisTable, AxisTable];
  const flipped = [flip(shrink[0], IN[0]), shrink[1], flip(shrink[2], IN[2])] as [AxisTable, AxisTable, AxisTable];
  const shapeOf = (t: AxisTable[]): Shape3 => [t[0].lo.length, t[1].lo.length, t[2].lo.length];
  return [
    { name: 'blend first', outShape: shapeOf(shrink), tables: shrink },
    { name: 'resample first', outShape: shapeOf(grow), tables: grow },
    { name: 'identity axes', outShape: shapeOf(ident), tables: ident },
    { name: 'flipped axes', outShape: shapeOf(flipped), tables: flipped },
  ];
}

describe('the intensity window fused into the resampling kernels', () => {
  it('resampleSeparable: the bits of resampling then windowing, for every window branch, path, layout and channel count', async () => {
    let checked = 0;
    for (const { name, outShape, tables } of tableSets()) {
      for (const channels of [1, 2]) {
        const src = ctValues(channels * IN[0] * IN[1] * IN[2], 31 + channels, true);
        for (const w of WINDOWS) {
          const expected = await withTsLoops(() => separatePasses(() => resampleSeparable(src, channels, IN, outShape, tables), w));
          const fused = await resampleSeparableAsync(src, channels, IN, outShape, tables, undefined, w);
          expect(bytesOf(fused), `${name}, ${channels} channel(s), window ${JSON.stringify(w)}`).toEqual(bytesOf(expected));
          // The synchronous kernel takes the window too.
          const sync = new Float32Array(fused.length);
          const [m0, m1, m2] = outShape;
          kernels().resampleSeparable(src, channels, IN, tables, sync, 0, [m1 * m2, m2, 1], intensityWindowKernel(w));
          expect(bytesOf(sync)).toEqual(bytesOf(expected));
          checked++;
        }
      }
    }
    expect(checked).toBe(4 * 2 * WINDOWS.length);
  });

  it('resampleSeparable through a strided layout: every voxel windowed where the layout puts it', async () => {
    const { outShape, tables } = tableSets()[0];
    const [m0, m1, m2] = outShape;
    // Axes 1 and 2 swapped, axes 0 and 2 reversed: every voxel once, none in C order.
    const layout: OutputLayout = { base: (m0 - 1) * m1 * m2 + (m2 - 1) * m1, strides: [-m1 * m2, 1, -m1] };
    const src = ctValues(IN[0] * IN[1] * IN[2], 41, true);
    for (const w of WINDOWS) {
      const expected = await withTsLoops(() => separatePasses(() => resampleSeparable(src, 1, IN, outShape, tables, layout), w));
      const fused = await resampleSeparableAsync(src, 1, IN, outShape, tables, layout, w);
      expect(bytesOf(fused)).toEqual(bytesOf(expected));
    }
  });

  it('resampleAffine (oblique): the bits of resampling then windowing, plain and strided', async () => {
    const c = Math.cos(0.3);
    const s = Math.sin(0.3);
    const xform = Float64Array.from([0.9 * c, -0.9 * s, 0.1, 1.2, 0.8 * s, 0.8 * c, 0, -0.7, 0.05, 0.1, 1.1, 0.4, 0, 0, 0, 1]);
    const outShape: Shape3 = [12, 14, 11];
    const [m0, m1, m2] = outShape;
    const layout: OutputLayout = { base: (m0 - 1) * m1 * m2, strides: [-m1 * m2, m2, 1] };
    for (const channels of [1, 2]) {
      const src = ctValues(channels * IN[0] * IN[1] * IN[2], 51 + channels, true);
      for (const w of WINDOWS) {
        for (const l of [undefined, layout]) {
          const expected = await withTsLoops(() => separatePasses(() => resampleAffine(src, channels, IN, outShape, xform, l), w));
          const fused = await resampleAffineAsync(src, channels, IN, outShape, xform, l, w);
          expect(bytesOf(fused), `${channels} channel(s), ${l ? 'strided' : 'C order'}, ${JSON.stringify(w)}`).toEqual(bytesOf(expected));
        }
        const sync = new Float32Array(channels * m0 * m1 * m2);
        kernels().resampleAffine(src, channels, IN, outShape, xform, sync, 0, [m1 * m2, m2, 1], intensityWindowKernel(w));
        const expected = await withTsLoops(() => separatePasses(() => resampleAffine(src, channels, IN, outShape, xform), w));
        expect(bytesOf(sync)).toEqual(bytesOf(expected));
      }
    }
  });

  it('split over threads: the same bits', async () => {
    const { outShape, tables } = tableSets()[1];
    const src = ctValues(IN[0] * IN[1] * IN[2], 61, true);
    const w = WINDOWS[0];
    const expected = await withTsLoops(() => separatePasses(() => resampleSeparable(src, 1, IN, outShape, tables), w));
    for (const [threads, split] of [[1, false], [2, true], [3, true], [4, true]] as const) {
      kernels().setKernelThreads(threads, split);
      expect(bytesOf(await resampleSeparableAsync(src, 1, IN, outShape, tables, undefined, w))).toEqual(bytesOf(expected));
    }
  });

  it('refuses a window that is not an object or has bad fields (TypeError at the call), and bad window parameters', async () => {
    const { outShape, tables } = tableSets()[0];
    const [m0, m1, m2] = outShape;
    const src = ctValues(IN[0] * IN[1] * IN[2], 71, false);
    const out = new Float32Array(m0 * m1 * m2);
    const call = (window: unknown) => () =>
      kernels().resampleSeparable(src, 1, IN, tables, out, 0, [m1 * m2, m2, 1], window as never);
    expect(call([1, 2, 3])).toThrow(TypeError);
    expect(call(7)).toThrow(TypeError);
    expect(call({ ...intensityWindowKernel(WINDOWS[0]), a: 'x' })).toThrow(TypeError);
    expect(call({ ...intensityWindowKernel(WINDOWS[0]), clip: 1 })).toThrow(TypeError);
    expect(call(null)).not.toThrow();
    await expect(resampleSeparableAsync(src, 1, IN, outShape, tables, undefined, { ...WINDOWS[0], aMax: NaN })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
  });

  it('resampleToSpacingAsync with a window: windowed where it resamples, the caller\'s data untouched where MONAI skips', async () => {
    const w = WINDOWS[0];
    const resampled: Volume = {
      data: ctValues(20 * 18 * 9, 81, true), shape: [20, 18, 9], spacingMm: [0.8, 0.8, 2.5],
      affine: Float64Array.from([0.8, 0, 0, 1, 0, 0.8, 0, 2, 0, 0, 2.5, 3, 0, 0, 0, 1]),
    };
    const { native, typescript } = await bothWays(() => resampleToSpacingAsync(resampled, [1.5, 1.5, 2.0], w));
    expect(native.windowed).toBe(true);
    expect(bytesOf(native.volume.data)).toEqual(bytesOf(typescript.volume.data));
    const plain = await withTsLoops(async () => (await resampleToSpacingAsync(resampled, [1.5, 1.5, 2.0])).volume.data);
    const expected = applyIntensityWindow(await plain, w.aMin, w.aMax, w.bMin, w.bMax, w.clip);
    expect(bytesOf(native.volume.data)).toEqual(bytesOf(expected));

    const onGrid: Volume = { ...resampled, spacingMm: [1.5, 1.5, 2], affine: Float64Array.from([1.5, 0, 0, 1, 0, 1.5, 0, 2, 0, 0, 2, 3, 0, 0, 0, 1]) };
    const before = onGrid.data.slice();
    const skipped = await resampleToSpacingAsync(onGrid, [1.5, 1.5, 2.0], w);
    expect(skipped.windowed).toBe(false);
    expect(skipped.volume.data).toBe(onGrid.data);
    expect(bytesOf(onGrid.data)).toEqual(bytesOf(before));
  });
});

describe('segmentVolume with the fused preprocessing: the TS loops\' network input and mask on every geometry path', () => {
  const roi: Shape3 = [16, 16, 16];
  const params: PipelineParameters = { ...BUNDLE_PIPELINE, roiSize: roi, swBatchSize: 2 };
  const c = Math.cos(0.25);
  const s = Math.sin(0.25);
  // [name, affine]: LPS (flips folded into the resampling), a permutation (reoriented first), an
  // oblique grid (the affine kernel), and a grid already at 1.5 x 1.5 x 2 (MONAI skips: the window
  // then runs on its own).
  const geometries: [string, number[]][] = [
    ['flipped (LPS)', [-0.9, 0, 0, 30, 0, -0.9, 0, 20, 0, 0, 2.5, -10, 0, 0, 0, 1]],
    ['permuted', [0, 0, 2.5, 1, 0.9, 0, 0, 2, 0, 0.9, 0, 3, 0, 0, 0, 1]],
    ['oblique', [0.9 * c, -0.9 * s, 0, 1, 0.9 * s, 0.9 * c, 0, 2, 0, 0, 2.5, 3, 0, 0, 0, 1]],
    ['skipped', [1.5, 0, 0, 1, 0, 1.5, 0, 2, 0, 0, 2, 3, 0, 0, 0, 1]],
  ];
  for (const [name, affine] of geometries) {
    it(name, async () => {
      const volume: Volume = { data: ctValues(30 * 28 * 12, 91, false), shape: [30, 28, 12], spacingMm: [0.9, 0.9, 2.5], affine: Float64Array.from(affine) };
      const original = volume.data.slice();
      const run = () => segmentVolume(volume, fakeBackend(2, roi), params, { keepStages: true });
      const { native, typescript } = await bothWays(run);
      expect(bytesOf(native.stages!.preprocessed.data)).toEqual(bytesOf(typescript.stages!.preprocessed.data));
      expect(native.mask.data).toEqual(typescript.mask.data);
      // The network input is windowed: inside [0, 1] (no NaN in this input).
      expect(native.stages!.preprocessed.data.every((v) => v >= 0 && v <= 1)).toBe(true);
      // The decided-region path (no stages kept) gives the same mask.
      const decided = await segmentVolume(volume, fakeBackend(2, roi), params);
      expect(decided.mask.data).toEqual(native.mask.data);
      expect(bytesOf(volume.data)).toEqual(bytesOf(original));
    });
  }
});

describe('divideByCoverage by exact reciprocal products: the quotients\' bits', () => {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  /** The float32 `steps` representable values above x (below for negative steps), x finite and positive. */
  function nextFloat(x: number, steps: number): number {
    f32[0] = x;
    u32[0] += steps;
    return f32[0];
  }

  /** The first element whose bits differ (-1: none); toEqual on a million elements is slow. */
  function firstDifference(a: Float32Array, b: Float32Array): number {
    const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
    const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
    if (x.length !== y.length) return 0;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
    return -1;
  }

  /** acc[c][i][j][k] / (c0[i] * c1[j] * c2[k]) in double, rounded to float32: the TS normalise. */
  function reference(acc: Float32Array, dims: Shape3, channels: number, c: [Float64Array, Float64Array, Float64Array]): Float32Array {
    const out = acc.slice();
    const [n0, n1, n2] = dims;
    const voxels = n0 * n1 * n2;
    for (let ch = 0; ch < channels; ch++) {
      for (let i = 0; i < n0; i++) {
        for (let j = 0; j < n1; j++) {
          const cij = c[0][i] * c[1][j];
          const row = ch * voxels + (i * n1 + j) * n2;
          for (let k = 0; k < n2; k++) out[row + k] = acc[row + k] / (cij * c[2][k]);
        }
      }
    }
    return out;
  }

  it('near-midpoint quotients, every divisor up to 2^24, specials, subnormals and tiny values', async () => {
    const dims: Shape3 = [48, 40, 96];
    const [n0, n1, n2] = dims;
    const random = mulberry32(101);
    const counts = (n: number, max: number) => Float64Array.from({ length: n }, (_, i) => (i < 4 ? [1, 2, 3, 256][i] : 1 + Math.floor(random() * max)));
    const c: [Float64Array, Float64Array, Float64Array] = [counts(n0, 256), counts(n1, 256), counts(n2, 27)];
    const channels = 2;
    const voxels = n0 * n1 * n2;
    const acc = new Float32Array(channels * voxels);
    for (let ch = 0; ch < channels; ch++) {
      for (let i = 0; i < n0; i++) {
        for (let j = 0; j < n1; j++) {
          for (let k = 0; k < n2; k++) {
            const d = c[0][i] * c[1][j] * c[2][k];
            const o = ch * voxels + (i * n1 + j) * n2 + k;
            const kind = random();
            if (kind < 0.6) {
              // x as close as float32 allows to d times a float32 rounding midpoint (the quotients
              // a reciprocal could round the other way), or one step off it.
              const y = Math.fround((random() + 0.5) * 2 ** Math.floor(random() * 180 - 90)) * (random() < 0.5 ? -1 : 1);
              const m = (Math.abs(y) + Math.abs(nextFloat(Math.abs(y), 1))) / 2;
              const x = Math.fround(d * m) * Math.sign(y);
              acc[o] = Math.abs(x) > 0 && Number.isFinite(x) ? nextFloat(Math.abs(x), Math.floor(random() * 3) - 1) * Math.sign(x) : x;
            } else if (kind < 0.8) {
              acc[o] = (random() - 0.5) * 2 ** Math.floor(random() * 60 - 20);
            } else if (kind < 0.9) {
              // A subnormal quotient exactly on a midpoint, (2t + 1) 2^-150 (x = d (2t + 1) 2^-150 is
              // a float32 where d is even): ties to even; a reciprocal's product may not.
              const t = Math.floor(random() * 1000);
              const n = (d * (2 * t + 1)) / 2;
              acc[o] = Number.isInteger(n) && n < 2 ** 23 ? n * 2 ** -149 * (random() < 0.5 ? -1 : 1) : 2 ** -140;
            } else {
              const specials = [0, -0, NaN, Infinity, -Infinity, 2 ** -100, -(2 ** -100), 2 ** -101, 1e-45, -3e-42, 3.4e38, 2 ** -90];
              acc[o] = specials[Math.floor(random() * specials.length)];
            }
          }
        }
      }
    }
    const expected = reference(acc, dims, channels, c);
    const sync = acc.slice();
    kernels().divideByCoverage(sync, dims, channels, c[0], c[1], c[2]);
    expect(firstDifference(sync, expected)).toBe(-1);
    for (const [threads, split] of [[1, false], [2, true], [4, true]] as const) {
      kernels().setKernelThreads(threads, split);
      const pooled = acc.slice();
      await kernels().divideByCoverageAsync(pooled, dims, channels, c[0], c[1], c[2]);
      expect(firstDifference(pooled, expected)).toBe(-1);
    }
  });

  it('counts that are not small integers (fractional, over 256) divide as before', () => {
    const dims: Shape3 = [3, 4, 50];
    const acc = Float32Array.from({ length: 2 * 600 }, (_, v) => Math.fround(Math.sin(v) * 1e3 + 1e-3));
    for (const c of [
      [Float64Array.of(1, 1.5, 2), Float64Array.of(1, 2, 3, 4), Float64Array.from({ length: 50 }, (_, k) => 1 + (k % 5))],
      [Float64Array.of(1, 300, 2), Float64Array.of(1, 2, 3, 4), Float64Array.from({ length: 50 }, () => 3)],
    ] as [Float64Array, Float64Array, Float64Array][]) {
      const expected = reference(acc, dims, 2, c);
      const out = acc.slice();
      kernels().divideByCoverage(out, dims, 2, c[0], c[1], c[2]);
      expect(bytesOf(out)).toEqual(bytesOf(expected));
    }
  });
});
