import { describe, expect, it } from 'vitest';
import { SpleenTrtError } from '../../../src/errors.js';
import type { InferenceBackend } from '../../../src/inference/backend.js';
import { computeImportanceMap } from '../../../src/inference/importance-map.js';
import { slidingWindowInference, windowStarts, type SlidingWindowProgress } from '../../../src/inference/sliding-window.js';
import type { Shape3 } from '../../../src/volume/volume.js';
import { fakeBackend, fakeNetworkValue, fixtureIndex, readF32, windowTerms } from './sliding-window-fixtures.js';

/** Deterministic values in [0, 1) with exact 0s and 1s, as the intensity window produces. */
function testImage(shape: Shape3, seed: number): Float32Array {
  const out = new Float32Array(shape[0] * shape[1] * shape[2]);
  let s = seed >>> 0;
  for (let v = 0; v < out.length; v++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    out[v] = u < 0.08 ? 0 : u > 0.95 ? 1 : u;
  }
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let v = 0; v < a.length; v++) {
    const d = Math.abs(a[v] - b[v]);
    if (!(d <= m)) m = d;
  }
  return m;
}

interface NaiveOptions {
  roi: Shape3;
  overlap: number;
  mode: 'constant' | 'gaussian';
  sigmaScale: number;
  padValue: number;
  channels: number;
}

/** Starts by the spec's closed form (independent of windowStarts' MONAI loop). */
function specStarts(size: number, roi: number, overlap: number): number[] {
  if (size === roi) return [0];
  const interval = Math.max(1, Math.trunc(roi * (1 - overlap)));
  const count = Math.ceil((size - roi) / interval) + 1;
  return Array.from({ length: count }, (_, k) => Math.min(k * interval, size - roi));
}

function naiveGaussian(roi: Shape3, sigmaScale: number, a: number, b: number, c: number): number {
  const g = (n: number, i: number): number => {
    const x = i - (n - 1) / 2;
    const sigma = n * sigmaScale;
    return Math.fround(Math.exp(Math.fround(Math.fround(x * x) / Math.fround(-2 * sigma * sigma))));
  };
  const w = Math.fround(Math.fround(g(roi[0], a) * g(roi[1], b)) * g(roi[2], c));
  return Math.max(w, Math.fround(1e-3));
}

/**
 * A straightforward per-voxel sliding window: pad the whole volume, visit windows in C order, run
 * the fake network voxel by voxel, accumulate on the padded grid, divide, crop.
 */
function naiveSlidingWindow(image: Float32Array, shape: Shape3, o: NaiveOptions): Float32Array {
  const { roi, channels } = o;
  const P = [0, 1, 2].map((d) => Math.max(shape[d], roi[d]));
  const before = [0, 1, 2].map((d) => Math.floor((P[d] - shape[d]) / 2));
  const pv = P[0] * P[1] * P[2];
  const padded = new Float32Array(pv).fill(o.padValue);
  for (let i = 0; i < shape[0]; i++)
    for (let j = 0; j < shape[1]; j++)
      for (let k = 0; k < shape[2]; k++)
        padded[((i + before[0]) * P[1] + j + before[1]) * P[2] + k + before[2]] = image[(i * shape[1] + j) * shape[2] + k];
  const terms = windowTerms(roi);
  const acc = new Float32Array(channels * pv);
  const count = new Float32Array(pv);
  const st = [0, 1, 2].map((d) => specStarts(P[d], roi[d], o.overlap));
  for (const s0 of st[0])
    for (const s1 of st[1])
      for (const s2 of st[2])
        for (let a = 0; a < roi[0]; a++)
          for (let b = 0; b < roi[1]; b++)
            for (let c = 0; c < roi[2]; c++) {
              const p = ((s0 + a) * P[1] + s1 + b) * P[2] + s2 + c;
              const local = (a * roi[1] + b) * roi[2] + c;
              const w = o.mode === 'constant' ? 1 : naiveGaussian(roi, o.sigmaScale, a, b, c);
              for (let ch = 0; ch < channels; ch++) {
                const y = fakeNetworkValue(ch, padded[p], local, terms);
                acc[ch * pv + p] = Math.fround(acc[ch * pv + p] + Math.fround(y * w));
              }
              count[p] = Math.fround(count[p] + w);
            }
  const out = new Float32Array(channels * shape[0] * shape[1] * shape[2]);
  let v = 0;
  for (let ch = 0; ch < channels; ch++)
    for (let i = 0; i < shape[0]; i++)
      for (let j = 0; j < shape[1]; j++)
        for (let k = 0; k < shape[2]; k++) {
          const p = ((i + before[0]) * P[1] + j + before[1]) * P[2] + k + before[2];
          out[v++] = Math.fround(acc[ch * pv + p] / count[p]);
        }
  return out;
}

