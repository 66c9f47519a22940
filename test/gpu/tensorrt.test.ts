// TensorRT on a real GPU through the native layer (src/native/tensorrt.ts): builds engines from
// the package's UNet ONNX and compares them with onnxruntime (CPU) on the same 96^3 windows.
// Skipped where there is no GPU or no usable TensorRT (the addon must be built with TensorRT
// headers: TENSORRT_ROOT=... npm run build:addon). scripts/gpu-check.sh runs it.
//
// Tolerances, relative to the largest reference logit magnitude s = max(1, max|ref|):
//   fp32 (TF32 cleared): max |trt - ort| <= 1e-3 * s  (fp32 both sides; only the summation order
//                        and convolution algorithms differ)
//   fp16:                max |trt - ort| <= 5e-2 * s, and the per-voxel argmax agrees on >= 99 %
//                        of voxels (fp16 has an 11-bit significand; ~20 layers accumulate it)
// If SPLEEN_TRT_GPU_REPORT names a file, a JSON line of measured errors and timings is appended
// to it for scripts/gpu-check.sh's table. Builds use optimization level 1 to keep the test short;
// the level changes which kernels are chosen, not what they compute.
import { appendFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSpleenTrtError } from '../../src/errors.js';
import { createOnnxRuntimeBackend } from '../../src/inference/onnxruntime-backend.js';
import { buildUnetOnnx } from '../../src/model/build-unet-onnx.js';
import { convertOnnxToFp16 } from '../../src/model/fp16-onnx.js';
import { mulberry32, seededUnetWeights } from '../../src/model/seeded-weights.js';
import { getNativeRuntimeInfo } from '../../src/native/addon.js';
import {
  buildEngineNative,
  getTensorRtLibraryStatus,
  loadEngineNative,
  type NativeBuildResult,
  type NativeEngine,
  type TensorRtPrecision,
} from '../../src/native/tensorrt.js';

const ROI: [number, number, number] = [96, 96, 96];
const VOXELS = ROI[0] * ROI[1] * ROI[2];
const OUT_CHANNELS = 2;
const WINDOWS = 8;

const runtime = await getNativeRuntimeInfo();
const trtStatus = await getTensorRtLibraryStatus();
const hasGpu = runtime.available && runtime.cuda.devices.length > 0;
const ready = hasGpu && trtStatus.available;
if (!ready) {
  const why = !hasGpu
    ? `no GPU (${runtime.available ? (runtime.cuda.reason ?? 'no devices') : runtime.reason})`
    : `TensorRT unavailable (${trtStatus.reason ?? 'unknown'})`;
  console.info(`test/gpu/tensorrt.test.ts skipped: ${why}`);
}

