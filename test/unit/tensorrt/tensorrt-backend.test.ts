import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SpleenTrtError } from '../../../src/errors.js';
import type { InferenceBackend } from '../../../src/inference/backend.js';
import { buildEngine } from '../../../src/inference/build-engine.js';
import { createTensorRtBackend, type TensorRtBackendOptions } from '../../../src/inference/tensorrt-backend.js';
import { buildUnetOnnx } from '../../../src/model/build-unet-onnx.js';
import { loadDefaultModel, sha256Hex, type LoadedModel } from '../../../src/model/load-model.js';
import { seededUnetWeights } from '../../../src/model/seeded-weights.js';
import { fakeDeps, fakeMachine, FakeEngine, FakeNative, fakePlan, H100 } from './fake-tensorrt.js';
import { rejection } from '../../helpers/rejection.js';

const ROI: [number, number, number] = [4, 4, 4];
const V = 64;
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-backend-'));


/** `batch` windows; window w holds w * 1000 + voxel index, so every value says where it came from. */
function windows(batch: number, offset = 0): Float32Array {
  return Float32Array.from({ length: batch * V }, (_, i) => (Math.floor(i / V) + offset) * 1000 + (i % V));
}

/** The fake engine's function, computed here: out[b][c][v] = in[b][v] * (c + 1) + c. */
function expectedLogits(input: Float32Array, batch: number, channels = 2): Float32Array {
  const out = new Float32Array(batch * channels * V);
  for (let b = 0; b < batch; b++) for (let c = 0; c < channels; c++) for (let v = 0; v < V; v++) out[(b * channels + c) * V + v] = input[b * V + v] * (c + 1) + c;
  return out;
}

async function openFake(options: Partial<TensorRtBackendOptions> = {}, engine = () => new FakeEngine(ROI)): Promise<{ backend: InferenceBackend; native: FakeNative }> {
  const native = new FakeNative({ engine });
  const backend = await createTensorRtBackend({ plan: fakePlan(), ...options }, fakeDeps(native));
  return { backend, native };
}

