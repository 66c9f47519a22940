// The once-per-process warning of a Segmenter that falls back to onnxruntime where TensorRT was
// to be expected (a GPU without a usable TensorRT; the native addon missing), and silence on a
// plain CPU machine. Own file: the "once" is process state, and vitest forks a process per file.
import { afterEach, describe, expect, it } from 'vitest';
import { Segmenter } from '../../../src/index.js';
import { A100, FakeNative, fakeDeps, fakeMachine } from '../tensorrt/fake-tensorrt.js';

const warnings: Error[] = [];
const listener = (warning: Error) => warnings.push(warning);
process.on('warning', listener);
afterEach(() => {
  warnings.length = 0;
});

async function settle(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}

describe('the fallback warning', () => {
  it('says nothing on a machine without a GPU, warns once for a GPU without TensorRT, with the reason', async () => {
    const cpuOnly = await Segmenter.create({ threads: 1 }, fakeDeps(new FakeNative(), fakeMachine([])));
    await cpuOnly.close();
    await settle();
    expect(warnings).toEqual([]);

    const gpuNoTrt = fakeDeps(new FakeNative(), fakeMachine([A100], { available: false, reason: 'libnvinfer.so.10: cannot open shared object file' }));
    for (let i = 0; i < 2; i++) {
      const segmenter = await Segmenter.create({ threads: 1 }, gpuNoTrt);
      expect(segmenter.info.fallbackReason).toBe('no TensorRT: libnvinfer.so.10: cannot open shared object file');
      await segmenter.close();
    }
    await settle();
    expect(warnings).toHaveLength(1);
    expect((warnings[0] as Error & { code?: string }).code).toBe('SPLEEN_TRT_FALLBACK');
    expect(warnings[0].message).toContain('found a CUDA GPU but runs on onnxruntime (CPU): no TensorRT: libnvinfer.so.10');
    expect(warnings[0].message).toContain('npx spleen-trt info');
  });
});
