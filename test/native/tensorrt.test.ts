// The TensorRT entry points of the addon as built here (CI: no TensorRT headers, no GPU): every
// call fails with the right code and a reason, never a crash; options are validated in TS before
// any native call. The builder/runtime code compiled against real headers is exercised by
// tensorrt-headers-build.test.ts; the GPU paths by test/gpu/tensorrt.test.ts.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSpleenTrtError, SpleenTrtError } from '../../src/errors.js';
import { loadAddon } from '../../src/native/addon.js';
import {
  buildEngineNative,
  getTensorRtLibraryStatus,
  loadEngineNative,
  type NativeBuildOptions,
} from '../../src/native/tensorrt.js';
import { addonPath, buildFakeLibrary, ensureAddonBuilt, hasCCompiler, makeTempDir } from './native-test-helpers.js';
import { runTensorRtChild } from './tensorrt-test-helpers.js';
import { anyRejection as rejection } from '../helpers/rejection.js';

let builtWithHeaders = false;
let tempRoot: string | undefined;

beforeAll(() => {
  ensureAddonBuilt();
  const addon = loadAddon();
  if (addon === null) throw new Error('the addon did not load');
  builtWithHeaders = addon.getRuntimeInfo().compiledWith.tensorrtHeaders !== null;
});

afterAll(() => {
  if (tempRoot !== undefined) rmSync(tempRoot, { recursive: true, force: true });
});

function validOptions(overrides: Partial<NativeBuildOptions> = {}): NativeBuildOptions {
  return {
    onnx: new Uint8Array([8, 1, 18, 0]),
    precision: 'fp32',
    inputName: 'input_0',
    profile: { min: 1, opt: 4, max: 8 },
    spatialShape: [96, 96, 96],
    ...overrides,
  };
}

/** The rejection of `promise`, which must reject. */

describe('the addon exports', () => {
  it('has the TensorRT entry points next to the runtime info', () => {
    const addon = loadAddon() as unknown as Record<string, unknown>;
    for (const name of ['getTensorRtStatusAsync', 'buildEngine', 'loadEngine', 'engineRun', 'engineClose']) {
      expect(typeof addon[name], name).toBe('function');
    }
  });

  it('rejects a handle that is not an engine with a TypeError, in native code', () => {
    const addon = loadAddon() as unknown as { engineRun(h: unknown, i: unknown, b: unknown): unknown; engineClose(h: unknown): unknown };
    expect(() => addon.engineClose({})).toThrow(TypeError);
    expect(() => addon.engineRun(null, new Float32Array(1), 1)).toThrow(/engine handle/);
  });
});

describe.runIf(process.platform === 'linux')('an addon built without TensorRT headers', () => {
  it('says so in the TensorRT status', async ({ skip }) => {
    if (builtWithHeaders) skip();
    const status = await getTensorRtLibraryStatus();
    expect(status.available).toBe(false);
    expect(status.reason).toContain('built without TensorRT headers');
    expect(status.reason).toContain('TENSORRT_ROOT');
  });

  it('rejects buildEngineNative with ERR_TENSORRT_UNAVAILABLE whose stack shows the caller', async ({ skip }) => {
    if (builtWithHeaders) skip();
    const error = await rejection(buildEngineNative(validOptions()));
    expect(error).toBeInstanceOf(SpleenTrtError);
    expect((error as SpleenTrtError).code).toBe('ERR_TENSORRT_UNAVAILABLE');
    expect(error.message).toContain('built without TensorRT headers');
    // Re-created in the awaiting function: its stack reaches back to this test file.
    expect(error.stack).toContain('tensorrt.test.ts');
    expect((error.cause as { code?: string }).code).toBe('ERR_TENSORRT_UNAVAILABLE');
  });

  it('rejects loadEngineNative on garbage bytes with ERR_TENSORRT_UNAVAILABLE', async ({ skip }) => {
    if (builtWithHeaders) skip();
    const error = await rejection(loadEngineNative(new Uint8Array(1000).fill(7)));
    expect(isSpleenTrtError(error, 'ERR_TENSORRT_UNAVAILABLE')).toBe(true);
  });
});