describe('windowStarts', () => {
  it('gives the spec examples for the bundle ROI', () => {
    expect(windowStarts(139, 96, 0.5)).toEqual([0, 43]);
    expect(windowStarts(160, 96, 0.5)).toEqual([0, 48, 64]);
    expect(windowStarts(96, 96, 0.5)).toEqual([0]);
    expect(windowStarts(95, 96, 0.5)).toEqual([0]);
    expect(windowStarts(1, 96, 0.5)).toEqual([0]);
    expect(windowStarts(192, 96, 0.5)).toEqual([0, 48, 96]);
    expect(windowStarts(148, 96, 0.5)).toEqual([0, 48, 52]);
  });

  it('has ceil((size - 96) / 48) + 1 windows above the ROI size, ending at the border', () => {
    for (let size = 97; size <= 400; size++) {
      const s = windowStarts(size, 96, 0.5);
      expect(s.length).toBe(Math.ceil((size - 96) / 48) + 1);
      expect(s[s.length - 1]).toBe(size - 96);
      expect(s).toEqual(specStarts(size, 96, 0.5));
    }
  });

  it("matches MONAI's _get_scan_interval + dense_patch_slices", () => {
    expect(fixtureIndex.windows.length).toBeGreaterThan(50);
    for (const c of fixtureIndex.windows) {
      expect({ ...c, starts: windowStarts(c.size, c.roi, c.overlap) }).toEqual(c);
    }
  });

  it('rejects bad arguments', () => {
    expect(() => windowStarts(0, 96, 0.5)).toThrow(RangeError);
    expect(() => windowStarts(100, 96.5, 0.5)).toThrow(RangeError);
    expect(() => windowStarts(100, 96, 1)).toThrow(/Expected a number in \[0, 1\) for overlap/);
    expect(() => windowStarts(100, 96, -0.1)).toThrow(RangeError);
  });
});

describe('slidingWindowInference against MONAI', () => {
  for (const c of fixtureIndex.sliding) {
    it(`case ${c.name}: ${c.shape.join('x')} roi ${c.roiSize.join('x')} overlap ${c.overlap} sw ${c.swBatchSize} ${c.mode} pad ${c.padValue} C=${c.channels}`, async () => {
      const image = readF32(c.inputFile);
      const expected = readF32(c.outputFile);
      const backend = fakeBackend(c.channels, c.roiSize);
      const options = {
        roiSize: c.roiSize,
        overlap: c.overlap,
        swBatchSize: c.swBatchSize,
        mode: c.mode,
        sigmaScale: c.sigmaScale,
        padValue: c.padValue,
      };
      const result = await slidingWindowInference(image, c.shape, backend, options);
      expect(result.channels).toBe(c.channels);
      expect(result.logits.length).toBe(expected.length);
      expect(maxAbsDiff(result.logits, expected)).toBeLessThanOrEqual(1e-6);
      const windows = c.shape.reduce((n, s, d) => n * windowStarts(s, c.roiSize[d], c.overlap).length, 1);
      expect(result.windowCount).toBe(windows);
      expect(result.batchCount).toBe(Math.ceil(windows / c.swBatchSize));
      // padding the last batch changes nothing
      const padded = await slidingWindowInference(image, c.shape, fakeBackend(c.channels, c.roiSize), {
        ...options,
        padLastBatch: true,
      });
      expect(padded.logits).toEqual(result.logits);
    });
  }
});

