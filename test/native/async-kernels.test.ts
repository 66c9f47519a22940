// The addon's kernels on the libuv pool (the *Async exports and their TS wrappers) against the
// synchronous kernels and the TS loops: the same bits, the same refusals (thrown at the call, before
// anything is queued). These are what keep the event loop free while a volume is segmented.
import { describe, expect, it } from 'vitest';
import { decidedRegionLabels, decidedRegionLabelsAsync, SURE_MARGIN } from '../../src/inference/decided-region.js';
import { softmax2 } from '../../src/inference/postprocess.js';
import { slidingWindowInference } from '../../src/inference/sliding-window.js';
import { setVolumeKernelsEnabled } from '../../src/native/volume-kernels.js';
import { mulberry32 } from '../../src/phantom/make-phantom.js';
import { summarizeMask, summarizeMaskAsync } from '../../src/volume/mask-summary.js';
import { orientToRas, orientToRasAsync } from '../../src/volume/orientation.js';
import { inverseSpacingMap, resampleToSpacing, resampleToSpacingAsync } from '../../src/volume/spacing.js';
import { axisTable, type AxisTable } from '../../src/volume/trilinear.js';
import type { Shape3, Vec3, Volume } from '../../src/volume/volume.js';
import { fakeBackend } from '../unit/inference/sliding-window-fixtures.js';
import { bothWays, bytesOf, kernels, randomFloats, shellLogits, useNativeKernels } from './kernel-test-helpers.js';

useNativeKernels();

/** A window placement: roi, lo, hi, shift (the layout gatherWindowsAsync and accumulateWindowsAsync take, 12 per window). */
interface Placement {
  roi: Shape3;
  lo: Shape3;
  hi: Shape3;
  shift: Shape3;
}

function flatten(placements: Placement[]): Int32Array {
  return Int32Array.from(placements.flatMap((p) => [...p.roi, ...p.lo, ...p.hi, ...p.shift]));
}

