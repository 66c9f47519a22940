// The sliding window's batch stitch (accumulateWindowsAsync): one pass over a batch's union of
// windows, optionally split over threads, optionally storing each voxel's first value into
// uninitialised accumulators (the `covered` row state), against accumulateWindow applied window
// after window: the same bits, -0 and NaN payloads included. The values span many magnitudes, so
// a changed order of the float32 additions shows (a test below checks that it would).
import { afterEach, describe, expect, it } from 'vitest';
import { setStitchTuning, slidingWindowInference, windowStarts, type StitchTuning } from '../../src/inference/sliding-window.js';
import { mulberry32 } from '../../src/phantom/make-phantom.js';
import type { Shape3 } from '../../src/volume/volume.js';
import { fakeBackend } from '../unit/inference/sliding-window-fixtures.js';
import { bothWays, bytesOf, kernels, useNativeKernels } from './kernel-test-helpers.js';

useNativeKernels();

afterEach(() => {
  kernels().setKernelThreads(4, false);
});

interface Placement {
  roi: Shape3;
  lo: Shape3;
  hi: Shape3;
  shift: Shape3;
}

function flatten(placements: readonly Placement[]): Int32Array {
  return Int32Array.from(placements.flatMap((p) => [...p.roi, ...p.lo, ...p.hi, ...p.shift]));
}

/** The windows as slidingWindowInference places them (MONAI's starts, padding centred), in C order. */
function slidingPlacements(dims: Shape3, roi: Shape3, overlap: number): Placement[] {
  const axes = [0, 1, 2].map((d) => {
    const before = Math.floor((Math.max(dims[d], roi[d]) - dims[d]) / 2);
    return windowStarts(dims[d], roi[d], overlap).map((s) => ({
      lo: Math.max(0, before - s),
      hi: Math.min(roi[d], before + dims[d] - s),
      shift: s - before,
    }));
  });
  const out: Placement[] = [];
  for (const a of axes[0]) for (const b of axes[1]) for (const c of axes[2]) {
    out.push({ roi, lo: [a.lo, b.lo, c.lo], hi: [a.hi, b.hi, c.hi], shift: [a.shift, b.shift, c.shift] });
  }
  return out;
}

/** A random window inside (or partly padded around) the volume; sometimes empty. */
function randomPlacement(random: () => number, dims: Shape3, roi: Shape3): Placement {
  const lo = [0, 0, 0] as number[];
  const hi = [0, 0, 0] as number[];
  const shift = [0, 0, 0] as number[];
  for (let d = 0; d < 3; d++) {
    const start = Math.floor(random() * (dims[d] + roi[d] - 1)) - (roi[d] - 1);
    lo[d] = Math.max(0, -start);
    hi[d] = Math.min(roi[d], dims[d] - start);
    shift[d] = start;
  }
  return { roi, lo: lo as unknown as Shape3, hi: hi as unknown as Shape3, shift: shift as unknown as Shape3 };
}

/**
 * Floats over many magnitudes (so float32 sums depend on their order), with -0, +0, quiet and
 * signalling NaNs carrying payloads, and infinities sprinkled in where `specials`.
 */
function spreadFloats(count: number, seed: number, specials: boolean): Float32Array {
  const random = mulberry32(seed);
  const out = new Float32Array(count);
  const bits = new Uint32Array(out.buffer);
  for (let v = 0; v < count; v++) {
    const u = random();
    if (specials && u < 0.02) out[v] = -0;
    else if (specials && u < 0.025) bits[v] = 0x7fa00000 | ((v * 2654435761) & 0xfffff);
    else if (specials && u < 0.03) bits[v] = 0xffc00000 | (v & 0x3fffff);
    else if (specials && u < 0.031) out[v] = random() < 0.5 ? Infinity : -Infinity;
    else out[v] = (random() - 0.5) * 10 ** (random() * 12 - 6);
  }
  return out;
}

/**
 * The first indices whose bits differ from `expected`, NaN against NaN excepted: where two NaNs meet in
 * an add, which payload survives is the compiler's choice of operand order (IEEE 754 leaves it
 * open; the per-window and fused loops compile differently). A single NaN keeps its payload
 * through x + 0 and 0 + x alike, and that is checked bit for bit.
 */
