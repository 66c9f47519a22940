/**
 * Segmenter and runtime info with the TensorRT layer replaced by fakes: backend choice ('auto'
 * and its fallback reasons, explicit 'tensorrt'), and a whole segmentation through the TensorRT
 * backend whose "engine" is onnxruntime running the same ONNX, which must give the onnxruntime
 * backend's result exactly (padding of the partial batch included).
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpleenTrtError } from '../../../src/errors.js';
import { buildEngine } from '../../../src/inference/build-engine.js';
import { autoCpuBackend } from '../../../src/inference/cpu-backend-choice.js';
import type { NativeEngine, NativeEngineInfo, NativeRunResult } from '../../../src/inference/tensorrt-native.js';
import { loadDefaultModel } from '../../../src/model/load-model.js';
import { makePhantom } from '../../../src/phantom/make-phantom.js';
import { getTensorRtStatus } from '../../../src/runtime-info.js';
import { Segmenter } from '../../../src/segmenter.js';
import { A100, fakeDeps, fakeMachine, FakeNative } from './fake-tensorrt.js';
import { rejection } from '../../helpers/rejection.js';

// 48x40x12 at 3x3x8 mm resamples to about 96x80x48: one 96^3 window, a partial batch of 1.
const small = makePhantom({ shape: [48, 40, 12], spacingMm: [3, 3, 8], seed: 3 }).image;
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-segmenter-trt-'));

/** A "TensorRT engine" that is onnxruntime on the model's ONNX, recording the batch sizes it ran. */
class OrtEngine implements NativeEngine {
  readonly info: NativeEngineInfo = {
    inputName: 'input_0',
    outputName: 'output_0',
    inputShapeMax: [8, 1, 96, 96, 96],
    outputShapeMax: [8, 2, 96, 96, 96],
    outputChannels: 2,
    profile: { min: 1, opt: 4, max: 8 },
    deviceMemoryBytes: 0,
    tensorrtVersion: '10.3.0',
  };
  readonly batches: number[] = [];
  closed = false;
  /** Every run fails with this (a sticky CUDA error makes an engine unusable for good). */
  fault: SpleenTrtError | undefined;
  constructor(private readonly session: ort.InferenceSession) {}

  async run(input: Float32Array, batch: number): Promise<NativeRunResult> {
    if (this.fault) throw this.fault;
    this.batches.push(batch);
    const out = await this.session.run({ input_0: new ort.Tensor('float32', input, [batch, 1, 96, 96, 96]) });
    return { output: out.output_0.data as Float32Array, h2dMs: 0, computeMs: 1, d2hMs: 0, usedCudaGraph: false };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.session.release();
  }
}


describe('getTensorRtStatus', () => {
  it('says which piece is missing, in order', async () => {
    expect(await getTensorRtStatus({ available: false, reason: 'no .node file' })).toEqual({ usable: false, reason: 'native addon not loaded: no .node file' });
    const noDriver = fakeMachine();
    if ('cuda' in noDriver) noDriver.cuda = { driverAvailable: false, reason: 'libcuda.so.1 not found', devices: [] };
    expect(await getTensorRtStatus(noDriver)).toEqual({ usable: false, reason: 'no CUDA driver: libcuda.so.1 not found' });
    expect(await getTensorRtStatus(fakeMachine([]))).toEqual({ usable: false, reason: 'no CUDA GPU found' });
    expect(await getTensorRtStatus(fakeMachine([A100], { available: false, reason: 'libnvinfer.so.10 not found' }))).toEqual({
      usable: false,
      reason: 'no TensorRT: libnvinfer.so.10 not found',
    });
    const unsupported = await getTensorRtStatus(fakeMachine(), fakeDeps(new FakeNative({ available: false, reason: 'TensorRT 9.2 is older than 10.1' })));
    expect(unsupported).toMatchObject({ usable: false, reason: 'no TensorRT: TensorRT 9.2 is older than 10.1' });
  });

  it('is usable with a GPU and a loadable TensorRT, naming both', async () => {
    expect(await getTensorRtStatus(fakeMachine(), fakeDeps())).toEqual({
      usable: true,
      reason: 'TensorRT 10.3.0 on NVIDIA A100-SXM4-80GB (compute 8.0, driver CUDA 12.4)',
      version: '10.3.0',
      driverCudaVersion: '12.4',
    });
  });

  it("reports a driver too old for the loaded TensorRT (the addon brings no CUDA runtime that could hide it)", async () => {
    const old = fakeMachine();
    if ('cuda' in old) {
      old.cuda.driverVersion = '11.4';
      Object.assign(old.tensorrt, {
        requiredDriverCudaVersion: '11.8',
        driverSufficient: false,
        driverNote: 'the CUDA driver supports CUDA 11.4; TensorRT 10 needs at least CUDA 11.8: update the NVIDIA driver',
      });
    }
    expect(await getTensorRtStatus(old, fakeDeps())).toEqual({
      usable: false,
      reason: 'CUDA driver too old: the CUDA driver supports CUDA 11.4; TensorRT 10 needs at least CUDA 11.8: update the NVIDIA driver',
      version: '10.3.0',
      driverCudaVersion: '11.4',
      driverSufficient: false,
    });
  });
});