describe('batch gather and stitch on the pool (gatherWindowsAsync, accumulateWindowsAsync)', () => {
  const dims: Shape3 = [23, 19, 17];
  const roi: Shape3 = [8, 10, 6];
  const roiVolume = roi[0] * roi[1] * roi[2];
  // Inside, clipped at both ends (padding), and one with no voxel in the volume.
  const placements: Placement[] = [
    { roi, lo: [0, 0, 0], hi: [8, 10, 6], shift: [3, 2, 5] },
    { roi, lo: [2, 0, 1], hi: [8, 7, 6], shift: [-2, 12, -1] },
    { roi, lo: [0, 3, 0], hi: [5, 10, 4], shift: [18, -3, 13] },
    { roi, lo: [0, 0, 0], hi: [8, 10, 6], shift: [3, 3, 5] },
    { roi, lo: [4, 4, 2], hi: [4, 9, 6], shift: [0, 0, 0] },
  ];

  it('gathers every window as gatherWindow does, padding included', async () => {
    const image = randomFloats(dims[0] * dims[1] * dims[2], 3, 10);
    const batch = new Float32Array(placements.length * roiVolume).fill(99);
    await kernels().gatherWindowsAsync(image, dims, batch, flatten(placements), -1.5);
    const expected = new Float32Array(placements.length * roiVolume);
    placements.forEach((p, q) => kernels().gatherWindow(image, dims, expected, q * roiVolume, p.roi, p.lo, p.hi, p.shift, -1.5));
    expect(bytesOf(batch)).toEqual(bytesOf(expected));
    expect(batch.subarray(4 * roiVolume).every((v) => v === -1.5)).toBe(true);
  });

  for (const weighted of [false, true]) {
    it(`accumulates a batch in window order as accumulateWindow does, ${weighted ? 'weighted (gaussian)' : 'constant'}`, async () => {
      const channels = 3;
      const logits = randomFloats(placements.length * channels * roiVolume, 4, 7);
      const importance = weighted ? Float32Array.from(randomFloats(roiVolume, 5, 1), (v) => Math.abs(v) + 0.01) : null;
      const voxels = dims[0] * dims[1] * dims[2];
      // Start from a non-zero sum so the order of the float32 additions shows in the bits.
      const start = randomFloats(channels * voxels, 6, 1000);
      const acc = start.slice();
      const weights = weighted ? new Float32Array(voxels).fill(0.3) : null;
      await kernels().accumulateWindowsAsync(acc, dims, channels, logits, flatten(placements), importance, weights);
      const expected = start.slice();
      const expectedWeights = weighted ? new Float32Array(voxels).fill(0.3) : null;
      placements.forEach((p, q) =>
        kernels().accumulateWindow(expected, dims, channels, logits, q * channels * roiVolume, p.roi, p.lo, p.hi, p.shift, importance, expectedWeights),
      );
      expect(bytesOf(acc)).toEqual(bytesOf(expected));
      if (weights && expectedWeights) expect(bytesOf(weights)).toEqual(bytesOf(expectedWeights));
      expect(bytesOf(acc)).not.toEqual(bytesOf(start));
    });
  }

  it('refuses bad placements and short arrays at the call, before anything is queued', () => {
    const image = new Float32Array(dims[0] * dims[1] * dims[2]);
    const batch = new Float32Array(2 * roiVolume);
    const acc = new Float32Array(2 * image.length);
    const logits = new Float32Array(2 * 2 * roiVolume);
    const two = placements.slice(0, 2);
    const good = flatten(two);
    expect(() => kernels().gatherWindowsAsync(image, dims, batch, Float64Array.from(good) as unknown as Int32Array, 0)).toThrow(TypeError);
    expect(() => kernels().gatherWindowsAsync(image, dims, batch, good.subarray(0, 13), 0)).toThrow(RangeError);
    expect(() => kernels().gatherWindowsAsync(image, dims, batch, new Int32Array(0), 0)).toThrow(RangeError);
    expect(() => kernels().gatherWindowsAsync(image, dims, batch.subarray(1), good, 0)).toThrow(RangeError);
    expect(() => kernels().gatherWindowsAsync(image.subarray(1), dims, batch, good, 0)).toThrow(RangeError);
    const otherRoi = flatten([two[0], { ...two[1], roi: [8, 10, 7] }]);
    expect(() => kernels().gatherWindowsAsync(image, dims, batch, otherRoi, 0)).toThrow(RangeError);
    const outside = flatten([two[0], { ...two[1], shift: [16, 12, -1] }]);
    expect(() => kernels().gatherWindowsAsync(image, dims, batch, outside, 0)).toThrow(RangeError);
    expect(() => kernels().accumulateWindowsAsync(acc, dims, 2, logits, outside, null, null)).toThrow(RangeError);
    const inverted = flatten([{ ...two[0], lo: [5, 0, 0], hi: [4, 10, 6] }]);
    expect(() => kernels().accumulateWindowsAsync(acc, dims, 2, logits, inverted, null, null)).toThrow(RangeError);
    expect(() => kernels().accumulateWindowsAsync(acc, dims, 2, logits.subarray(1), good, null, null)).toThrow(RangeError);
    expect(() => kernels().accumulateWindowsAsync(acc.subarray(1), dims, 2, logits, good, null, null)).toThrow(RangeError);
    expect(() => kernels().accumulateWindowsAsync(acc, dims, 2, logits, good, new Float32Array(10), null)).toThrow(RangeError);
  });

  it('slidingWindowInference on the pool gives the TS loops\' bits past one batch, gaussian and padded', async () => {
    const shape: Shape3 = [61, 45, 9];
    const image = randomFloats(shape[0] * shape[1] * shape[2], 8, 3);
    const r: Shape3 = [24, 20, 12];
    const options = { roiSize: r, overlap: 0.6, swBatchSize: 3, mode: 'gaussian' as const, padValue: 0.5 };
    const { native, typescript } = await bothWays(async () => {
      const backend = fakeBackend(2, r, true);
      const result = await slidingWindowInference(image, shape, backend, options);
      return { logits: result.logits, windows: backend.windows, batches: result.batchCount };
    });
    expect(native.batches).toBeGreaterThan(3);
    // The batches reach the backend in order although their gathers run concurrently.
    expect(native.windows.map(bytesOf)).toEqual(typescript.windows.map(bytesOf));
    expect(bytesOf(native.logits)).toEqual(bytesOf(typescript.logits));
  });
});