describe('slidingWindowInference against a per-voxel implementation', () => {
  const cases: [Shape3, NaiveOptions, number][] = [
    [[13, 20, 6], { roi: [8, 8, 8], overlap: 0.5, mode: 'constant', sigmaScale: 0.125, padValue: 0, channels: 2 }, 4],
    [[13, 20, 6], { roi: [8, 8, 8], overlap: 0.25, mode: 'gaussian', sigmaScale: 0.125, padValue: 0, channels: 2 }, 3],
    [[5, 17, 11], { roi: [8, 6, 5], overlap: 0.5, mode: 'gaussian', sigmaScale: 0.25, padValue: -0.5, channels: 3 }, 2],
    [[3, 4, 2], { roi: [6, 7, 5], overlap: 0.5, mode: 'constant', sigmaScale: 0.125, padValue: 0.75, channels: 2 }, 4],
    [[30, 11, 19], { roi: [9, 11, 6], overlap: 0.7, mode: 'gaussian', sigmaScale: 0.2, padValue: 0, channels: 2 }, 7],
    [[25, 9, 26], { roi: [7, 4, 7], overlap: 0, mode: 'constant', sigmaScale: 0.125, padValue: 0, channels: 3 }, 1],
  ];
  for (const [shape, o, sw] of cases) {
    it(`${shape.join('x')} roi ${o.roi.join('x')} overlap ${o.overlap} ${o.mode} sw ${sw}`, async () => {
      const image = testImage(shape, shape[0] * 1000 + shape[1]);
      const result = await slidingWindowInference(image, shape, fakeBackend(o.channels, o.roi), {
        roiSize: o.roi,
        overlap: o.overlap,
        mode: o.mode,
        sigmaScale: o.sigmaScale,
        padValue: o.padValue,
        swBatchSize: sw,
      });
      // Same float32 operations in the same order: bit-identical.
      expect(result.logits).toEqual(naiveSlidingWindow(image, shape, o));
    });
  }

  it('matches per-voxel sums at the bundle geometry (137x137x148, 96^3, 12 windows), both modes', async () => {
    const shape: Shape3 = [137, 137, 148];
    const roi: Shape3 = [96, 96, 96];
    const image = testImage(shape, 7);
    const terms = windowTerms(roi);
    const starts = shape.map((n) => specStarts(n, 96, 0.5));
    expect(starts).toEqual([[0, 41], [0, 41], [0, 48, 52]]);
    for (const mode of ['constant', 'gaussian'] as const) {
      const result = await slidingWindowInference(image, shape, fakeBackend(2, roi), { mode });
      expect(result.windowCount).toBe(12);
      expect(result.batchCount).toBe(3);
      const weights = computeImportanceMap(roi, mode);
      let seed = 1;
      for (let t = 0; t < 3000; t++) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        const v = seed % image.length;
        const idx = [Math.floor(v / (137 * 148)), Math.floor(v / 148) % 137, v % 148];
        for (let ch = 0; ch < 2; ch++) {
          let acc = 0;
          let count = 0;
          for (const s0 of starts[0])
            for (const s1 of starts[1])
              for (const s2 of starts[2]) {
                const l = [idx[0] - s0, idx[1] - s1, idx[2] - s2];
                if (l.some((x) => x < 0 || x >= 96)) continue;
                const local = (l[0] * 96 + l[1]) * 96 + l[2];
                const y = fakeNetworkValue(ch, image[v], local, terms);
                acc = Math.fround(acc + Math.fround(y * weights[local]));
                count = Math.fround(count + weights[local]);
              }
          expect(result.logits[ch * image.length + v]).toBe(Math.fround(acc / count));
        }
      }
    }
  });
});

