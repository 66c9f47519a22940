import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoCpuBackend } from '../../../src/inference/cpu-backend-choice.js';
import { loadDefaultModel } from '../../../src/model/load-model.js';
import { makePhantom, Segmenter, SpleenTrtError, type Volume } from '../../../src/index.js';
import { rejection } from '../../helpers/rejection.js';

// 48x40x12 at 3x3x8 mm: resampled to about 96x80x48, one to two windows: quick on 2 cores.
const small = makePhantom({ shape: [48, 40, 12], spacingMm: [3, 3, 8], seed: 3 }).image;


describe('Segmenter', () => {
  let segmenter: Segmenter;
  beforeAll(async () => {
    segmenter = await Segmenter.create({ backend: 'onnxruntime', threads: 2 });
  });
  afterAll(() => segmenter?.close());

  it('returns a mask on the input grid with a summary and timings', async () => {
    const result = await segmenter.segment(small);
    expect(result.mask.shape).toEqual(small.shape);
    expect(Array.from(result.mask.affine)).toEqual(Array.from(small.affine));
    expect(result.mask.data.length).toBe(small.data.length);
    expect(result.mask.data.every((v) => v === 0 || v === 1)).toBe(true);
    expect(result.summary.voxelCount).toBe(result.mask.data.reduce((a, b) => a + b, 0));
    expect(result.windowCount).toBeGreaterThan(0);
    expect(result.timings.totalMs).toBeGreaterThanOrEqual(result.timings.networkMs);
    expect(result.stages).toBeUndefined();
  });

  it('keeps the stages when asked, on their own grids', async () => {
    const { stages, mask } = await segmenter.segment(small, { keepStages: true });
    expect(stages).toBeDefined();
    const pre = stages!.preprocessed;
    expect(pre.data.length).toBe(pre.shape[0] * pre.shape[1] * pre.shape[2]);
    expect(pre.data.every((v) => v >= 0 && v <= 1)).toBe(true); // intensity window clips to [0, 1]
    expect(pre.spacingMm.map((s) => Math.round(s * 1000) / 1000)).toEqual([1.5, 1.5, 2]);
    expect(stages!.logits.channels).toBe(2);
    expect(stages!.logits.data.length).toBe(2 * pre.data.length);
    // The mask is exactly "foreground probability > background probability" = p1 > 0.5 for 2 classes.
    const p = stages!.probability.data;
    let agree = 0;
    for (let i = 0; i < p.length; i++) if ((p[i] > 0.5 ? 1 : 0) === mask.data[i]) agree++;
    expect(agree / p.length).toBeGreaterThan(0.9999);
  });

  it('queues concurrent runs and gives identical results', async () => {
    const [a, b] = await Promise.all([segmenter.segment(small), segmenter.segment(small)]);
    expect(Buffer.from(a.mask.data).equals(Buffer.from(b.mask.data))).toBe(true);
  });

  it('reports progress through every stage', async () => {
    const stages: string[] = [];
    await segmenter.segment(small, { onProgress: (p) => stages.push(p.stage) });
    expect(stages[0]).toBe('preprocess');
    expect(stages).toContain('network');
    expect(stages.at(-1)).toBe('done');
  });

  it('rejects an aborted run with ERR_ABORTED', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await rejection(segmenter.segment(small, { signal: controller.signal }));
    expect(error.code).toBe('ERR_ABORTED');
  });

  it('rejects (never throws) with a coded TypeError/RangeError for a malformed volume before any work', async () => {
    await expect(segmenter.segment({ ...small, data: new Float64Array(4) } as unknown as Volume)).rejects.toThrow(TypeError);
    await expect(segmenter.segment({ ...small, shape: [2, 2, 2] })).rejects.toThrow(RangeError);
    await expect(segmenter.segment({ ...small, affine: new Float64Array(16).fill(Number.NaN) })).rejects.toThrow(TypeError);
    await expect(segmenter.segment(null as unknown as Volume)).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('Segmenter lifecycle', () => {
  it('close waits for queued runs, is idempotent, and later calls reject with ERR_CLOSED', async () => {
    const segmenter = await Segmenter.create({ backend: 'onnxruntime', threads: 2 });
    const running = segmenter.segment(small);
    const closing = segmenter.close();
    expect(segmenter.close()).toBe(closing);
    const result = await running;
    expect(result.mask.shape).toEqual(small.shape);
    await closing;
    expect((await rejection(segmenter.segment(small))).code).toBe('ERR_CLOSED');
  });

  it('supports await using (Symbol.asyncDispose)', async () => {
    let kept: Segmenter;
    {
      await using segmenter = await Segmenter.create({ backend: 'onnxruntime' });
      kept = segmenter;
    }
    expect((await rejection(kept.segment(small))).code).toBe('ERR_CLOSED');
  });
});

describe('Segmenter.create', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-segmenter-'));

  it.each([
    [{ backend: 'cuda' }, TypeError],
    [{ threads: 0 }, RangeError],
    [{ overlap: 1 }, RangeError],
    [{ swBatchSize: 0 }, RangeError],
    [{ mode: 'linear' }, TypeError],
  ])('rejects %o', async (options, type) => {
    await expect(Segmenter.create(options as never)).rejects.toBeInstanceOf(type);
  });

  it('says why TensorRT is unavailable when asked for explicitly', async () => {
    const error = await rejection(Segmenter.create({ backend: 'tensorrt' }));
    expect(error.code).toMatch(/^ERR_(TENSORRT_UNAVAILABLE|NO_GPU|NATIVE_UNAVAILABLE)$/);
    expect(error.message.length).toBeGreaterThan(20);
  });

  it("falls back to the CPU backend under 'auto' (oneDNN with AVX-512, else onnxruntime) and records why", async () => {
    await using segmenter = await Segmenter.create({ backend: 'auto' });
    expect(segmenter.info.backend).toBe(autoCpuBackend().name);
    expect(segmenter.info.backendDescription).toMatch(autoCpuBackend().name === 'onednn' ? /^oneDNN/ : /^onnxruntime/);
    expect(segmenter.info.fallbackReason).toBeTruthy();
  });

  it('a missing model is ERR_FILE_NOT_FOUND', async () => {
    expect((await rejection(Segmenter.create({ model: path.join(tmp, 'nope.onnx') }))).code).toBe('ERR_FILE_NOT_FOUND');
  });

  it('a file that is not ONNX is ERR_MODEL_INVALID', async () => {
    const file = path.join(tmp, 'garbage.onnx');
    writeFileSync(file, 'this is not a protobuf');
    expect((await rejection(Segmenter.create({ model: file }))).code).toBe('ERR_MODEL_INVALID');
  });

  it('a model directory whose ONNX does not match its sha256 is ERR_MODEL_INVALID', async () => {
    const dir = path.join(tmp, 'tampered');
    mkdirSync(dir);
    const model = loadDefaultModel();
    writeFileSync(path.join(dir, 'model.onnx'), model.onnx);
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ ...model.manifest, onnx: { file: 'model.onnx', sha256: '0'.repeat(64) } }));
    const error = await rejection(Segmenter.create({ model: dir }));
    expect(error.code).toBe('ERR_MODEL_INVALID');
    expect(error.message).toMatch(/sha256/);
  });

  it('a model directory with a valid manifest loads and uses its pipeline parameters', async () => {
    const dir = path.join(tmp, 'valid');
    mkdirSync(dir);
    const model = loadDefaultModel();
    writeFileSync(path.join(dir, 'model.onnx'), model.onnx);
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ ...model.manifest, pipeline: { ...model.manifest.pipeline, overlap: 0.25 } }));
    await using segmenter = await Segmenter.create({ model: dir });
    expect(segmenter.info.pipeline.overlap).toBe(0.25);
    expect(segmenter.info.model.sha256).toBe(model.sha256);
  });
});