describe('normalisation on the pool (divideByCoverageAsync, divideByWeightsAsync)', () => {
  it('gives the synchronous kernels\' bits', async () => {
    const dims: Shape3 = [7, 9, 11];
    const voxels = 7 * 9 * 11;
    const acc = randomFloats(2 * voxels, 9, 50);
    const coverage = [1, 2, 3].map((m, d) => Float64Array.from({ length: dims[d] }, (_, i) => 1 + ((i * m) % 4)));
    const expected = acc.slice();
    kernels().divideByCoverage(expected, dims, 2, coverage[0], coverage[1], coverage[2]);
    const actual = acc.slice();
    await kernels().divideByCoverageAsync(actual, dims, 2, coverage[0], coverage[1], coverage[2]);
    expect(bytesOf(actual)).toEqual(bytesOf(expected));
    const weights = Float32Array.from(randomFloats(voxels, 10, 2), (v) => Math.abs(v) + 0.1);
    kernels().divideByWeights(expected, 2, weights);
    await kernels().divideByWeightsAsync(actual, 2, weights);
    expect(bytesOf(actual)).toEqual(bytesOf(expected));
    expect(() => kernels().divideByCoverageAsync(actual, dims, 2, coverage[0], coverage[1].subarray(1), coverage[2])).toThrow(RangeError);
    expect(() => kernels().divideByWeightsAsync(actual.subarray(1), 2, weights)).toThrow(RangeError);
  });
});