describe('createTensorRtBackend: what it loads, and what it refuses before loading', () => {
  it('loads plan bytes whose header matches the loaded TensorRT', async () => {
    const { backend, native } = await openFake({ device: 0, contexts: 2, useCudaGraph: false });
    expect(native.loads).toHaveLength(1);
    // A plan's embedded host code stays off unless asked for (it is code from the plan file).
    expect(native.loads[0].options).toEqual({ device: 0, contexts: 2, useCudaGraph: false, allowHostCode: false });
    expect(backend.name).toBe('tensorrt');
    expect(backend.inputName).toBe('input_0');
    expect(backend.outputName).toBe('output_0');
    expect(backend.outputChannels).toBe(2);
    expect(backend.description).toMatch(/^TensorRT 10\.3\.0 on NVIDIA A100-SXM4-80GB, batch 1\/4\/8, 2 contexts, input_0 \[8, 1, 4, 4, 4\] -> output_0 \[8, 2, 4, 4, 4\]$/);
    await backend.close();
  });

  it('refuses a plan from another TensorRT, or bytes that are no plan, without deserializing', async () => {
    const native = new FakeNative();
    const other = await rejection(createTensorRtBackend({ plan: fakePlan([10, 2, 0, 1]) }, fakeDeps(native)));
    expect(other.code).toBe('ERR_ENGINE_INCOMPATIBLE');
    expect(other.message).toMatch(/was built by TensorRT 10\.2\.0\.1, loaded 10\.3\.0$/);
    const garbage = await rejection(createTensorRtBackend({ plan: new Uint8Array(100) }, fakeDeps(native)));
    expect(garbage.message).toMatch(/is not a TensorRT plan/);
    expect(native.loads).toHaveLength(0);
  });

  it('checks a plan file against its sidecar and lists every mismatch', async () => {
    const dir = tmp();
    const onnx = buildUnetOnnx(seededUnetWeights(2, { inChannels: 1, outChannels: 2, channels: [4, 8], strides: [2], kernelSize: 3, upKernelSize: 3, numResUnits: 1 }), {
      inChannels: 1, outChannels: 2, channels: [4, 8], strides: [2], kernelSize: 3, upKernelSize: 3, numResUnits: 1,
    });
    const planPath = path.join(dir, 'spleen.plan');
    await buildEngine({ onnx, output: planPath, precision: 'fp16' }, fakeDeps());

    const same = new FakeNative({ engine: () => new FakeEngine(ROI) });
    const backend = await createTensorRtBackend({ planPath, precision: 'fp16', onnxSha256: sha256Hex(onnx) }, fakeDeps(same));
    expect(backend.description).toMatch(/, fp16, batch 1\/4\/8/);
    await backend.close();

    const elsewhere = new FakeNative({ version: '10.4.0' });
    const error = await rejection(createTensorRtBackend({ planPath, precision: 'fp32', onnxSha256: '0'.repeat(64) }, fakeDeps(elsewhere, fakeMachine([H100]))));
    expect(error.code).toBe('ERR_ENGINE_INCOMPATIBLE');
    expect(error.details).toEqual([
      'TensorRT: built by 10.3.0, loaded 10.4.0',
      'GPU compute capability: built for 8.0, this GPU has 9.0',
      'GPU: built on NVIDIA A100-SXM4-80GB, this GPU is NVIDIA H100 80GB HBM3',
      `ONNX: built from sha256 ${sha256Hex(onnx)}, the model has ${'0'.repeat(64)}`,
      'precision: built fp16, requested fp32',
    ]);
    expect(error.message).toBe(`${planPath} cannot run here: ${error.details.join('; ')}`);
    expect(elsewhere.loads).toHaveLength(0);

    // A replaced plan no longer matches its sidecar's sha256.
    writeFileSync(planPath, fakePlan([10, 3, 0, 7], 'something else'));
    const replaced = await rejection(createTensorRtBackend({ planPath }, fakeDeps()));
    expect(replaced.details).toEqual([expect.stringMatching(/^plan file: sha256 .*\(plan replaced or corrupted\)$/)]);
  });

  it('loads a plan without sidecar (e.g. from trtexec) on its header alone', async () => {
    const dir = tmp();
    const planPath = path.join(dir, 'trtexec.plan');
    writeFileSync(planPath, fakePlan());
    const native = new FakeNative({ engine: () => new FakeEngine(ROI) });
    await (await createTensorRtBackend({ planPath }, fakeDeps(native))).close();
    expect(native.loads).toHaveLength(1);
    expect((await rejection(createTensorRtBackend({ planPath: path.join(dir, 'missing.plan') }, fakeDeps()))).code).toBe('ERR_FILE_NOT_FOUND');
  });

  it('builds into the engine cache once, then loads from it', async () => {
    const dir = tmp();
    const model: LoadedModel = { ...loadDefaultModel(), manifest: { ...loadDefaultModel().manifest, pipeline: { ...loadDefaultModel().manifest.pipeline, roiSize: [4, 4, 4] } } };
    const native = new FakeNative({ engine: () => new FakeEngine(ROI) });
    const first = await createTensorRtBackend({ model, engineCacheDir: dir, precision: 'fp16' }, fakeDeps(native));
    expect(native.builds).toHaveLength(1);
    expect(native.builds[0].spatialShape).toEqual([4, 4, 4]);
    expect(native.builds[0].precision).toBe('fp16');
    await first.close();
    const second = await createTensorRtBackend({ model, engineCacheDir: dir, precision: 'fp16' }, fakeDeps(native));
    await second.close();
    expect(native.builds).toHaveLength(1);
    expect(native.loads).toHaveLength(2);
    expect(Buffer.from(native.loads[1].plan).equals(Buffer.from(native.loads[0].plan))).toBe(true);
  });

  it("allows host code for the engine cache's own version-compatible plans only (and when asked)", async () => {
    const dir = tmp();
    const model: LoadedModel = { ...loadDefaultModel(), manifest: { ...loadDefaultModel().manifest, pipeline: { ...loadDefaultModel().manifest.pipeline, roiSize: [4, 4, 4] } } };
    const native = new FakeNative({ engine: () => new FakeEngine(ROI) });
    await (await createTensorRtBackend({ model, engineCacheDir: dir }, fakeDeps(native))).close();
    await (await createTensorRtBackend({ model, engineCacheDir: dir, build: { versionCompatible: true } }, fakeDeps(native))).close();
    await (await createTensorRtBackend({ model, engineCacheDir: dir, build: { versionCompatible: true }, allowEngineHostCode: false }, fakeDeps(native))).close();
    await (await createTensorRtBackend({ plan: fakePlan(), allowEngineHostCode: true }, fakeDeps(native))).close();
    expect(native.loads.map((load) => load.options?.allowHostCode)).toEqual([false, true, false, true]);
  });

  it('rebuilds a cached plan TensorRT refuses to deserialize, once, where rebuilding is allowed', async () => {
    const dir = tmp();
    const model = loadDefaultModel();
    const builder = new FakeNative();
    await (await createTensorRtBackend({ model, engineCacheDir: dir }, fakeDeps(builder))).close();

    let refusals = 0;
    const refusing = (limit: number) =>
      new FakeNative({
        load: async () => {
          if (refusals++ < limit) throw new SpleenTrtError('ERR_ENGINE_INCOMPATIBLE', 'deserializeCudaEngine returned null');
          return new FakeEngine(ROI);
        },
      });
    const once = refusing(1);
    await (await createTensorRtBackend({ model, engineCacheDir: dir }, fakeDeps(once))).close();
    expect(once.builds).toHaveLength(1);

    refusals = 0;
    const strict = refusing(1);
    const error = await rejection(createTensorRtBackend({ model, engineCacheDir: dir, rebuild: false }, fakeDeps(strict)));
    expect(error.message).toMatch(/deserializeCudaEngine returned null/);
    expect(strict.builds).toHaveLength(0);
  });

  it('ERR_TENSORRT_UNAVAILABLE with the native reason; ERR_NO_GPU', async () => {
    const missing = await rejection(createTensorRtBackend({ plan: fakePlan() }, fakeDeps(new FakeNative({ available: false, reason: 'libnvinfer.so.10 not found' }))));
    expect(missing.code).toBe('ERR_TENSORRT_UNAVAILABLE');
    expect(missing.message).toBe('libnvinfer.so.10 not found');
    expect((await rejection(createTensorRtBackend({ plan: fakePlan() }, fakeDeps(undefined, fakeMachine([]))))).code).toBe('ERR_NO_GPU');
  });

  it.each<[string, TensorRtBackendOptions]>([
    ['no source', {}],
    ['two sources', { plan: fakePlan(), planPath: 'x.plan' }],
    ['a bad precision', { plan: fakePlan(), precision: 'int8' as never }],
    ['zero contexts', { plan: fakePlan(), contexts: 0 }],
    ['a bad profile', { model: 'default', dynamicBatch: [8, 4, 1] }],
    ['a bad sha256', { planPath: 'x.plan', onnxSha256: 'abc' }],
  ])('rejects %s as a caller mistake', async (_name, options) => {
    const native = new FakeNative();
    await expect(createTensorRtBackend(options, fakeDeps(native))).rejects.toSatisfy((e) => e instanceof TypeError || e instanceof RangeError);
    expect(native.loads).toHaveLength(0);
  });
});

