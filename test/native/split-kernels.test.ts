// The kernels that split their work over threads (output ranges on the idle cores) against
// themselves on one thread and against the TS loops: the split changes no bit, no list order and no
// count. setKernelThreads(n, true) splits every such kernel into n ranges whatever its size, so
// small inputs exercise uneven ranges, ranges of one slab and more ranges than the cores.
import { afterEach, describe, expect, it } from 'vitest';
import { decidedRegionLabels, decidedRegionLabelsAsync } from '../../src/inference/decided-region.js';
import { volumeKernels } from '../../src/native/volume-kernels.js';
import { mulberry32 } from '../../src/phantom/make-phantom.js';
import { applyIntensityWindowAsync } from '../../src/volume/intensity.js';
import { orientToRas } from '../../src/volume/orientation.js';
import { resampleToSpacing, resampleToSpacingAsync } from '../../src/volume/spacing.js';
import { axisTable, type AxisTable } from '../../src/volume/trilinear.js';
import type { Shape3, Volume } from '../../src/volume/volume.js';
import { bothWays, bytesOf, kernels, randomFloats, shellLogits, useNativeKernels } from './kernel-test-helpers.js';

useNativeKernels();

// [threads, split whatever the size]; the first is the unsplit reference.
const SPLITS: [number, boolean][] = [[1, false], [2, true], [3, true], [4, true]];

/** compute() under each split setting; the default (4, by size) restored after. */
async function underEachSplit<T>(compute: () => T | Promise<T>): Promise<T[]> {
  const results: T[] = [];
  try {
    for (const [threads, split] of SPLITS) {
      kernels().setKernelThreads(threads, split);
      results.push(await compute());
    }
  } finally {
    kernels().setKernelThreads(4, false);
  }
  return results;
}

afterEach(() => {
  volumeKernels()?.setKernelThreads(4, false);
});