describe('decided-region scans on the pool', () => {
  it('decideCornersAsync gives decideCorners\' states and count, -1 for a non-finite logit', async () => {
    const shape: Shape3 = [19, 23, 36];
    const voxels = shape[0] * shape[1] * shape[2];
    const random = mulberry32(12);
    const logits = new Float32Array(2 * voxels);
    for (let v = 0; v < voxels; v++) {
      const r = random();
      logits[voxels + v] = r < 0.8 ? -3 : r < 0.9 ? 6 : (random() - 0.5) * 4 * SURE_MARGIN;
    }
    const state = new Uint8Array(voxels);
    const rows = new Uint8Array(shape[0] * shape[1]);
    const count = kernels().decideCorners(logits, shape, SURE_MARGIN, state, rows);
    const asyncState = new Uint8Array(voxels);
    const asyncRows = new Uint8Array(shape[0] * shape[1]);
    expect(await kernels().decideCornersAsync(logits, shape, SURE_MARGIN, asyncState, asyncRows)).toBe(count);
    expect(count).toBeGreaterThan(0);
    expect(asyncState).toEqual(state);
    expect(asyncRows).toEqual(rows);
    logits[7] = NaN;
    expect(await kernels().decideCornersAsync(logits, shape, SURE_MARGIN, asyncState, asyncRows)).toBe(-1);
    expect(() => kernels().decideCornersAsync(logits.subarray(1), shape, SURE_MARGIN, asyncState, asyncRows)).toThrow(RangeError);
  });

  it('tableCubeLabelsAsync and affineCubeLabelsAsync give the synchronous scans\' labels, lists and counts, writing every label', async () => {
    const grid: Shape3 = [9, 8, 7];
    const out: Shape3 = [13, 11, 10];
    const random = mulberry32(13);
    const cube = Uint8Array.from({ length: 9 * 8 * 7 }, () => 1 + Math.floor(random() * 3));
    const rows = Uint8Array.from({ length: 9 * 8 }, () => (random() < 0.3 ? 1 : 0));
    const tables = [axisTable(0.7, 0.1, out[0], grid[0]), axisTable(0.72, -0.2, out[1], grid[1]), axisTable(0.69, 0.3, out[2], grid[2])] as [AxisTable, AxisTable, AxisTable];
    const strides: Shape3 = [-110, 10, -1];
    const base = 12 * 110 + 9;
    const xform = Float64Array.from([0.6, 0.1, 0, 0.2, -0.05, 0.7, 0.03, 0.4, 0.02, 0, 0.65, -0.3, 0, 0, 0, 1]);
    for (const [name, scan, scanAsync] of [
      ['tables', (l: Uint8Array, u: Int32Array) => kernels().tableCubeLabels(cube, grid, rows, tables, l, base, strides, u),
        (l: Uint8Array, u: Int32Array) => kernels().tableCubeLabelsAsync(cube, grid, rows, tables, l, base, strides, u)],
      ['affine', (l: Uint8Array, u: Int32Array) => kernels().affineCubeLabels(cube, grid, xform, out, l, base, strides, u),
        (l: Uint8Array, u: Int32Array) => kernels().affineCubeLabelsAsync(cube, grid, xform, out, l, base, strides, u)],
    ] as const) {
      const labels = new Uint8Array(13 * 11 * 10);
      const list = new Int32Array(13 * 11 * 10);
      const count = scan(labels, list);
      expect(count, name).toBeGreaterThan(10);
      // Every label is written, 0 or 1: the caller need not zero the array.
      const asyncLabels = new Uint8Array(13 * 11 * 10).fill(7);
      const asyncList = new Int32Array(13 * 11 * 10);
      expect(await scanAsync(asyncLabels, asyncList), name).toBe(count);
      expect(asyncLabels, name).toEqual(labels);
      expect(scan(new Uint8Array(13 * 11 * 10).fill(9), new Int32Array(13 * 11 * 10)), name).toBe(count);
      expect(asyncList, name).toEqual(list);
      // Past its capacity it still counts them all.
      expect(await scanAsync(new Uint8Array(13 * 11 * 10), new Int32Array(3)), name).toBe(count);
      expect(() => scanAsync(labels.subarray(1), list), name).toThrow(RangeError);
    }
  });

  const affines: [string, Float64Array][] = [
    ['flipped (separable inverse)', Float64Array.from([-0.8, 0, 0, 10, 0, -0.8, 0, 5, 0, 0, 2.5, -3, 0, 0, 0, 1])],
    // Sheared: the spacing grid keeps only the rotation, so the inverse mixes the axes.
    ['sheared (affine inverse)', Float64Array.from([0.8, 0.3, 0, 10, 0, 0.8, 0, 5, 0, 0.2, 2.5, -3, 0, 0, 0, 1])],
  ];
  for (const [name, affine] of affines) {
    it(`decidedRegionLabelsAsync gives decidedRegionLabels' labels and the TS loops', ${name}`, async () => {
      const volume: Volume = { data: new Float32Array(40 * 36 * 20), shape: [40, 36, 20], spacingMm: [0.8, 0.8, 2.5], affine };
      const { volume: ras, orientation } = orientToRas(volume);
      const { volume: grid, resampling } = resampleToSpacing(ras, [1.5, 1.5, 2.0]);
      expect(inverseSpacingMap(resampling)?.tables === null).toBe(name.startsWith('sheared'));
      const logits = shellLogits(grid.shape, 14);
      const { native, typescript } = await bothWays(() => decidedRegionLabelsAsync(logits, resampling, orientation));
      expect(native).not.toBeNull();
      expect(native!.reduce((a, b) => a + b, 0)).toBeGreaterThan(100);
      expect(native).toEqual(typescript);
      expect(native).toEqual(decidedRegionLabels(logits, resampling, orientation));
    });
  }
});

