import { describe, expect, it } from 'vitest';
import { measure, type RunPlan } from '../../../src/bench/bench-worker.js';
import { onnxRuntimeCudaStatus, tensorRtUnavailable } from '../../../src/bench/run-bench.js';
import type { RuntimeInfo } from '../../../src/runtime-info.js';

function runtime(overrides: { driver?: boolean; devices?: number; trt?: boolean; usable?: boolean }): RuntimeInfo {
  return {
    packageVersion: '0',
    node: 'v20',
    platform: 'linux-x64',
    cpu: { model: 'cpu', cores: 2 },
    onnxruntime: { available: true, version: '1.30.0' },
    native: {
      available: true,
      addonPath: '/x.node',
      addonVersion: '0',
      napiVersion: 9,
      napiBuildVersion: 8,
      cuda: {
        driverAvailable: overrides.driver ?? false,
        reason: overrides.driver ? undefined : 'libcuda.so.1 missing',
        devices: Array.from({ length: overrides.devices ?? 0 }, (_, index) => ({
          index,
          name: 'GPU',
          computeCapability: '9.0',
          totalMemoryBytes: 1,
          pciBusId: '0',
        })) as never,
      },
      tensorrt: {
        available: overrides.trt ?? false,
        reason: overrides.trt ? undefined : 'libnvinfer.so.10 missing',
        parserAvailable: false,
        builderResourceAvailable: false,
      },
      compiledWith: { cudaToolkit: null, tensorrtHeaders: null },
    },
    cpuKernels: { native: true, reason: "the native addon's C++ kernels" },
    gzip: { inflater: 'libdeflate', libdeflate: true, isal: false, reason: 'libdeflate (/usr/lib/x86_64-linux-gnu/libdeflate.so.0); ISA-L not used (switched off)' },
    onednn: { available: false, version: null, path: null, reason: 'oneDNN not found: test', isa: null },
    cpuBackend: { name: 'onnxruntime', reason: 'no oneDNN 2.x (oneDNN not found: test)' },
    tensorrt: { usable: overrides.usable ?? false, reason: overrides.usable ? 'ok' : 'no CUDA driver: libcuda.so.1 missing' },
  };
}

describe('tensorRtUnavailable', () => {
  it('names the missing library first, whatever else is missing', () => {
    const r = tensorRtUnavailable(runtime({}));
    expect(r?.short).toBe('no TensorRT');
    expect(r?.detail).toContain('libnvinfer.so.10 missing');
    expect(r?.detail).toContain('no CUDA driver');
  });

  it('names the GPU when TensorRT loads but there is no device, and nothing when usable', () => {
    expect(tensorRtUnavailable(runtime({ trt: true, driver: true, devices: 0 }))?.short).toBe('no GPU');
    expect(tensorRtUnavailable(runtime({ trt: true, driver: false }))?.short).toBe('no CUDA driver');
    expect(tensorRtUnavailable(runtime({ trt: true, driver: true, devices: 1, usable: true }))).toBeNull();
  });
});

describe('onnxRuntimeCudaStatus', () => {
  it('reports the installed onnxruntime-node without its CUDA provider as unusable', () => {
    // This checkout installs onnxruntime-node with onnxruntime-node-install=skip (no CUDA EP).
    const status = onnxRuntimeCudaStatus(runtime({}));
    expect(status.usable).toBe(false);
    expect(status.detail).toMatch(/onnxruntime-node 1\.30\.0/);
  });
});

describe('measure', () => {
  const plan = (p: Partial<RunPlan>): RunPlan => ({ warmupIterations: 0, warmupMs: 0, minIterations: 1, minDurationMs: 0, maxIterations: 100, ...p });

  it('excludes the warm-up runs and reports them, then runs the minimum count', async () => {
    let calls = 0;
    const { samples, warmup } = await measure(plan({ warmupIterations: 2, minIterations: 5 }), async () => ({ wallMs: ++calls * 10 }));
    expect(calls).toBe(7);
    expect(warmup.iterations).toBe(2);
    expect(warmup.firstMs).toBe(10);
    expect(samples.map((s) => s.wallMs)).toEqual([30, 40, 50, 60, 70]);
  });

  it('keeps measuring until the minimum duration has passed, within the maximum count', async () => {
    const sleep = () => new Promise<{ wallMs: number }>((resolve) => setTimeout(() => resolve({ wallMs: 5 }), 5));
    const timed = await measure(plan({ minIterations: 1, minDurationMs: 40 }), sleep);
    expect(timed.samples.length).toBeGreaterThanOrEqual(4);
    const capped = await measure(plan({ minIterations: 1, minDurationMs: 10_000, maxIterations: 3 }), sleep);
    expect(capped.samples).toHaveLength(3);
  });
});
