/**
 * Findings 4, 6, 7 and 12 on the Segmenter: sizes refused before allocating, caller mistakes
 * rejected (not thrown), a bounded and inspectable queue, queued runs aborted at once, timeouts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePhantom, Segmenter, type Volume } from '../../../src/index.js';

// 48x40x12 at 3x3x8 mm: one to two windows.
const small = makePhantom({ shape: [48, 40, 12], spacingMm: [3, 3, 8], seed: 3 }).image;

function withAffine(volume: Volume, diag: [number, number, number], extra: Partial<Record<number, number>> = {}): Volume {
  const affine = new Float64Array([diag[0], 0, 0, 0, 0, diag[1], 0, 0, 0, 0, diag[2], 0, 0, 0, 0, 1]);
  for (const [i, v] of Object.entries(extra)) affine[Number(i)] = v!;
  return { ...volume, affine, spacingMm: diag };
}

describe('Segmenter limits and queue', () => {
  let segmenter: Segmenter;
  beforeAll(async () => {
    segmenter = await Segmenter.create({ backend: 'onnxruntime', threads: 2, maxQueue: 1 });
  });
  afterAll(() => segmenter?.close());

  it('refuses a grid that resamples too large with ERR_INPUT_TOO_LARGE at once (50 mm voxels)', async () => {
    const started = Date.now();
    // 48x40x12 voxels of 50 mm: 1600x1333x300 at 1.5x1.5x2 mm, 640 M voxels.
    await expect(segmenter.segment(withAffine(small, [50, 50, 50]))).rejects.toMatchObject({ code: 'ERR_INPUT_TOO_LARGE', message: expect.stringMatching(/resampled/) });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('refuses more windows than limits.maxWindows before running any', async () => {
    const tight = await Segmenter.create({ backend: 'onnxruntime', threads: 1, overlap: 0.9, limits: { maxWindows: 2 } });
    try {
      await expect(tight.segment(withAffine(small, [6, 6, 16]))).rejects.toMatchObject({ code: 'ERR_INPUT_TOO_LARGE', message: expect.stringMatching(/windows/) });
    } finally {
      await tight.close();
    }
  });

  it('rejects geometry no scanner writes as a coded RangeError, asynchronously', async () => {
    const singular = withAffine(small, [1, 1, 1], { 1: 1, 4: 1, 5: 1 + 1e-12 });
    const promise = segmenter.segment(singular);
    await expect(promise).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_INVALID_ARG_VALUE' });
    await expect(segmenter.segment(withAffine(small, [1e30, 1, 1]))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('rejects an overlap that would make windows unbounded, and options of the wrong type', async () => {
    await expect(Segmenter.create({ overlap: 0.99 })).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_INVALID_ARG_VALUE' });
    await expect(Segmenter.create({ maxQueue: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(segmenter.segment(small, { signal: 'no' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('counts pending and running runs, bounds the queue (ERR_QUEUE_FULL) and drops an aborted queued run at once', async () => {
    expect([segmenter.pending, segmenter.running]).toEqual([0, 0]);
    const first = segmenter.segment(small);
    const controller = new AbortController();
    const progress: string[] = [];
    const queued = segmenter.segment(small, { signal: controller.signal, onProgress: (p) => progress.push(p.stage) });
    expect([segmenter.pending, segmenter.running]).toEqual([1, 1]);
    await expect(segmenter.segment(small)).rejects.toMatchObject({ code: 'ERR_QUEUE_FULL' });
    let firstDone = false;
    void first.then(() => (firstDone = true));
    setTimeout(() => controller.abort(), 20);
    await expect(queued).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    // Rejected while the run ahead still computes, and it never started.
    expect(firstDone).toBe(false);
    expect(segmenter.pending).toBe(0);
    await first;
    expect(progress).toEqual([]);
    expect([segmenter.pending, segmenter.running]).toEqual([0, 0]);
  });

  it('rejects a run past timeoutMs with ERR_TIMEOUT and runs the next one afterwards', async () => {
    await expect(segmenter.segment(small, { timeoutMs: 1 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    const result = await segmenter.segment(small, { timeoutMs: 600_000 });
    expect(result.mask.shape).toEqual(small.shape);
  });
});