describe('the shell blend in the addon (blendTableVoxels, jsExp)', () => {
  it('jsExp is V8\'s Math.exp to the bit (softmax arguments, the reduction\'s branch points, special values)', () => {
    const random = mulberry32(21);
    const f32 = new Float32Array(1);
    const inputs = [0, -0, 1, -1, 0.5, -0.5, 1e-30, -1e-30, 0.34657, 0.3466, 1.0397, 1.0398, -1.0398, 709.78, 710, -745.1, -746, Infinity, -Infinity, NaN];
    for (let i = 0; i < 200_000; i++) {
      f32[0] = -random() * 120;
      inputs.push(f32[0], (random() - 0.5) * 4, (random() - 0.5) * 1500);
    }
    const differing = inputs.filter((x) => !Object.is(kernels().jsExp(x), Math.exp(x)));
    expect(differing).toEqual([]);
  });

  it('labels the listed voxels as the TS softmax and blend do; refuses a list outside the grid', () => {
    const grid: Shape3 = [9, 8, 7];
    const out: Shape3 = [13, 11, 10];
    const n = 9 * 8 * 7;
    const random = mulberry32(22);
    // Near-ties: the labels turn on the last bits of the softmax.
    const logits = Float32Array.from({ length: 2 * n }, (_, v) => (v < n ? 0 : (random() - 0.5) * 0.02));
    const tables = [axisTable(0.7, 0.1, out[0], grid[0]), axisTable(0.72, -0.2, out[1], grid[1]), axisTable(0.69, 0.3, out[2], grid[2])] as [AxisTable, AxisTable, AxisTable];
    const all = Int32Array.from({ length: 13 * 11 * 10 }, (_, q) => q);
    const labels = new Uint8Array(13 * 11 * 10);
    kernels().blendTableVoxels(logits, grid, tables, all, all.length, labels, 0, [110, 10, 1]);
    // The reference: softmax2 at every tap, blendIsForeground's expression.
    const p = new Float32Array(2 * n);
    for (let v = 0; v < n; v++) softmax2(logits, p, n, v);
    const expected = new Uint8Array(13 * 11 * 10);
    for (let a = 0; a < out[0]; a++) {
      for (let b = 0; b < out[1]; b++) {
        for (let c = 0; c < out[2]; c++) {
          const [t0, t1, t2] = tables;
          const v = (t0.lo[a] * 8 + t1.lo[b]) * 7 + t2.lo[c];
          const di = (t0.hi[a] - t0.lo[a]) * 56;
          const dj = (t1.hi[b] - t1.lo[b]) * 7;
          const dk = t2.hi[c] - t2.lo[c];
          const value = [0, 1].map((ch) => {
            const at = v + ch * n;
            const v00 = p[at] * t2.wLo[c] + p[at + dk] * t2.wHi[c];
            const v01 = p[at + dj] * t2.wLo[c] + p[at + dj + dk] * t2.wHi[c];
            const v10 = p[at + di] * t2.wLo[c] + p[at + di + dk] * t2.wHi[c];
            const v11 = p[at + di + dj] * t2.wLo[c] + p[at + di + dj + dk] * t2.wHi[c];
            return Math.fround((v00 * t1.wLo[b] + v01 * t1.wHi[b]) * t0.wLo[a] + (v10 * t1.wLo[b] + v11 * t1.wHi[b]) * t0.wHi[a]);
          });
          if (value[1] > value[0]) expected[(a * 11 + b) * 10 + c] = 1;
        }
      }
    }
    expect(expected.reduce((x, y) => x + y, 0)).toBeGreaterThan(50);
    expect(labels).toEqual(expected);
    expect(() => kernels().blendTableVoxels(logits, grid, tables, Int32Array.of(13 * 11 * 10), 1, labels, 0, [110, 10, 1])).toThrow(RangeError);
    expect(() => kernels().blendTableVoxels(logits.subarray(1), grid, tables, all, 1, labels, 0, [110, 10, 1])).toThrow(RangeError);
    expect(() => kernels().blendTableVoxelsAsync(logits, grid, tables, all, all.length + 1, labels, 0, [110, 10, 1])).toThrow(RangeError);
  });
});

describe('a copy on the pool (copyFloatsAsync, the onnxruntime worker\'s input)', () => {
  it('copies bit for bit (NaN payloads, -0), refuses a short target at the call', async () => {
    const src = randomFloats(100_003, 23, 10);
    new Uint32Array(src.buffer).set([0x7fc00001, 0xffa00000, 0x80000000], 7);
    const dst = new Float32Array(100_010).fill(3);
    await kernels().copyFloatsAsync(src, dst);
    expect(bytesOf(dst.subarray(0, src.length))).toEqual(bytesOf(src));
    expect(dst[src.length]).toBe(3);
    expect(() => kernels().copyFloatsAsync(src, new Float32Array(10))).toThrow(RangeError);
  });
});