describe('kernels split over threads give the one-thread bits', () => {
  const grid: Shape3 = [9, 8, 7];
  const out: Shape3 = [13, 11, 10];
  const outVoxels = 13 * 11 * 10;
  const random = mulberry32(21);
  const cube = Uint8Array.from({ length: 9 * 8 * 7 }, () => 1 + Math.floor(random() * 3));
  const rows = Uint8Array.from({ length: 9 * 8 }, () => (random() < 0.3 ? 1 : 0));
  const tables = [axisTable(0.7, 0.1, out[0], grid[0]), axisTable(0.72, -0.2, out[1], grid[1]), axisTable(0.69, 0.3, out[2], grid[2])] as [AxisTable, AxisTable, AxisTable];
  const strides: Shape3 = [-110, 10, -1];
  const base = 12 * 110 + 9;

  it('tableCubeLabels: the same labels, the same list in scan order, the same count, below and past capacity, sync and async', async () => {
    const full = await underEachSplit(async () => {
      const labels = new Uint8Array(outVoxels).fill(7);
      const list = new Int32Array(outVoxels).fill(-5);
      const count = kernels().tableCubeLabels(cube, grid, rows, tables, labels, base, strides, list);
      const asyncLabels = new Uint8Array(outVoxels).fill(9);
      const asyncList = new Int32Array(outVoxels).fill(-5);
      const asyncCount = await kernels().tableCubeLabelsAsync(cube, grid, rows, tables, asyncLabels, base, strides, asyncList);
      return { labels, list, count, asyncLabels, asyncList, asyncCount };
    });
    const reference = full[0];
    expect(reference.count).toBeGreaterThan(50);
    // The list is in scan order: increasing output indices.
    const listed = reference.list.subarray(0, reference.count);
    expect(listed.every((q, u) => u === 0 || q > listed[u - 1])).toBe(true);
    for (const result of full) {
      expect(result.count).toBe(reference.count);
      expect(result.asyncCount).toBe(reference.count);
      expect(result.labels).toEqual(reference.labels);
      expect(result.asyncLabels).toEqual(reference.labels);
      expect(result.list).toEqual(reference.list);
      expect(result.asyncList).toEqual(reference.list);
    }
    // A capacity that ends inside a later range: the first `capacity` of the full list, the rest untouched.
    for (const capacity of [3, Math.floor(reference.count * 0.6)]) {
      const truncated = await underEachSplit(async () => {
        const list = new Int32Array(capacity + 4).subarray(0, capacity);
        const count = await kernels().tableCubeLabelsAsync(cube, grid, rows, tables, new Uint8Array(outVoxels), base, strides, list);
        return { count, list: new Int32Array(list.buffer) };
      });
      for (const result of truncated) {
        expect(result.count).toBe(reference.count);
        expect(result.list.subarray(0, capacity)).toEqual(reference.list.subarray(0, capacity));
        expect(result.list.subarray(capacity)).toEqual(new Int32Array(4));
      }
    }
  });

  it('blendTableVoxels: the same labels', async () => {
    const n = grid[0] * grid[1] * grid[2];
    const logits = randomFloats(2 * n, 22, 1);
    const all = Int32Array.from({ length: outVoxels }, (_, q) => q);
    const results = await underEachSplit(async () => {
      const labels = new Uint8Array(outVoxels);
      kernels().blendTableVoxels(logits, grid, tables, all, all.length, labels, base, strides);
      const asyncLabels = new Uint8Array(outVoxels);
      await kernels().blendTableVoxelsAsync(logits, grid, tables, all, all.length, asyncLabels, base, strides);
      return { labels, asyncLabels };
    });
    const ones = results[0].labels.reduce((a, b) => a + b, 0);
    expect(ones).toBeGreaterThan(100);
    expect(ones).toBeLessThan(outVoxels - 100);
    for (const result of results) {
      expect(result.labels).toEqual(results[0].labels);
      expect(result.asyncLabels).toEqual(results[0].labels);
    }
  });

  it('divideByCoverage: the same bits', async () => {
    const dims: Shape3 = [7, 9, 11];
    const acc = randomFloats(2 * 7 * 9 * 11, 23, 50);
    const coverage = [1, 2, 3].map((m, d) => Float64Array.from({ length: dims[d] }, (_, i) => 1 + ((i * m) % 4) / 3));
    const results = await underEachSplit(async () => {
      const sync = acc.slice();
      kernels().divideByCoverage(sync, dims, 2, coverage[0], coverage[1], coverage[2]);
      const pooled = acc.slice();
      await kernels().divideByCoverageAsync(pooled, dims, 2, coverage[0], coverage[1], coverage[2]);
      return [bytesOf(sync), bytesOf(pooled)];
    });
    for (const [sync, pooled] of results) {
      expect(sync).toEqual(results[0][0]);
      expect(pooled).toEqual(results[0][0]);
    }
  });

  it('the intensity window: the same bits as one thread and as the TS loop, in place and not, clipped and not', async () => {
    const data = randomFloats(5001, 24, 2000);
    data[17] = NaN;
    data[18] = -0;
    for (const clip of [true, false]) {
      const results = await underEachSplit(async () => {
        const { native, typescript } = await bothWays(() => applyIntensityWindowAsync(data, -57, 164, 0, 1, clip, new Float32Array(data.length)));
        expect(bytesOf(native)).toEqual(bytesOf(typescript));
        const inPlace = data.slice();
        await applyIntensityWindowAsync(inPlace, -57, 164, 0, 1, clip, inPlace);
        expect(bytesOf(inPlace)).toEqual(bytesOf(native));
        return bytesOf(native);
      });
      for (const result of results) expect(result).toEqual(results[0]);
    }
  });

  it('decidedRegionLabelsAsync and resampleToSpacingAsync: the TS loops\' labels and bits under every split', async () => {
    const volume: Volume = {
      data: randomFloats(40 * 36 * 20, 25, 300),
      shape: [40, 36, 20],
      spacingMm: [0.8, 0.8, 2.5],
      affine: Float64Array.from([-0.8, 0, 0, 10, 0, -0.8, 0, 5, 0, 0, 2.5, -3, 0, 0, 0, 1]),
    };
    const { volume: ras, orientation } = orientToRas(volume);
    const { volume: spaced, resampling } = resampleToSpacing(ras, [1.5, 1.5, 2.0]);
    const logits = shellLogits(spaced.shape, 26);
    const expectedLabels = decidedRegionLabels(logits, resampling, orientation);
    const results = await underEachSplit(async () => {
      const { native, typescript } = await bothWays(() => decidedRegionLabelsAsync(logits, resampling, orientation));
      expect(native).toEqual(typescript);
      const resampled = await bothWays(() => resampleToSpacingAsync(ras, [1.5, 1.5, 2.0]));
      expect(bytesOf(resampled.native.volume.data)).toEqual(bytesOf(resampled.typescript.volume.data));
      return native;
    });
    expect(expectedLabels!.reduce((a, b) => a + b, 0)).toBeGreaterThan(100);
    for (const labels of results) expect(labels).toEqual(expectedLabels);
  });

  it('setKernelThreads refuses a thread count that is not an integer from 1 to 64', () => {
    expect(() => kernels().setKernelThreads(0, false)).toThrow(RangeError);
    expect(() => kernels().setKernelThreads(1.5, false)).toThrow(RangeError);
    expect(() => kernels().setKernelThreads(2, 1 as unknown as boolean)).toThrow(TypeError);
  });
});
