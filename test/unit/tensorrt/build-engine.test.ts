import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SpleenTrtError } from '../../../src/errors.js';
import { buildEngine, type BuildEngineOptions, type BuildEngineProgress } from '../../../src/inference/build-engine.js';
import { parseSidecar } from '../../../src/inference/engine-sidecar.js';
import { buildUnetOnnx } from '../../../src/model/build-unet-onnx.js';
import { sha256Hex } from '../../../src/model/load-model.js';
import { decodeModel, encodeModel, TensorDataType } from '../../../src/model/onnx-proto.js';
import { seededUnetWeights } from '../../../src/model/seeded-weights.js';
import { A100, fakeDeps, fakeMachine, FakeNative, fakePlan } from './fake-tensorrt.js';
import { rejection } from '../../helpers/rejection.js';

const config = { inChannels: 1, outChannels: 2, channels: [4, 8], strides: [2], kernelSize: 3, upKernelSize: 3, numResUnits: 1 };
const weights = seededUnetWeights(9, config);
/** Symbolic batch and spatial dims, as this package's builder writes them. */
const dynamicOnnx = buildUnetOnnx(weights, config);
/** Batch 1 and 16^3, as MONAI's plain onnx_export writes them. */
const staticOnnx = (() => {
  const model = decodeModel(buildUnetOnnx(weights, config, { spatialShape: [16, 16, 16] }));
  model.graph.inputs[0].dims![0] = 1;
  model.graph.outputs[0].dims![0] = 1;
  return encodeModel(model);
})();

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-build-'));