describe('mask summary on the pool (summarizeMaskAsync)', () => {
  it('gives summarizeMask\'s summary with and without the addon', async () => {
    const shape: Shape3 = [23, 31, 17];
    const affine = Float64Array.from([-0.8, 0.1, 0, 12, 0, 0.75, 0.2, -30, 0, 0, 2.5, 7, 0, 0, 0, 1]);
    const random = mulberry32(15);
    for (const mask of [Uint8Array.from({ length: 23 * 31 * 17 }, () => (random() < 0.05 ? 1 : 0)), new Uint8Array(23 * 31 * 17)]) {
      const { native, typescript } = await bothWays(() => summarizeMaskAsync(mask, shape, affine));
      expect(native).toEqual(summarizeMask(mask, shape, affine));
      expect(typescript).toEqual(native);
    }
    expect(() => kernels().summarizeLabelsAsync(new Uint8Array(10), shape, new Float64Array(10))).toThrow(RangeError);
  });
});

describe('reorientation and oblique resampling on the pool', () => {
  const shape: Shape3 = [19, 37, 23];
  const data = randomFloats(shape[0] * shape[1] * shape[2], 16, 100);
  const spacing: Vec3 = [0.7, 1.1, 2.5];

  it('orientToRasAsync gives orientToRas\' bits for every permutation and flip, with and without the addon', async () => {
    for (const perm of [[0, 1, 2], [1, 2, 0], [2, 1, 0]]) {
      for (let signs = 0; signs < 8; signs += 3) {
        const affine = new Float64Array(16);
        affine[15] = 1;
        perm.forEach((world, i) => (affine[world * 4 + i] = (signs >> i) & 1 ? -spacing[i] : spacing[i]));
        const volume: Volume = { data, shape, spacingMm: spacing, affine };
        const reference = orientToRas(volume);
        const { native, typescript } = await bothWays(() => orientToRasAsync(volume));
        for (const result of [native, typescript]) {
          expect(result.volume.shape).toEqual(reference.volume.shape);
          expect(result.orientation).toEqual(reference.orientation);
          expect(bytesOf(result.volume.data), `perm ${perm} signs ${signs}`).toEqual(bytesOf(reference.volume.data));
        }
      }
    }
    expect(() => kernels().gatherStridedAsync(data, 1, [19, 37, 24], [851, 23, 1], 0, new Float32Array(19 * 37 * 24))).toThrow(RangeError);
  });

  it('resampleToSpacingAsync gives resampleToSpacing\'s bits on an oblique and on an axis-aligned grid', async () => {
    const oblique = Float64Array.from([0.66, 0.5, 0, 3, -0.37, 0.9, 0, -2, 0, 0.3, 2.5, 1, 0, 0, 0, 1]);
    const aligned = Float64Array.from([0.7, 0, 0, 0, 0, 1.1, 0, 0, 0, 0, 2.5, 0, 0, 0, 0, 1]);
    for (const affine of [oblique, aligned]) {
      const volume: Volume = { data, shape, spacingMm: spacing, affine };
      const { native, typescript } = await bothWays(() => resampleToSpacingAsync(volume, [1.5, 1.5, 2]));
      setVolumeKernelsEnabled(false);
      const reference = resampleToSpacing(volume, [1.5, 1.5, 2]);
      setVolumeKernelsEnabled(true);
      expect(reference.resampling.skipped).toBe(false);
      // The sheared grid takes the affine kernel, the aligned one the separable kernel.
      expect(inverseSpacingMap(reference.resampling)?.tables === null).toBe(affine === oblique);
      for (const result of [native, typescript]) {
        expect(result.resampling).toEqual(reference.resampling);
        expect(bytesOf(result.volume.data)).toEqual(bytesOf(reference.volume.data));
      }
    }
    const xform = new Float64Array(16).fill(NaN);
    const out = new Float32Array(8);
    expect(() => kernels().resampleAffineAsync(data, 1, shape, [2, 2, 2], xform, out, 0, [4, 2, 1])).toThrow(RangeError);
  });
});