function differences(actual: Float32Array, expected: Float32Array): number[] {
  expect(actual.length).toBe(expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const out: number[] = [];
  for (let v = 0; v < a.length && out.length < 10; v++) {
    if (a[v] !== e[v] && !(Number.isNaN(actual[v]) && Number.isNaN(expected[v]))) out.push(v);
  }
  return out;
}

/** accumulateWindow window after window, in `order`: the reference. */
function referenceStitch(
  acc: Float32Array, dims: Shape3, channels: number, logits: Float32Array, placements: readonly Placement[],
  importance: Float32Array | null, weightSum: Float32Array | null, order: readonly number[],
): void {
  const roiVolume = placements[0].roi[0] * placements[0].roi[1] * placements[0].roi[2];
  for (const q of order) {
    const p = placements[q];
    kernels().accumulateWindow(acc, dims, channels, logits, q * channels * roiVolume, p.roi, p.lo, p.hi, p.shift, importance, weightSum);
  }
}

const range = (n: number): number[] => Array.from({ length: n }, (_, q) => q);

// [threads for accumulateWindowsAsync, setKernelThreads(n, split)]: one thread, and the rows split
// into 2 and 3 ranges whatever the size (uneven ranges, ranges of one row).
const THREADS: [number, number, boolean][] = [[1, 4, false], [2, 2, true], [2, 3, true]];

describe('batch stitch in one pass over the union (accumulateWindowsAsync)', () => {
  for (const weighted of [false, true]) {
    it(`adds onto existing sums as accumulateWindow does window after window, ${weighted ? 'gaussian' : 'constant'}, batches of 1 to 4 random windows`, async () => {
      const dims: Shape3 = [19, 23, 29];
      const roi: Shape3 = [9, 12, 14];
      const roiVolume = roi[0] * roi[1] * roi[2];
      const voxels = dims[0] * dims[1] * dims[2];
      const channels = 2;
      const random = mulberry32(weighted ? 11 : 12);
      for (let trial = 0; trial < 12; trial++) {
        const count = 1 + (trial % 4);
        // Overlapping windows: most near one spot, some clipped by the border.
        const placements = range(count).map(() => randomPlacement(random, dims, roi));
        const logits = spreadFloats(count * channels * roiVolume, 100 + trial, true);
        const importance = weighted ? Float32Array.from(spreadFloats(roiVolume, 200 + trial, false), (v) => Math.abs(v) + 1e-3) : null;
        const start = spreadFloats(channels * voxels, 300 + trial, false);
        const weightStart = weighted ? spreadFloats(voxels, 400 + trial, false) : null;
        const expected = start.slice();
        const expectedWeights = weightStart?.slice() ?? null;
        referenceStitch(expected, dims, channels, logits, placements, importance, expectedWeights, range(count));
        for (const [threads, cap, split] of THREADS) {
          kernels().setKernelThreads(cap, split);
          const acc = start.slice();
          const weights = weightStart?.slice() ?? null;
          await kernels().accumulateWindowsAsync(acc, dims, channels, logits, flatten(placements), importance, weights, null, threads);
          expect(differences(acc, expected), `trial ${trial}, ${threads} threads`).toEqual([]);
          if (weights && expectedWeights) expect(differences(weights, expectedWeights)).toEqual([]);
        }
      }
    });
  }

  it('would see a changed order: the windows added in reverse give other bits', async () => {
    const dims: Shape3 = [12, 14, 16];
    const roi: Shape3 = [10, 10, 10];
    const roiVolume = roi[0] * roi[1] * roi[2];
    const placements = [0, 1, 2, 3].map((q): Placement => ({ roi, lo: [0, 0, 0], hi: [10, 10, 10], shift: [q % 2, (q >> 1) * 2, q] }));
    const logits = spreadFloats(4 * roiVolume, 7, false);
    const start = spreadFloats(dims[0] * dims[1] * dims[2], 8, false);
    const acc = start.slice();
    await kernels().accumulateWindowsAsync(acc, dims, 1, logits, flatten(placements), null, null);
    const inOrder = start.slice();
    referenceStitch(inOrder, dims, 1, logits, placements, null, null, [0, 1, 2, 3]);
    const reversed = start.slice();
    referenceStitch(reversed, dims, 1, logits, placements, null, null, [3, 2, 1, 0]);
    expect(bytesOf(acc)).toEqual(bytesOf(inOrder));
    expect(bytesOf(acc)).not.toEqual(bytesOf(reversed));
  });

  for (const weighted of [false, true]) {
    it(`stores each voxel's first value into uninitialised accumulators: the bits of adding onto zeroes, ${weighted ? 'gaussian' : 'constant'}`, async () => {
      // Interior windows with a shifted last window, and dims below the roi (padding) on some axes.
      const cases: { dims: Shape3; roi: Shape3; overlap: number; batch: number }[] = [
        { dims: [21, 26, 31], roi: [10, 12, 14], overlap: 0.5, batch: 4 },
        { dims: [7, 26, 9], roi: [10, 12, 14], overlap: 0.25, batch: 3 },
        { dims: [15, 8, 40], roi: [10, 12, 14], overlap: 0.6, batch: 1 },
        { dims: [13, 17, 30], roi: [10, 12, 14], overlap: 0.5, batch: 2 },
      ];
      for (const [index, { dims, roi, overlap, batch }] of cases.entries()) {
        const placements = slidingPlacements(dims, roi, overlap);
        const roiVolume = roi[0] * roi[1] * roi[2];
        const voxels = dims[0] * dims[1] * dims[2];
        const channels = 2;
        const logits = spreadFloats(placements.length * channels * roiVolume, 500 + index, true);
        const importance = weighted ? Float32Array.from(spreadFloats(roiVolume, 600 + index, false), (v) => Math.abs(v) + 1e-3) : null;
        const expected = new Float32Array(channels * voxels);
        const expectedWeights = weighted ? new Float32Array(voxels) : null;
        referenceStitch(expected, dims, channels, logits, placements, importance, expectedWeights, range(placements.length));
        for (const [threads, cap, split] of THREADS) {
          kernels().setKernelThreads(cap, split);
          // Garbage where nothing was written yet (NaN included): none of it may survive.
          const acc = spreadFloats(channels * voxels, 700 + index, true);
          const weights = weighted ? spreadFloats(voxels, 800 + index, true) : null;
          const covered = new Int32Array(dims[0] * dims[1]);
          for (let first = 0; first < placements.length; first += batch) {
            const part = placements.slice(first, first + batch);
            const partLogits = logits.subarray(first * channels * roiVolume, (first + part.length) * channels * roiVolume);
            await kernels().accumulateWindowsAsync(acc, dims, channels, partLogits, flatten(part), importance, weights, covered, threads);
          }
          expect([...covered].every((e) => e === dims[2])).toBe(true);
          kernels().zeroUncovered(acc, dims, channels, covered, weights);
          expect(differences(acc, expected), `case ${index}, ${threads} threads`).toEqual([]);
          if (weights && expectedWeights) expect(differences(weights, expectedWeights)).toEqual([]);
        }
      }
    });
  }

  it('stays exact where windows come out of C order or leave gaps: gaps zeroed, uncovered tails zeroed at the end', async () => {
    const dims: Shape3 = [11, 13, 37];
    const roi: Shape3 = [6, 7, 8];
    const roiVolume = roi[0] * roi[1] * roi[2];
    const voxels = dims[0] * dims[1] * dims[2];
    const random = mulberry32(31);
    for (let trial = 0; trial < 8; trial++) {
      const placements = range(9).map(() => randomPlacement(random, dims, roi));
      const logits = spreadFloats(placements.length * roiVolume, 900 + trial, true);
      const expected = new Float32Array(voxels);
      referenceStitch(expected, dims, 1, logits, placements, null, null, range(placements.length));
      const acc = spreadFloats(voxels, 1000 + trial, true);
      const covered = new Int32Array(dims[0] * dims[1]);
      for (let first = 0; first < placements.length; first += 3) {
        const part = placements.slice(first, first + 3);
        await kernels().accumulateWindowsAsync(acc, dims, 1, logits.subarray(first * roiVolume, (first + part.length) * roiVolume), flatten(part), null, null, covered, 1);
      }
      // Random windows leave voxels out: their rows' tails are still garbage here.
      expect([...covered].some((e) => e < dims[2])).toBe(true);
      kernels().zeroUncovered(acc, dims, 1, covered, null);
      expect(differences(acc, expected), `trial ${trial}`).toEqual([]);
    }
  });

  it('refuses a covered state that is not an Int32Array of one entry per row, at the call', () => {
    const dims: Shape3 = [5, 6, 7];
    const roi: Shape3 = [4, 4, 4];
    const acc = new Float32Array(2 * 5 * 6 * 7);
    const logits = new Float32Array(2 * 64);
    const placements = flatten([{ roi, lo: [0, 0, 0], hi: [4, 4, 4], shift: [1, 1, 1] }]);
    expect(() => kernels().accumulateWindowsAsync(acc, dims, 2, logits, placements, null, null, new Int32Array(29), 1)).toThrow(RangeError);
    expect(() => kernels().accumulateWindowsAsync(acc, dims, 2, logits, placements, null, null, new Float32Array(30) as unknown as Int32Array, 1)).toThrow(TypeError);
    expect(() => kernels().zeroUncovered(acc, dims, 2, new Int32Array(29), null)).toThrow(RangeError);
    expect(() => kernels().zeroUncovered(acc, dims, 2, null as unknown as Int32Array, null)).toThrow(TypeError);
    expect(() => kernels().zeroUncovered(acc.subarray(1), dims, 2, new Int32Array(30), null)).toThrow(RangeError);
  });

  it('treats out-of-range covered entries as bounds, never writing outside the row', async () => {
    const dims: Shape3 = [3, 4, 10];
    const roi: Shape3 = [3, 4, 6];
    const voxels = dims[0] * dims[1] * dims[2];
    const logits = Float32Array.from({ length: 3 * 4 * 6 }, (_, v) => (v + 1) * 0.5);
    const placements = flatten([{ roi, lo: [0, 0, 0], hi: [3, 4, 6], shift: [0, 0, 2] }]);
    // A guard after the accumulator: a write past a row's end would reach it from the last row.
    const backing = new Float32Array(voxels + 8).fill(5);
    const acc = backing.subarray(0, voxels);
    const covered = new Int32Array(12).fill(-1000);
    covered[11] = 1 << 30;
    await kernels().accumulateWindowsAsync(acc, dims, 1, logits, placements, null, null, covered, 1);
    expect([...backing.subarray(voxels)]).toEqual(new Array(8).fill(5));
    // A negative entry reads as 0: the row's [0, 2) gap zeroed, [2, 8) stored.
    expect(acc[0]).toBe(0);
    expect(acc[2]).toBe(logits[0]);
    // A huge one as "all written": added onto what was there.
    expect(acc[11 * 10 + 2]).toBe(Math.fround(5 + logits[11 * 6]));
  });
});

describe('page population beside a writer (populatePagesAsync)', () => {
  it('keeps every byte and resolves whether the kernel populated the pages', async () => {
    for (const [length, parts] of [[3 << 20, 2], [(5 << 20) + 13, 3], [1000, 1], [0, 4]] as const) {
      const view = spreadFloats(length, 51, true);
      const before = view.slice();
      const populated = await kernels().populatePagesAsync(view, parts, parts === 2);
      expect([0, 1]).toContain(populated);
      // Buffer.equals: vitest's deep equality lists the keys of a 20 MB array.
      expect(Buffer.from(bytesOf(view)).equals(bytesOf(before))).toBe(true);
    }
    expect(() => kernels().populatePagesAsync([] as unknown as Float32Array, 1, false)).toThrow(TypeError);
    expect(() => kernels().populatePagesAsync(new Float32Array(4), 0, false)).toThrow(RangeError);
  });
});

describe('slidingWindowInference under every stitch tuning', () => {
  const TUNINGS: Partial<StitchTuning>[] = [
    { fused: false, firstStore: false },
    { fused: true, firstStore: false, threads: 1 },
    { fused: true, firstStore: true, threads: 1 },
    { fused: true, firstStore: true, threads: 2, prefault: true },
    { fused: true, firstStore: true, threads: 1, prefault: true, hugePages: true },
  ];
  const cases: { shape: Shape3; roi: Shape3; overlap: number; swBatchSize: number; mode: 'constant' | 'gaussian' }[] = [
    { shape: [61, 45, 33], roi: [24, 20, 16], overlap: 0.5, swBatchSize: 4, mode: 'constant' },
    { shape: [61, 45, 9], roi: [24, 20, 12], overlap: 0.6, swBatchSize: 3, mode: 'gaussian' },
    { shape: [17, 50, 40], roi: [24, 20, 16], overlap: 0.25, swBatchSize: 2, mode: 'constant' },
    { shape: [30, 30, 30], roi: [24, 20, 16], overlap: 0.5, swBatchSize: 1, mode: 'gaussian' },
  ];
  for (const { shape, roi, overlap, swBatchSize, mode } of cases) {
    it(`gives the TS loops' bits, ${shape.join('x')}, batch ${swBatchSize}, ${mode}`, async () => {
      const image = spreadFloats(shape[0] * shape[1] * shape[2], shape[0], false).map((v) => Math.tanh(v));
      const previous = setStitchTuning({});
      try {
        for (const tuning of TUNINGS) {
          setStitchTuning({ ...previous, ...tuning });
          const { native, typescript } = await bothWays(async () => {
            const result = await slidingWindowInference(image, shape, fakeBackend(2, roi), { roiSize: roi, overlap, swBatchSize, mode, padValue: 0.25 });
            return result.logits;
          });
          expect(bytesOf(native), JSON.stringify(tuning)).toEqual(bytesOf(typescript));
        }
      } finally {
        setStitchTuning(previous);
      }
    });
  }
});