describe('Segmenter backend choice', () => {
  it("'auto' falls back to the CPU backend (oneDNN with AVX-512, else onnxruntime) and records the reason", async () => {
    const noTrt = fakeDeps(new FakeNative(), fakeMachine([A100], { available: false, reason: 'libnvinfer.so.10: cannot open shared object file' }));
    await using a = await Segmenter.create({ backend: 'auto', threads: 1 }, noTrt);
    expect(a.info.backend).toBe(autoCpuBackend().name);
    expect(a.info.fallbackReason).toBe('no TensorRT: libnvinfer.so.10: cannot open shared object file');

    await using b = await Segmenter.create({ threads: 1 }, fakeDeps(new FakeNative(), fakeMachine([])));
    expect(b.info.fallbackReason).toBe('no CUDA GPU found');
  });

  it("'auto' falls back when TensorRT is there but the engine cannot be built, saying so", async () => {
    const failing = new FakeNative({ build: async () => Promise.reject(new SpleenTrtError('ERR_ONNX_PARSE', 'node Conv_0: unsupported')) });
    await using segmenter = await Segmenter.create({ threads: 1, engineCacheDir: tmp() }, fakeDeps(failing));
    expect(segmenter.info.backend).toBe(autoCpuBackend().name);
    expect(segmenter.info.fallbackReason).toBe('TensorRT backend failed (ERR_ONNX_PARSE): node Conv_0: unsupported');
  });

  it("'tensorrt' fails with the TensorRT layer's error instead of falling back", async () => {
    const error = await rejection(Segmenter.create({ backend: 'tensorrt' }, fakeDeps(new FakeNative({ available: false, reason: 'libnvinfer.so.11 not found' }))));
    expect(error.code).toBe('ERR_TENSORRT_UNAVAILABLE');
    expect(error.message).toBe('libnvinfer.so.11 not found');
    expect((await rejection(Segmenter.create({ backend: 'tensorrt' }, fakeDeps(new FakeNative(), fakeMachine([]))))).code).toBe('ERR_NO_GPU');
  });

  it.each([
    [{ precision: 'int8' }, RangeError],
    [{ device: -1 }, RangeError],
    [{ engineCacheDir: '' }, TypeError],
    [{ plan: 'x.plan', backend: 'onnxruntime' }, TypeError],
    [{ allowEngineHostCode: 'yes' }, TypeError],
  ])('rejects %o', async (options, type) => {
    await expect(Segmenter.create(options as never, fakeDeps())).rejects.toBeInstanceOf(type);
  });
});