describe('TensorRT backend: runs', () => {
  it('runs a full batch as one engine call and returns its logits and timings', async () => {
    const { backend, native } = await openFake();
    const input = windows(4);
    const { logits, timings } = await backend.run(input, 4, ROI);
    expect(Array.from(logits)).toEqual(Array.from(expectedLogits(input, 4)));
    expect(timings).toEqual({ h2dMs: 0.5, computeMs: 2, d2hMs: 1 });
    expect(native.engines[0].runs).toEqual([4]);
    await backend.close();
  });

  it('pads a partial last batch to the previous batch size and drops the padding', async () => {
    const { backend, native } = await openFake();
    await backend.run(windows(4), 4, ROI);
    const tail = windows(3, 4);
    const { logits } = await backend.run(tail, 3, ROI);
    expect(logits.length).toBe(3 * 2 * V);
    expect(Array.from(logits)).toEqual(Array.from(expectedLogits(tail, 3)));
    expect(native.engines[0].runs).toEqual([4, 4]);
    await backend.close();
  });

  it('pads to stableBatch from the first call, and up to the profile minimum', async () => {
    const stable = await openFake({ stableBatch: 4 });
    await stable.backend.run(windows(1), 1, ROI);
    expect(stable.native.engines[0].runs).toEqual([4]);
    await stable.backend.close();

    const atLeastTwo = await openFake({}, () => new FakeEngine(ROI, 2, { min: 2, opt: 4, max: 8 }));
    const one = windows(1);
    expect(Array.from((await atLeastTwo.backend.run(one, 1, ROI)).logits)).toEqual(Array.from(expectedLogits(one, 1)));
    expect(atLeastTwo.native.engines[0].runs).toEqual([2]);
    await atLeastTwo.backend.close();
  });

  it('splits batches above the profile max into chunks, all at a stable size', async () => {
    const { backend, native } = await openFake();
    const input = windows(20);
    const { logits, timings } = await backend.run(input, 20, ROI);
    expect(Array.from(logits)).toEqual(Array.from(expectedLogits(input, 20)));
    expect(native.engines[0].runs).toEqual([8, 8, 8]);
    expect(timings).toEqual({ h2dMs: 1.5, computeMs: 6, d2hMs: 3 });
    await backend.close();
  });

  it('keeps concurrent callers to one context each, in call order, with their own results', async () => {
    const engine = new FakeEngine(ROI);
    let open!: () => void;
    engine.gate = new Promise((resolve) => (open = resolve));
    const { backend } = await openFake({}, () => engine);
    const inputs = [windows(4, 0), windows(4, 10), windows(4, 20)];
    const order: number[] = [];
    const runs = inputs.map((input, i) => backend.run(input, 4, ROI).then((r) => (order.push(i), r)));
    open();
    const results = await Promise.all(runs);
    // The fake reuses one output buffer: each result is right only if it was copied in time.
    results.forEach((r, i) => expect(Array.from(r.logits)).toEqual(Array.from(expectedLogits(inputs[i], 4))));
    expect(engine.maxActive).toBe(1);
    expect(order).toEqual([0, 1, 2]);
    await backend.close();
  });

  it('lets up to `contexts` runs into the engine at once', async () => {
    const engine = new FakeEngine(ROI);
    let open!: () => void;
    engine.gate = new Promise((resolve) => (open = resolve));
    const { backend } = await openFake({ contexts: 2 }, () => engine);
    const runs = [0, 1, 2].map((i) => backend.run(windows(2, i), 2, ROI));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(engine.active).toBe(2);
    open();
    await Promise.all(runs);
    expect(engine.maxActive).toBe(2);
    await backend.close();
  });

  it('checks the window size and input length, and maps engine failures', async () => {
    const engine = new FakeEngine(ROI);
    const { backend } = await openFake({}, () => engine);
    expect((await rejection(backend.run(new Float32Array(8 ** 3), 1, [8, 8, 8]))).code).toBe('ERR_MODEL_INVALID');
    await expect(backend.run(new Float32Array(V + 1), 1, ROI)).rejects.toBeInstanceOf(RangeError);
    await expect(backend.run(windows(1), 0, ROI)).rejects.toBeInstanceOf(RangeError);
    engine.failNext = new Error('an illegal memory access was encountered');
    const failed = await rejection(backend.run(windows(1), 1, ROI));
    expect(failed.code).toBe('ERR_INFERENCE_FAILED');
    expect(failed.message).toMatch(/illegal memory access/);
    engine.failNext = new SpleenTrtError('ERR_OUT_OF_MEMORY', 'cudaMalloc failed');
    expect((await rejection(backend.run(windows(1), 1, ROI))).code).toBe('ERR_OUT_OF_MEMORY');
    // The slot was released after each failure.
    expect((await backend.run(windows(1), 1, ROI)).logits.length).toBe(2 * V);
    await backend.close();
  });
});