describe('loadEngineNative on bytes that are not a plan', () => {
  it('never crashes: ERR_TENSORRT_UNAVAILABLE or ERR_ENGINE_INCOMPATIBLE', async () => {
    for (const bytes of [new Uint8Array([1]), new Uint8Array(4096).fill(0xff), new TextEncoder().encode('ftrt but not really')]) {
      const error = await rejection(loadEngineNative(bytes, { contexts: 2 }));
      expect(error).toBeInstanceOf(SpleenTrtError);
      expect(['ERR_TENSORRT_UNAVAILABLE', 'ERR_ENGINE_INCOMPATIBLE']).toContain((error as SpleenTrtError).code);
    }
  });
});

describe('buildEngineNative option validation', () => {
  const cases: Array<[string, unknown, ErrorConstructor, string]> = [
    ['options', null, TypeError, 'Expected an options object for options but received null'],
    ['onnx', validOptions({ onnx: [1, 2] as unknown as Uint8Array }), TypeError, 'Expected a Uint8Array for options.onnx'],
    ['empty onnx', validOptions({ onnx: new Uint8Array(0) }), RangeError, 'Expected non-empty ONNX bytes for options.onnx'],
    ['precision', validOptions({ precision: 'int8' as 'fp32' }), RangeError, 'Expected "fp32" or "tf32" or "fp16" for options.precision but received "int8"'],
    ['inputName', validOptions({ inputName: '' }), RangeError, 'options.inputName'],
    ['profile order', validOptions({ profile: { min: 4, opt: 2, max: 8 } }), RangeError, 'Expected an integer in [4, 2147483647] for options.profile.opt but received 2'],
    ['profile zero', validOptions({ profile: { min: 0, opt: 1, max: 1 } }), RangeError, 'options.profile.min'],
    ['profile fraction', validOptions({ profile: { min: 1, opt: 1.5, max: 2 } }), RangeError, 'options.profile.opt'],
    ['spatialShape length', validOptions({ spatialShape: [96, 96] as unknown as [number, number, number] }), RangeError, 'options.spatialShape'],
    ['spatialShape value', validOptions({ spatialShape: [96, -1, 96] }), RangeError, 'options.spatialShape[1]'],
    ['workspaceBytes', validOptions({ workspaceBytes: 0 }), RangeError, 'options.workspaceBytes'],
    ['optLevel', validOptions({ optLevel: 6 }), RangeError, 'Expected an integer in [0, 5] for options.optLevel but received 6'],
    ['versionCompatible', validOptions({ versionCompatible: 'yes' as unknown as boolean }), TypeError, 'options.versionCompatible'],
    ['hardwareCompat', validOptions({ hardwareCompat: 'hopper+' as 'none' }), RangeError, 'options.hardwareCompat'],
    ['device', validOptions({ device: -1 }), RangeError, 'options.device'],
    ['timingCache', validOptions({ timingCache: 'cache' as unknown as Uint8Array }), TypeError, 'options.timingCache'],
    ['timingCacheIgnoreMismatch', validOptions({ timingCacheIgnoreMismatch: 1 as unknown as boolean }), TypeError, 'options.timingCacheIgnoreMismatch'],
    ['signal', validOptions({ signal: {} as AbortSignal }), TypeError, 'Expected an AbortSignal for options.signal'],
    ['onProgress', validOptions({ onProgress: 1 as unknown as () => void }), TypeError, 'options.onProgress'],
  ];
  for (const [name, options, type, message] of cases) {
    it(`rejects a bad ${name} with ${type.name}`, async () => {
      const error = await rejection(buildEngineNative(options as NativeBuildOptions));
      expect(error).toBeInstanceOf(type);
      expect(error.message).toContain(message);
    });
  }

  it('rejects an already aborted signal with ERR_ABORTED, carrying the reason', async () => {
    const controller = new AbortController();
    const reason = new Error('user gave up');
    controller.abort(reason);
    const error = await rejection(buildEngineNative(validOptions({ signal: controller.signal })));
    expect(isSpleenTrtError(error, 'ERR_ABORTED')).toBe(true);
    expect(error.cause).toBe(reason);
  });
});