describe('slidingWindowInference windows and batches', () => {
  // Each voxel holds its own linear index (exact in float32), so a window reveals where it was cut.
  const shape: Shape3 = [17, 12, 10];
  const roi: Shape3 = [8, 8, 8];
  const image = Float32Array.from({ length: 17 * 12 * 10 }, (_, v) => v);

  it('visits windows in C order (dim 0 slowest) and gathers them exactly', async () => {
    const backend = fakeBackend(2, roi, true);
    const result = await slidingWindowInference(image, shape, backend, { roiSize: roi, swBatchSize: 3 });
    expect([windowStarts(17, 8, 0.5), windowStarts(12, 8, 0.5), windowStarts(10, 8, 0.5)]).toEqual([[0, 4, 8, 9], [0, 4], [0, 2]]);
    const expectedOrigins: number[][] = [];
    for (const a of [0, 4, 8, 9]) for (const b of [0, 4]) for (const c of [0, 2]) expectedOrigins.push([a, b, c]);
    expect(result.windowCount).toBe(16);
    expect(backend.windows.length).toBe(16);
    backend.windows.forEach((w, n) => {
      const [s0, s1, s2] = expectedOrigins[n];
      for (let a = 0; a < 8; a++)
        for (let b = 0; b < 8; b++)
          for (let c = 0; c < 8; c++) {
            if (w[(a * 8 + b) * 8 + c] !== ((s0 + a) * 12 + s1 + b) * 10 + s2 + c) {
              throw new Error(`window ${n} voxel ${a},${b},${c} = ${w[(a * 8 + b) * 8 + c]}`);
            }
          }
    });
  });

  it('runs consecutive batches of swBatchSize with a partial last batch, or pads it when asked', async () => {
    for (const [sw, sizes] of [
      [3, [3, 3, 3, 3, 3, 1]],
      [4, [4, 4, 4, 4]],
      [5, [5, 5, 5, 1]],
      [7, [7, 7, 2]],
      [16, [16]],
      [20, [16]],
    ] as [number, number[]][]) {
      const backend = fakeBackend(2, roi);
      const result = await slidingWindowInference(image, shape, backend, { roiSize: roi, swBatchSize: sw });
      expect(backend.batches).toEqual(sizes);
      expect(result.batchCount).toBe(sizes.length);
      const paddedBackend = fakeBackend(2, roi, true);
      const padded = await slidingWindowInference(image, shape, paddedBackend, { roiSize: roi, swBatchSize: sw, padLastBatch: true });
      expect(paddedBackend.batches).toEqual(sizes.map(() => sw));
      const extra = sw * sizes.length - 16;
      for (const w of paddedBackend.windows.slice(16)) expect(w.every((x) => x === 0)).toBe(true);
      expect(paddedBackend.windows.length).toBe(16 + extra);
      expect(padded.logits).toEqual(result.logits);
    }
  });

  it('reports progress after every batch and sums the backend timings', async () => {
    const seen: SlidingWindowProgress[] = [];
    const result = await slidingWindowInference(image, shape, fakeBackend(2, roi), {
      roiSize: roi,
      swBatchSize: 5,
      onProgress: (p) => seen.push({ ...p }),
    });
    expect(seen).toEqual([
      { windowsDone: 5, windowsTotal: 16, batchIndex: 0, batchCount: 4 },
      { windowsDone: 10, windowsTotal: 16, batchIndex: 1, batchCount: 4 },
      { windowsDone: 15, windowsTotal: 16, batchIndex: 2, batchCount: 4 },
      { windowsDone: 16, windowsTotal: 16, batchIndex: 3, batchCount: 4 },
    ]);
    expect(result.timings.computeMs).toBe(4);
    expect(result.timings.h2dMs).toBe(1);
    expect(result.timings.d2hMs).toBe(2);
    expect(result.timings.stitchMs).toBeGreaterThanOrEqual(0);
    expect(result.timings.totalMs).toBeGreaterThanOrEqual(result.timings.stitchMs);
  });

  it('pads dimensions below the ROI floor-before / ceil-after with the pad value and crops back', async () => {
    const small: Shape3 = [5, 3, 9];
    const img = Float32Array.from({ length: 5 * 3 * 9 }, (_, v) => v + 1);
    const r: Shape3 = [8, 6, 4];
    const backend = fakeBackend(2, r, true);
    const result = await slidingWindowInference(img, small, backend, { roiSize: r, padValue: -2, overlap: 0.5 });
    // dim 0: 5 -> 8, 1 before, 2 after; dim 1: 3 -> 6, 1 before, 2 after; dim 2: 9 >= 4, starts [0, 2, 4, 5]
    expect(result.windowCount).toBe(4);
    backend.windows.forEach((w, n) => {
      const s2 = [0, 2, 4, 5][n];
      for (let a = 0; a < 8; a++)
        for (let b = 0; b < 6; b++)
          for (let c = 0; c < 4; c++) {
            const i = a - 1;
            const j = b - 1;
            const inside = i >= 0 && i < 5 && j >= 0 && j < 3;
            const want = inside ? img[(i * 3 + j) * 9 + s2 + c] : -2;
            if (w[(a * 6 + b) * 4 + c] !== want) throw new Error(`window ${n} voxel ${a},${b},${c}`);
          }
    });
    expect(result.logits.length).toBe(2 * img.length);
    expect(result.logits).toEqual(
      naiveSlidingWindow(img, small, { roi: r, overlap: 0.5, mode: 'constant', sigmaScale: 0.125, padValue: -2, channels: 2 }),
    );
  });
});