describe('TensorRT backend: close', () => {
  it('waits for in-flight runs, frees the engine once, then rejects runs with ERR_CLOSED', async () => {
    const engine = new FakeEngine(ROI);
    let open!: () => void;
    engine.gate = new Promise((resolve) => (open = resolve));
    let closes = 0;
    const close = engine.close.bind(engine);
    engine.close = async () => {
      closes++;
      await close();
    };
    const { backend } = await openFake({}, () => engine);
    const input = windows(2);
    const running = backend.run(input, 2, ROI);
    const closing = backend.close();
    expect(backend.close()).toBe(closing);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(engine.closed).toBe(false); // still running
    expect((await rejection(backend.run(input, 2, ROI))).code).toBe('ERR_CLOSED');
    open();
    expect(Array.from((await running).logits)).toEqual(Array.from(expectedLogits(input, 2)));
    await closing;
    expect(engine.closed).toBe(true);
    await backend.close();
    expect(closes).toBe(1);
    expect((await rejection(backend.run(input, 2, ROI))).code).toBe('ERR_CLOSED');
  });

  it('closes even when an in-flight run failed', async () => {
    const engine = new FakeEngine(ROI);
    engine.failNext = new Error('boom');
    const { backend } = await openFake({}, () => engine);
    const failing = backend.run(windows(1), 1, ROI).then(
      () => null,
      (error: unknown) => error,
    );
    await backend.close();
    expect(await failing).toMatchObject({ code: 'ERR_INFERENCE_FAILED', message: expect.stringMatching(/boom/) });
    expect(engine.closed).toBe(true);
  });
});
