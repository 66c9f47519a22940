/**
 * The oneDNN CPU backend against onnxruntime on the same weights (seeded bundle UNet): logits
 * within 1e-4, masks identical; the addon without oneDNN says so; bad specs are coded errors.
 * oneDNN 2.x comes from Debian's libdnnl-dev (.ci/system-packages.txt): required in CI.
 */
import { spawnSync } from 'node:child_process';
import { setImmediate as nextTurn } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOnednnBackend } from '../../src/inference/onednn-backend.js';
import { onednnNetworkSpec } from '../../src/inference/onednn-plan.js';
import { createOnnxRuntimeBackend } from '../../src/inference/onnxruntime-backend.js';
import type { InferenceBackend } from '../../src/inference/backend.js';
import { loadSeededModel } from '../../src/model/load-model.js';
import { getNativeAddonPath } from '../../src/native/addon.js';
import { createOnednnNetwork, onednnInfo } from '../../src/native/onednn.js';
import { hasCommand, requireTool } from '../helpers/system-tools.js';

const info = onednnInfo();

function seededInput(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 4 - 2;
  }
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe.runIf(requireTool(info.available, 'oneDNN 2.x (libdnnl-dev)'))('oneDNN backend', () => {
  let onednn: InferenceBackend;
  let ort: InferenceBackend;
  beforeAll(async () => {
    onednn = createOnednnBackend(loadSeededModel('tensorrt').onnx, { inputName: 'input_0', outputName: 'output_0' });
    ort = await createOnnxRuntimeBackend(loadSeededModel('onnxruntime').onnx, { intraOpThreads: 2 });
  });
  afterAll(async () => {
    await onednn?.close();
    await ort?.close();
  });

  it.each([
    [1, [32, 32, 32]],
    [2, [48, 32, 16]],
    [4, [16, 48, 32]],
  ] as const)('gives onnxruntime\'s logits within 1e-4 (batch %i, %j)', async (batch, roi) => {
    const input = seededInput(batch * roi[0] * roi[1] * roi[2], 7 + batch);
    const [a, b] = [await onednn.run(input, batch, [...roi]), await ort.run(input, batch, [...roi])];
    expect(a.logits.length).toBe(b.logits.length);
    expect(maxAbsDiff(a.logits, b.logits)).toBeLessThanOrEqual(1e-4);
    // A second run of the same shape reuses the plan (primitives, buffers, scratchpad), possibly
    // on another libuv thread: the same logits.
    const again = await onednn.run(input, batch, [...roi]);
    expect(maxAbsDiff(again.logits, a.logits)).toBe(0);
    // Not trivially equal: the logits vary.
    expect(Math.max(...b.logits.subarray(0, 1000)) - Math.min(...b.logits.subarray(0, 1000))).toBeGreaterThan(0.01);
  });

  it.each([
    ['one fused sub-pixel conv per layer', { subpixelSplit: false }],
    ['the blocked layout', { channelsLast: false }],
    ['the channels-last layout', { channelsLast: true }],
    ['oneDNN deconvolutions and oneDNN convs only', { upSampling: 'deconvolution', directConv: false }],
  ] as const)('with %s gives onnxruntime\'s logits within 1e-4 too (batch 4, 16x32x48)', async (_, options) => {
    const other = createOnednnBackend(loadSeededModel('tensorrt').onnx, { inputName: 'input_0', outputName: 'output_0' }, options);
    try {
      const input = seededInput(4 * 16 * 32 * 48, 5);
      const [a, b] = [await other.run(input, 4, [16, 32, 48]), await ort.run(input, 4, [16, 32, 48])];
      expect(maxAbsDiff(a.logits, b.logits)).toBeLessThanOrEqual(1e-4);
    } finally {
      await other.close();
    }
  });

  it('reuses dropped logits and input buffers of other sizes and still gives onnxruntime\'s logits', async () => {
    // The addon pools the runs' float buffers: a logits buffer comes back when JS drops it (GC).
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const shapes = [
      [2, [48, 32, 16]],
      [1, [32, 32, 16]],
      [2, [16, 32, 48]],
    ] as const;
    for (const [batch, roi] of shapes) {
      const input = seededInput(batch * roi[0] * roi[1] * roi[2], 40 + batch);
      const a = (await onednn.run(input, batch, [...roi])).logits;
      const b = (await ort.run(input, batch, [...roi])).logits;
      expect(a.length).toBe(b.length);
      expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-4);
      gc();
      await nextTurn();
    }
  });

  it('rejects a wrong input length and a window the strides do not divide with coded errors', async () => {
    await expect(onednn.run(new Float32Array(10), 1, [32, 32, 32])).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(onednn.run(new Float32Array(30 * 32 * 32), 1, [30, 32, 32])).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('refuses a network whose weights do not fit its channels, with a code', () => {
    const spec = onednnNetworkSpec(loadSeededModel('tensorrt').onnx);
    const first = spec.ops[0];
    if (first.kind !== 'conv') throw new Error('expected a conv first');
    const broken = { ...spec, ops: [{ ...first, weights: first.weights.subarray(1) }, ...spec.ops.slice(1)] };
    expect(() => createOnednnNetwork(broken)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    const wrongChannels = { ...spec, inputChannels: 2 };
    expect(() => createOnednnNetwork(wrongChannels)).toThrow(/channels/);
  });

  it('takes a thread count and is closed after close()', async () => {
    const backend = createOnednnBackend(loadSeededModel('tensorrt').onnx, { inputName: 'input_0', outputName: 'output_0' }, { threads: 1 });
    expect(backend.description).toMatch(/^oneDNN 2\.\d+\.\d+ CPU fp32 \(.*, 1 OpenMP threads\)$/);
    await backend.close();
    await expect(backend.run(new Float32Array(16 ** 3), 1, [16, 16, 16])).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });
});

describe('oneDNN missing', () => {
  it.runIf(hasCommand('readelf'))('the addon does not link libdnnl (no DT_NEEDED on it)', () => {
    const readelf = spawnSync('readelf', ['-d', getNativeAddonPath()!], { encoding: 'utf8' });
    expect(readelf.status).toBe(0);
    expect(readelf.stdout).toMatch(/\(NEEDED\)/);
    expect(readelf.stdout).not.toMatch(/libdnnl|libmkldnn/);
  });

  it('the addon loads and reports "oneDNN not found" when the library is absent', () => {
    const addonPath = getNativeAddonPath();
    expect(addonPath).not.toBeNull();
    const script =
      'const m = require(process.argv[1]); console.log(JSON.stringify(m.onednnInfo())); ' +
      'try { m.createOnednnNetwork({ inputChannels: 1, tensorCount: 1, outputTensor: 0, ops: [] }); } catch (e) { console.log(e.code); }';
    const run = spawnSync(process.execPath, ['-e', script, addonPath!], {
      env: { ...process.env, SPLEEN_TRT_ONEDNN_LIBRARY: 'libdnnl-absent.so.2' },
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).toBe(0);
    const [json, code] = run.stdout.trim().split('\n');
    const missing = JSON.parse(json);
    expect(missing.available).toBe(false);
    expect(missing.reason).toMatch(/oneDNN not found: .*libdnnl-absent\.so\.2/);
    expect(code).toBe('ERR_BACKEND_UNAVAILABLE');
  });
});