function report(entry: Record<string, unknown>): void {
  const file = process.env.SPLEEN_TRT_GPU_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify(entry)}\n`);
}

/** `count` windows of uniform [0, 1) values (the range of the bundle's intensity window). */
function makeWindows(count: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  const data = new Float32Array(count * VOXELS);
  for (let i = 0; i < data.length; i++) data[i] = random();
  return data;
}

interface Comparison {
  maxAbs: number;
  scale: number;
  argmaxAgreement: number;
}

/** TensorRT output of items [first, first + batch) against the reference. */
function compare(actual: Float32Array, reference: Float32Array, first: number, batch: number): Comparison {
  const itemFloats = OUT_CHANNELS * VOXELS;
  expect(actual.length).toBe(batch * itemFloats);
  let maxAbs = 0;
  let maxRef = 0;
  let agree = 0;
  for (let b = 0; b < batch; b++) {
    const ref = reference.subarray((first + b) * itemFloats, (first + b + 1) * itemFloats);
    const got = actual.subarray(b * itemFloats, (b + 1) * itemFloats);
    for (let i = 0; i < itemFloats; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(got[i] - ref[i]));
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
    }
    for (let v = 0; v < VOXELS; v++) {
      if (got[v] >= got[VOXELS + v] === ref[v] >= ref[VOXELS + v]) agree++;
    }
  }
  return { maxAbs, scale: Math.max(1, maxRef), argmaxAgreement: agree / (batch * VOXELS) };
}

function expectWithin(result: Comparison, precision: TensorRtPrecision): void {
  if (precision === 'fp16') {
    expect(result.maxAbs).toBeLessThanOrEqual(5e-2 * result.scale);
    expect(result.argmaxAgreement).toBeGreaterThanOrEqual(0.99);
  } else {
    expect(result.maxAbs).toBeLessThanOrEqual(1e-3 * result.scale);
  }
}

describe.skipIf(!ready)('TensorRT engines on the GPU', () => {
  let onnx: Uint8Array;
  let windows: Float32Array;
  let reference: Float32Array;
  let fp32: NativeBuildResult;
  let engine: NativeEngine;
  const major = Number((trtStatus.version ?? '0').split('.')[0]);

  const windowSlice = (first: number, batch: number): Float32Array => windows.slice(first * VOXELS, (first + batch) * VOXELS);

  beforeAll(async () => {
    onnx = buildUnetOnnx(seededUnetWeights(1));
    windows = makeWindows(WINDOWS, 7);
    const backend = await createOnnxRuntimeBackend(onnx);
    try {
      reference = (await backend.run(windows, WINDOWS, ROI)).logits;
    } finally {
      await backend.close();
    }
  }, 600_000);

  afterAll(async () => {
    await engine?.close();
  });

  it('builds an fp32 engine, reporting progress and returning a timing cache', async () => {
    const phases = new Set<string>();
    const started = performance.now();
    fp32 = await buildEngineNative({
      onnx,
      precision: 'fp32',
      inputName: 'input_0',
      profile: { min: 1, opt: 4, max: 8 },
      spatialShape: ROI,
      optLevel: 1,
      onProgress: ({ phase }) => phases.add(phase),
    });
    report({ test: 'build', precision: 'fp32', seconds: (performance.now() - started) / 1000, planBytes: fp32.plan.length });
    expect(fp32.plan.length).toBeGreaterThan(1_000_000); // ~4.8 M fp32 weights
    expect(fp32.tensorrtVersion).toBe(trtStatus.version);
    expect(fp32.timingCache?.length ?? 0).toBeGreaterThan(0);
    expect(phases.size).toBeGreaterThan(0);
  }, 600_000);

  it('writes the plan header the loader relies on: "ftrt" and the TensorRT version at bytes 24..26', () => {
    const view = new DataView(fp32.plan.buffer, fp32.plan.byteOffset, fp32.plan.byteLength);
    expect(view.getUint32(0, true)).toBe(0x74727466);
    expect([fp32.plan[24], fp32.plan[25], fp32.plan[26]].join('.')).toBe(fp32.tensorrtVersion);
  });

  it('loads with the profile and shapes of the build', async () => {
    engine = await loadEngineNative(fp32.plan, { contexts: 2 });
    expect(engine.info).toMatchObject({
      inputName: 'input_0',
      outputName: 'output_0',
      inputShapeMax: [8, 1, 96, 96, 96],
      outputShapeMax: [8, 2, 96, 96, 96],
      outputChannels: 2,
      profile: { min: 1, opt: 4, max: 8 },
      tensorrtVersion: trtStatus.version,
    });
    // At least the I/O buffers of both contexts: 2 * 8 * (1 + 2) * 96^3 * 4 bytes.
    expect(engine.info.deviceMemoryBytes).toBeGreaterThanOrEqual(2 * 8 * 3 * VOXELS * 4);
  }, 120_000);

  it('matches onnxruntime at batch 1, 4 and 8 (fp32, TF32 off)', async () => {
    for (const batch of [1, 4, 8]) {
      const result = await engine.run(windowSlice(0, batch), batch);
      const comparison = compare(result.output, reference, 0, batch);
      report({ test: 'parity', precision: 'fp32', batch, ...comparison, computeMs: result.computeMs, h2dMs: result.h2dMs, d2hMs: result.d2hMs });
      expectWithin(comparison, 'fp32');
      expect(result.computeMs).toBeGreaterThan(0);
    }
  }, 120_000);

  it('replays a CUDA graph per batch size, also when batch sizes alternate', async () => {
    const runs: Array<{ batch: number; graph: boolean }> = [];
    // Single context so every run lands on the same graphs; a fresh engine, so the first run of
    // each batch size is the plain enqueue that precedes capture.
    const single = await loadEngineNative(fp32.plan, { contexts: 1 });
    try {
      for (const batch of [1, 4, 1, 4, 8, 1, 8]) {
        const first = batch === 8 ? 0 : 2;
        const result = await single.run(windowSlice(first, batch), batch);
        expectWithin(compare(result.output, reference, first, batch), 'fp32');
        runs.push({ batch, graph: result.usedCudaGraph });
      }
    } finally {
      await single.close();
    }
    report({ test: 'graphs', runs });
    expect(runs.map((run) => run.graph)).toEqual([false, false, true, true, false, true, true]);
  }, 120_000);

  it('runs concurrent calls on two contexts, each with its own correct result', async () => {
    const plan = [
      [0, 1],
      [1, 4],
      [2, 2],
      [0, 8],
      [5, 3],
      [3, 1],
    ] as const;
    const results = await Promise.all(plan.map(([first, batch]) => engine.run(windowSlice(first, batch), batch)));
    results.forEach((result, i) => expectWithin(compare(result.output, reference, plan[i][0], plan[i][1]), 'fp32'));
  }, 120_000);

  it('close() under load lets accepted runs finish, then rejects new ones with ERR_CLOSED', async () => {
    const loaded = await loadEngineNative(fp32.plan, { contexts: 2 });
    const inFlight = [1, 4, 8, 2, 1].map((batch) => loaded.run(windowSlice(0, batch), batch));
    const closing = loaded.close();
    expect(loaded.close()).toBe(closing);
    const results = await Promise.all(inFlight);
    await closing;
    results.forEach((result, i) => {
      const batch = [1, 4, 8, 2, 1][i];
      expectWithin(compare(result.output, reference, 0, batch), 'fp32');
    });
    let error: unknown;
    try {
      await loaded.run(windowSlice(0, 1), 1);
    } catch (caught) {
      error = caught;
    }
    expect(isSpleenTrtError(error, 'ERR_CLOSED')).toBe(true);
  }, 120_000);

  it('builds an fp16 engine that stays within fp16 tolerance of onnxruntime', async () => {
    // TensorRT 11 has no kFP16: the network's own types decide, so it gets the fp16 ONNX.
    const source = major >= 11 ? convertOnnxToFp16(onnx) : onnx;
    const started = performance.now();
    const fp16 = await buildEngineNative({
      onnx: source,
      precision: 'fp16',
      inputName: 'input_0',
      profile: { min: 1, opt: 4, max: 8 },
      spatialShape: ROI,
      optLevel: 1,
      timingCache: fp32.timingCache,
    });
    report({ test: 'build', precision: 'fp16', seconds: (performance.now() - started) / 1000, planBytes: fp16.plan.length });
    const half = await loadEngineNative(fp16.plan);
    try {
      for (const batch of [1, 8]) {
        const result = await half.run(windowSlice(0, batch), batch);
        const comparison = compare(result.output, reference, 0, batch);
        report({ test: 'parity', precision: 'fp16', batch, ...comparison, computeMs: result.computeMs });
        expectWithin(comparison, 'fp16');
      }
    } finally {
      await half.close();
    }
  }, 600_000);

  it('rejects bytes that are not ONNX with ERR_ONNX_PARSE and the parser errors as details', async () => {
    let error: unknown;
    try {
      await buildEngineNative({
        onnx: new Uint8Array([0x0a, 0x05, 1, 2, 3]),
        precision: 'fp32',
        inputName: 'input_0',
        profile: { min: 1, opt: 1, max: 1 },
        spatialShape: ROI,
      });
    } catch (caught) {
      error = caught;
    }
    expect(isSpleenTrtError(error, 'ERR_ONNX_PARSE')).toBe(true);
    expect((error as { details: string[] }).details.length).toBeGreaterThan(0);
  }, 120_000);

  it('cancels a build through its AbortSignal with ERR_ABORTED', async () => {
    const controller = new AbortController();
    let error: unknown;
    try {
      await buildEngineNative({
        onnx,
        precision: 'fp32',
        inputName: 'input_0',
        profile: { min: 1, opt: 4, max: 8 },
        spatialShape: ROI,
        optLevel: 3,
        signal: controller.signal,
        onProgress: () => controller.abort(),
      });
    } catch (caught) {
      error = caught;
    }
    expect(isSpleenTrtError(error, 'ERR_ABORTED')).toBe(true);
  }, 300_000);

  it('refuses a plan whose header names another TensorRT release with ERR_ENGINE_INCOMPATIBLE', async () => {
    const forged = fp32.plan.slice();
    forged[25] = (forged[25] + 1) % 256; // another minor version
    let error: unknown;
    try {
      const loaded = await loadEngineNative(forged);
      await loaded.close();
    } catch (caught) {
      error = caught;
    }
    expect(isSpleenTrtError(error, 'ERR_ENGINE_INCOMPATIBLE')).toBe(true);
  }, 120_000);
});