describe('buildEngine (fake native builder)', () => {
  it('builds from ONNX bytes and writes the plan and its sidecar', async () => {
    const dir = tmp();
    const output = path.join(dir, 'engines', 'spleen.plan');
    const deps = fakeDeps();
    const progress: BuildEngineProgress[] = [];
    const result = await buildEngine(
      { onnx: dynamicOnnx, output, precision: 'tf32', dynamicBatch: [2, 4, 16], workspaceBytes: 2 ** 30, optLevel: 5, device: 0, onProgress: (p) => progress.push(p) },
      deps,
    );
    const [call] = deps.native.builds;
    expect(call.precision).toBe('tf32');
    expect(call.inputName).toBe('input_0');
    expect(call.profile).toEqual({ min: 2, opt: 4, max: 16 });
    expect(call.spatialShape).toEqual([96, 96, 96]); // symbolic dims: the bundle's window
    expect(call.workspaceBytes).toBe(2 ** 30);
    expect(call.optLevel).toBe(5);
    expect(call.versionCompatible).toBe(false);
    expect(call.hardwareCompat).toBe('none');
    expect(call.onnx).toBe(dynamicOnnx); // already dynamic, fp32: passed through untouched

    const plan = readFileSync(output);
    expect(Buffer.from(result.plan).equals(plan)).toBe(true);
    const sidecar = parseSidecar(JSON.parse(readFileSync(`${output}.json`, 'utf8')));
    expect(sidecar).toEqual(result.sidecar);
    expect(sidecar.plan).toEqual({ sha256: sha256Hex(plan), bytes: plan.length, tensorrtVersion: '10.3.0.7' });
    expect(sidecar.onnx).toMatchObject({ sha256: sha256Hex(dynamicOnnx), builtSha256: sha256Hex(dynamicOnnx), inputName: 'input_0', outputName: 'output_0', dynamicBatchRewritten: false, fp16Converted: false });
    expect(sidecar.gpu).toEqual({ index: 0, ...A100 });
    expect(sidecar.cuda).toEqual({ driverVersion: '12.4', toolkit: '12.4.131' });
    expect(sidecar.build).toEqual({ workspaceBytes: 2 ** 30, optLevel: 5, versionCompatible: false, hardwareCompat: 'none' });
    expect(sidecar.tensorrtVersion).toBe('10.3.0');
    expect(Date.now() - Date.parse(sidecar.createdAt)).toBeLessThan(60_000);
    expect(result.log).toEqual(['[W] a warning']);
    expect(progress.map((p) => p.phase)).toEqual(['prepare', 'prepare', 'parse', 'tactics', 'write', 'write']);
    // Nothing else in the directory: no temporary files left behind.
    expect(readdirSync(path.dirname(output)).sort()).toEqual(['spleen.plan', 'spleen.plan.json']);
  });

  it('makes a static batch dynamic and takes the window from the fixed spatial dims', async () => {
    const dir = tmp();
    const file = path.join(dir, 'static.onnx');
    writeFileSync(file, staticOnnx);
    const deps = fakeDeps();
    const { sidecar } = await buildEngine({ onnxPath: file, output: path.join(dir, 'a.plan') }, deps);
    const sent = decodeModel(deps.native.builds[0].onnx).graph;
    expect(sent.inputs[0].dims).toEqual(['batch', 1, 16, 16, 16]);
    expect(sent.outputs[0].dims).toEqual(['batch', 2, 16, 16, 16]);
    expect(deps.native.builds[0].spatialShape).toEqual([16, 16, 16]);
    expect(sidecar.onnx.dynamicBatchRewritten).toBe(true);
    expect(sidecar.onnx.sha256).toBe(sha256Hex(staticOnnx));
    expect(sidecar.onnx.builtSha256).toBe(sha256Hex(deps.native.builds[0].onnx));
    expect(sidecar.precision).toBe('fp32'); // the default

    const mismatch = await rejection(buildEngine({ onnxPath: file, output: path.join(dir, 'b.plan'), spatialShape: [32, 32, 32] }, deps));
    expect(mismatch.code).toBe('ERR_MODEL_INVALID');
    expect(mismatch.message).toMatch(/fixed at 16x16x16, not the requested 32x32x32/);
  });

  it('derives the fp16 ONNX for fp16 on TensorRT 11, and uses the fp32 one (kFP16) on TensorRT 10', async () => {
    const dir = tmp();
    const floatTypes = (onnx: Uint8Array) => new Set(decodeModel(onnx).graph.initializers.filter((t) => t.dataType !== TensorDataType.INT64).map((t) => t.dataType));

    const trt11 = fakeDeps(new FakeNative({ version: '11.1.0' }));
    const eleven = await buildEngine({ onnx: dynamicOnnx, output: path.join(dir, 'a.plan'), precision: 'fp16' }, trt11);
    expect(floatTypes(trt11.native.builds[0].onnx)).toEqual(new Set([TensorDataType.FLOAT16]));
    expect(eleven.sidecar.onnx.fp16Converted).toBe(true);
    expect(eleven.sidecar.onnx.builtSha256).not.toBe(eleven.sidecar.onnx.sha256);
    expect(eleven.sidecar.plan.tensorrtVersion).toBe('11.1.0.7');

    await buildEngine({ onnx: dynamicOnnx, output: path.join(dir, 'b.plan'), precision: 'fp32' }, trt11);
    expect(floatTypes(trt11.native.builds[1].onnx)).toEqual(new Set([TensorDataType.FLOAT]));

    const trt10 = fakeDeps(new FakeNative({ version: '10.16.0' }));
    const ten = await buildEngine({ onnx: dynamicOnnx, output: path.join(dir, 'c.plan'), precision: 'fp16' }, trt10);
    expect(floatTypes(trt10.native.builds[0].onnx)).toEqual(new Set([TensorDataType.FLOAT]));
    expect(trt10.native.builds[0].precision).toBe('fp16');
    expect(ten.sidecar.onnx.fp16Converted).toBe(false);
  });

  it('a failing build leaves no file and keeps an existing plan as it was', async () => {
    const dir = tmp();
    const output = path.join(dir, 'spleen.plan');
    writeFileSync(output, 'the previous plan');
    let sawOutputDuringBuild: boolean | undefined;
    const native = new FakeNative({
      build: async () => {
        sawOutputDuringBuild = readFileSync(output, 'utf8') === 'the previous plan';
        throw Object.assign(new Error('Parser error: node Conv_3: unsupported'), { code: 'ERR_ONNX_PARSE', details: ['Conv_3: unsupported attribute'] });
      },
    });
    const error = await rejection(buildEngine({ onnx: dynamicOnnx, output }, fakeDeps(native)));
    expect(error.code).toBe('ERR_ONNX_PARSE');
    expect(error.details).toEqual(['Conv_3: unsupported attribute']);
    expect(sawOutputDuringBuild).toBe(true);
    expect(readdirSync(dir)).toEqual(['spleen.plan']);
    expect(readFileSync(output, 'utf8')).toBe('the previous plan');

    const plain = new FakeNative({ build: async () => Promise.reject(new Error('CUDA error 2')) });
    const wrapped = await rejection(buildEngine({ onnx: dynamicOnnx, output: path.join(dir, 'x.plan') }, fakeDeps(plain)));
    expect(wrapped.code).toBe('ERR_BUILD_FAILED');
    expect(wrapped.message).toBe('TensorRT engine build failed: CUDA error 2');

    const notPlan = new FakeNative({ build: async () => ({ plan: new Uint8Array(64), tensorrtVersion: '10.3.0', log: [] }) });
    expect((await rejection(buildEngine({ onnx: dynamicOnnx, output: path.join(dir, 'y.plan') }, fakeDeps(notPlan)))).message).toMatch(/not a TensorRT plan/);
    expect(readdirSync(dir)).toEqual(['spleen.plan']);
  });

  it('takes the plan back when its sidecar cannot be written', async () => {
    const dir = tmp();
    const output = path.join(dir, 'spleen.plan');
    mkdirSync(`${output}.json`); // a directory where the sidecar should go: rename fails
    await expect(buildEngine({ onnx: dynamicOnnx, output }, fakeDeps())).rejects.toThrow();
    expect(readdirSync(dir)).toEqual(['spleen.plan.json']);
  });

  it('an abort before, during or right after the build writes nothing', async () => {
    const dir = tmp();
    const output = path.join(dir, 'spleen.plan');
    const before = new AbortController();
    before.abort();
    expect((await rejection(buildEngine({ onnx: dynamicOnnx, output, signal: before.signal }, fakeDeps()))).code).toBe('ERR_ABORTED');

    const during = new AbortController();
    const native = new FakeNative({
      build: async (options) => {
        expect(options.signal).toBe(during.signal);
        during.abort();
        // A builder that finishes with a valid plan anyway: the abort must still win.
        return { plan: fakePlan(), tensorrtVersion: '10.3.0', log: [] };
      },
    });
    expect((await rejection(buildEngine({ onnx: dynamicOnnx, output, signal: during.signal }, fakeDeps(native)))).code).toBe('ERR_ABORTED');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('reads the timing cache if present and writes the combined one back atomically', async () => {
    const dir = tmp();
    const cache = path.join(dir, 'caches', 'timing.cache');
    const deps = fakeDeps();
    const first = await buildEngine({ onnx: dynamicOnnx, output: path.join(dir, 'a.plan'), timingCache: cache }, deps);
    expect(deps.native.builds[0].timingCache).toBeUndefined(); // missing file = fresh cache
    expect(first.timingCachePath).toBe(cache);
    expect([...readFileSync(cache)]).toEqual([1]);
    await buildEngine({ onnx: dynamicOnnx, output: path.join(dir, 'b.plan'), timingCache: cache }, deps);
    expect([...(deps.native.builds[1].timingCache ?? [])]).toEqual([1]);
    expect([...readFileSync(cache)]).toEqual([1, 2]);
    expect(readdirSync(path.dirname(cache))).toEqual(['timing.cache']);
  });

  it('ERR_TENSORRT_UNAVAILABLE with the reason, ERR_NO_GPU, and no file, where they are missing', async () => {
    const dir = tmp();
    const output = path.join(dir, 'spleen.plan');
    const missing = fakeDeps(new FakeNative({ available: false, reason: 'libnvinfer.so.10: cannot open shared object file' }));
    const error = await rejection(buildEngine({ onnx: dynamicOnnx, output }, missing));
    expect(error.code).toBe('ERR_TENSORRT_UNAVAILABLE');
    expect(error.message).toBe('libnvinfer.so.10: cannot open shared object file');

    // The TensorRT support module itself cannot load: the addon's probe says why.
    const noModule = { native: async () => Promise.reject(new Error('Cannot find module')), machineInfo: async () => fakeMachine([A100], { available: false, reason: 'TensorRT library not found (tried libnvinfer.so.11)' }) };
    const probe = await rejection(buildEngine({ onnx: dynamicOnnx, output }, noModule));
    expect(probe.code).toBe('ERR_TENSORRT_UNAVAILABLE');
    expect(probe.message).toBe('TensorRT library not found (tried libnvinfer.so.11)');

    expect((await rejection(buildEngine({ onnx: dynamicOnnx, output }, fakeDeps(undefined, fakeMachine([]))))).code).toBe('ERR_NO_GPU');
    expect((await rejection(buildEngine({ onnx: dynamicOnnx, output, device: 1 }, fakeDeps()))).message).toBe('No CUDA GPU with index 1 (1 found)');
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });

  it('reports unreadable models before touching TensorRT', async () => {
    const dir = tmp();
    const deps = fakeDeps();
    expect((await rejection(buildEngine({ onnxPath: path.join(dir, 'nope.onnx'), output: path.join(dir, 'a.plan') }, deps))).code).toBe('ERR_FILE_NOT_FOUND');
    expect((await rejection(buildEngine({ onnx: new Uint8Array([1, 2, 3]), output: path.join(dir, 'a.plan') }, deps))).code).toBe('ERR_MODEL_INVALID');
    expect(deps.native.builds).toHaveLength(0);
  });

  it.each<[string, Partial<BuildEngineOptions>, typeof TypeError | typeof RangeError]>([
    ['no ONNX', { onnx: undefined }, TypeError],
    ['both ONNX sources', { onnxPath: 'x.onnx' }, TypeError],
    ['no output', { output: '' }, TypeError],
    ['an unknown precision', { precision: 'int8' as never }, RangeError],
    ['an unordered profile', { dynamicBatch: [4, 1, 8] }, RangeError],
    ['a zero batch', { dynamicBatch: [0, 4, 8] }, RangeError],
    ['a two-entry profile', { dynamicBatch: [1, 4] as never }, TypeError],
    ['opt level 6', { optLevel: 6 }, RangeError],
    ['a fractional workspace', { workspaceBytes: 1.5 }, RangeError],
    ['an unknown hardware level', { hardwareCompat: 'hopper+' as never }, RangeError],
    ['a negative device', { device: -1 }, RangeError],
  ])('rejects %s as a caller mistake', async (_name, overrides, type) => {
    const deps = fakeDeps();
    await expect(buildEngine({ onnx: dynamicOnnx, output: '/nonexistent/x.plan', ...overrides }, deps)).rejects.toBeInstanceOf(type);
    expect(deps.native.builds).toHaveLength(0);
  });
});