describe('slidingWindowInference errors', () => {
  const shape: Shape3 = [10, 10, 10];
  const roi: Shape3 = [8, 8, 8];
  const image = new Float32Array(1000);

  it('rejects with ERR_ABORTED between batches', async () => {
    const controller = new AbortController();
    const backend = fakeBackend(2, roi);
    const run = slidingWindowInference(image, shape, backend, {
      roiSize: roi,
      swBatchSize: 2,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.batchIndex === 0) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ name: 'SpleenTrtError', code: 'ERR_ABORTED' });
    // 8 windows in 4 batches: batches 0 and 1 were queued before the abort, nothing after it.
    expect(backend.batches).toEqual([2, 2]);
    const before = fakeBackend(2, roi);
    await expect(slidingWindowInference(image, shape, before, { roiSize: roi, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(SpleenTrtError);
    expect(before.batches).toEqual([]);
  });

  it('rejects a backend that returns the wrong number of logits with ERR_INFERENCE_FAILED', async () => {
    const good = fakeBackend(2, roi);
    const bad: InferenceBackend = { ...good, outputChannels: 3, run: good.run };
    await expect(slidingWindowInference(image, shape, bad, { roiSize: roi })).rejects.toMatchObject({ code: 'ERR_INFERENCE_FAILED' });
  });

  it('rejects caller mistakes before running anything', async () => {
    const backend = fakeBackend(2, roi);
    const bad = (o: object, img: unknown = image, s: unknown = shape) =>
      slidingWindowInference(img as Float32Array, s as Shape3, backend, { roiSize: roi, ...o });
    await expect(bad({}, new Float64Array(1000))).rejects.toThrow(/Expected a Float32Array for image/);
    await expect(bad({}, new Float32Array(999))).rejects.toThrow(RangeError);
    await expect(bad({}, image, [10, 10])).rejects.toThrow(TypeError);
    await expect(bad({}, image, [10, 10, 0])).rejects.toThrow(RangeError);
    await expect(bad({ overlap: 1 })).rejects.toThrow(/overlap/);
    await expect(bad({ swBatchSize: 0 })).rejects.toThrow(/swBatchSize/);
    await expect(bad({ mode: 'linear' })).rejects.toThrow(/mode/);
    await expect(bad({ mode: 'gaussian', sigmaScale: 0 })).rejects.toThrow(/sigmaScale/);
    await expect(bad({ padValue: Number.NaN })).rejects.toThrow(/padValue/);
    await expect(bad({ roiSize: [8, 8, 8.5] })).rejects.toThrow(/roiSize/);
    expect(backend.batches).toEqual([]);
  });
});