describe('Segmenter on the TensorRT backend (onnxruntime standing in for the engine)', () => {
  const model = loadDefaultModel();
  let engines: OrtEngine[] = [];
  const native = new FakeNative({
    load: async () => {
      const engine = new OrtEngine(await ort.InferenceSession.create(model.onnx, { intraOpNumThreads: 2 }));
      engines.push(engine);
      return engine;
    },
  });
  let reference: Segmenter;
  beforeAll(async () => {
    reference = await Segmenter.create({ backend: 'onnxruntime', threads: 2 });
  });
  afterAll(() => reference?.close());

  it("'auto' picks TensorRT where it is usable and segments exactly like onnxruntime", async () => {
    engines = [];
    const cacheDir = tmp();
    const segmenter = await Segmenter.create({ backend: 'auto', engineCacheDir: cacheDir, precision: 'fp16' }, fakeDeps(native));
    expect(segmenter.info.backend).toBe('tensorrt');
    expect(segmenter.info.fallbackReason).toBeUndefined();
    expect(segmenter.info.backendDescription).toMatch(/^TensorRT 10\.3\.0 on NVIDIA A100-SXM4-80GB, fp16, batch 1\/4\/8/);
    expect(native.builds.at(-1)?.precision).toBe('fp16');

    const [got, want] = await Promise.all([segmenter.segment(small, { keepStages: true }), reference.segment(small, { keepStages: true })]);
    expect(got.windowCount).toBe(1);
    // One window, padded to the sliding window's batch of 4 for a stable engine shape.
    expect(engines[0].batches).toEqual([4]);
    expect(got.timings.computeMs).toBe(1);
    expect(Buffer.from(got.stages!.logits.data.buffer).equals(Buffer.from(want.stages!.logits.data.buffer))).toBe(true);
    expect(Buffer.from(got.mask.data).equals(Buffer.from(want.mask.data))).toBe(true);
    await segmenter.close();
    expect(engines[0].closed).toBe(true);
  });

  it('recreates its TensorRT backend after ERR_GPU_FAULT: that run fails, the next one runs on a new engine', async () => {
    engines = [];
    const segmenter = await Segmenter.create({ backend: 'tensorrt', engineCacheDir: tmp(), allowEngineHostCode: true }, fakeDeps(native));
    expect(engines).toHaveLength(1);
    expect(native.loads.at(-1)?.options?.allowHostCode).toBe(true);
    engines[0].fault = new SpleenTrtError('ERR_GPU_FAULT', 'cuEventSynchronize failed: CUDA_ERROR_ILLEGAL_ADDRESS (700)');
    const failed = await rejection(segmenter.segment(small));
    expect(failed.code).toBe('ERR_GPU_FAULT');
    expect(engines[0].closed).toBe(true); // the faulted engine is freed at once
    const [got, want] = await Promise.all([segmenter.segment(small), reference.segment(small)]);
    expect(engines).toHaveLength(2);
    expect(engines[1].batches).toEqual([4]);
    expect(native.loads.at(-1)?.options?.allowHostCode).toBe(true); // the new engine keeps the caller's options
    expect(Buffer.from(got.mask.data).equals(Buffer.from(want.mask.data))).toBe(true);
    await segmenter.close();
    expect(engines[1].closed).toBe(true);
  });

  it('runs a plan from `spleen-trt export` and refuses one built from another model', async () => {
    engines = [];
    const dir = tmp();
    const planPath = path.join(dir, 'spleen.plan');
    // The embedded default runs on TensorRT as its torch-export-like graph.
    const trtGraph = loadDefaultModel('tensorrt');
    expect(trtGraph.sha256).not.toBe(model.sha256);
    await buildEngine({ onnx: trtGraph.onnx, output: planPath }, fakeDeps(native));
    await using segmenter = await Segmenter.create({ backend: 'tensorrt', plan: planPath }, fakeDeps(native));
    expect(segmenter.info.backend).toBe('tensorrt');

    const other = await rejection(Segmenter.create({ backend: 'tensorrt', plan: planPath, model: { ...model, source: '/elsewhere/model.onnx', sha256: 'f'.repeat(64) } }, fakeDeps(native)));
    expect(other.code).toBe('ERR_ENGINE_INCOMPATIBLE');
    expect(other.details).toEqual([`ONNX: built from sha256 ${trtGraph.sha256}, the model has ${'f'.repeat(64)}`]);
  });
});