describe('loadEngineNative option validation', () => {
  it('checks the plan and every option', async () => {
    const plan = new Uint8Array(64);
    expect(await rejection(loadEngineNative('plan.bin' as unknown as Uint8Array))).toBeInstanceOf(TypeError);
    expect((await rejection(loadEngineNative(new Uint8Array(0)))).message).toContain('non-empty plan bytes');
    expect((await rejection(loadEngineNative(plan, { contexts: 0 }))).message).toContain('options.contexts');
    expect((await rejection(loadEngineNative(plan, { contexts: 65 }))).message).toBe(
      'Expected an integer in [1, 64] for options.contexts but received 65',
    );
    expect(await rejection(loadEngineNative(plan, { device: 0.5 }))).toBeInstanceOf(RangeError);
    expect(await rejection(loadEngineNative(plan, { useCudaGraph: 1 as unknown as boolean }))).toBeInstanceOf(TypeError);
  });
});

// A child Node loads the addon with LD_LIBRARY_PATH holding only fake TensorRT libraries (the
// runtime-info tests' technique): what the addon does when libnvinfer is there but unusable.
describe.runIf(process.platform === 'linux' && hasCCompiler())('with a fake libnvinfer on the library path', () => {
  it('reports the fake version and still refuses to build or load, without crashing', ({ skip }) => {
    if (builtWithHeaders) skip();
    tempRoot ??= makeTempDir('trt-fakes');
    const trt = path.join(tempRoot, 'trt');
    buildFakeLibrary(trt, 'libnvinfer.so.10', 'fake_nvinfer.c', { FAKE_VERSION: 101300 });
    buildFakeLibrary(trt, 'libnvonnxparser.so.10', 'fake_nvonnxparser.c');

    const report = runTensorRtChild(addonPath, [trt]);

    expect(report.status).toEqual({
      available: false,
      version: '10.13.0',
      reason: expect.stringContaining('built without TensorRT headers') as unknown as string,
    });
    for (const outcome of [report.build, report.loadPlan, report.loadGarbage]) {
      expect(outcome.code).toBe('ERR_TENSORRT_UNAVAILABLE');
      expect(outcome.details).toEqual([]);
    }
  });
});

describe('builds and loads across Node environments', () => {
  it('survives many concurrent calls and worker threads torn down mid-call', () => {
    // Each worker starts builds (own native thread each) and loads (libuv pool) and is terminated
    // without waiting: the environment cleanup hooks must join those threads before the
    // thread-safe functions go away. A crash or hang shows as a non-zero status or a timeout.
    const script = `
      const { Worker } = require('node:worker_threads');
      const addon = require(process.env.ADDON);
      const request = { onnx: new Uint8Array(1024), precision: 'fp32', inputName: 'x', batchMin: 1, batchOpt: 1,
        batchMax: 1, spatialShape: [8, 8, 8], workspaceBytes: 0, optLevel: 0, versionCompatible: false,
        hardwareCompat: 'none', device: 0 };
      const code = 'const a = require(process.env.ADDON); const r = ' + JSON.stringify(request) + ';' +
        'r.onnx = new Uint8Array(1024);' +
        'for (let i = 0; i < 8; i++) { a.buildEngine(r, () => {}).promise.catch(() => {}); a.loadEngine(new Uint8Array(64), 0, 1, true).catch(() => {}); }' +
        'require("node:worker_threads").parentPort.postMessage("started");';
      (async () => {
        const codes = new Set();
        const settled = await Promise.allSettled(Array.from({ length: 40 }, () => {
          const handle = addon.buildEngine(request, null);
          return handle.promise;
        }));
        for (const s of settled) codes.add(s.status === 'rejected' ? s.reason.code : 'resolved');
        for (let i = 0; i < 6; i++) {
          const worker = new Worker(code, { eval: true });
          await new Promise((resolve) => worker.once('message', resolve));
          await worker.terminate();
        }
        process.stdout.write(JSON.stringify([...codes]));
      })();
    `;
    const result = spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      env: { ...process.env, ADDON: addonPath, LD_LIBRARY_PATH: '' },
      timeout: 60_000,
    });
    expect(result.status, result.stderr).toBe(0);
    const codes = JSON.parse(result.stdout) as string[];
    // Without TensorRT (or a GPU) every build is refused the same way; never resolved.
    expect(codes).toHaveLength(1);
    expect(['ERR_TENSORRT_UNAVAILABLE', 'ERR_NO_GPU']).toContain(codes[0]);
  });
});
