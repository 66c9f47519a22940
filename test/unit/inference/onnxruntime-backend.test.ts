import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSpleenTrtError } from '../../../src/errors.js';
import type { InferenceBackend } from '../../../src/inference/backend.js';
import { createOnnxRuntimeBackend } from '../../../src/inference/onnxruntime-backend.js';
import { buildUnetOnnx } from '../../../src/model/build-unet-onnx.js';
import { floatTensor, type NodeProto, type ValueInfoProto } from '../../../src/model/onnx-proto.js';
import { seededUnetWeights } from '../../../src/model/seeded-weights.js';
import { DEFAULT_UNET_CONFIG } from '../../../src/model/unet-architecture.js';
import { tinyModel } from '../../helpers/onnx.js';
import { MODEL_FIXTURES, maxAbsDiff, parityCases, readFloat32, stateDictFixtures, toUnetConfig } from '../model/unet-fixtures.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'spleen-ort-'));
const open: InferenceBackend[] = [];
afterAll(async () => {
  await Promise.all(open.map((b) => b.close()));
});

let thread: 'worker' | 'main' = 'worker';

async function backendOf(model: Uint8Array | string): Promise<InferenceBackend> {
  const b = await createOnnxRuntimeBackend(model, { intraOpThreads: 2, thread });
  open.push(b);
  return b;
}

const node = (opType: string, inputs: string[], outputs: string[]): NodeProto => ({ name: '', opType, domain: '', inputs, outputs, attributes: [] });

/** y0 = 2x + 0.5, y1 = -x via a 1x1x1 Conv; `batch` may be fixed. */
function pointwiseModel(batch: number | string, spatial: Array<number | string> = ['a', 'b', 'c']) {
  return tinyModel(
    [{ name: 'x', elemType: 1, dims: [batch, 1, ...spatial] }],
    [{ name: 'y', elemType: 1, dims: [batch, 2, ...spatial] }],
    [node('Conv', ['x', 'w', 'bias'], ['y'])],
    [floatTensor('w', [2, 1, 1, 1, 1], new Float32Array([2, -1])), floatTensor('bias', [2], new Float32Array([0.5, 0]))],
  );
}

async function expectCode(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isSpleenTrtError(error), String(error)).toBe(true);
  expect((error as { code: string }).code).toBe(code);
  if (message) expect((error as Error).message).toMatch(message);
}

describe.each(['worker', 'main'] as const)('createOnnxRuntimeBackend, session on the %s thread', (where) => {
  beforeAll(() => {
    thread = where;
  });

  it('runs the UNet builder output from a file path and matches torch (batch 2, non-cubic)', async () => {
    const c = parityCases().find((p) => p.case === 'bundle-b2');
    if (!c) throw new Error('fixture case bundle-b2 missing');
    const file = path.join(tmp, 'unet.onnx');
    writeFileSync(file, buildUnetOnnx(seededUnetWeights(c.seed)));
    const backend = await backendOf(file);
    expect(backend.name).toBe('onnxruntime');
    expect([backend.inputName, backend.outputName, backend.outputChannels]).toEqual(['input_0', 'output_0', 2]);
    expect(backend.description).toMatch(new RegExp(`onnxruntime-node 1\\.\\d+\\.\\d+ CPU, 2 intra-op threads, ${where} thread`));
    const input = readFloat32('unet-bundle-b2-input.bin');
    const result = await backend.run(input, 2, [16, 32, 16]);
    expect(result.logits).toHaveLength(2 * 2 * 16 * 32 * 16);
    expect(maxAbsDiff(result.logits, readFloat32('unet-bundle-b2-output.bin'))).toBeLessThanOrEqual(1e-4);
    expect(result.timings.computeMs).toBeGreaterThan(0);
    // Window 2 alone gives window 2's logits (to GEMM-blocking rounding; a mix-up would be O(1)).
    const second = await backend.run(input.subarray(16 * 32 * 16), 1, [16, 32, 16]);
    expect(maxAbsDiff(second.logits, result.logits.subarray(2 * 16 * 32 * 16))).toBeLessThanOrEqual(1e-5);
  });

  it("runs torch.onnx.export's model (fixed spatial dims) and reads its names", async () => {
    const c = parityCases().find((p) => p.case === 'small-res1');
    if (!c) throw new Error('fixture case small-res1 missing');
    const backend = await backendOf(path.join(MODEL_FIXTURES, 'unet-small-res1-torch.onnx'));
    expect([backend.inputName, backend.outputName, backend.outputChannels]).toEqual(['input_0', 'output_0', 2]);
    const result = await backend.run(readFloat32('unet-small-res1-input.bin'), 1, [8, 12, 16]);
    expect(maxAbsDiff(result.logits, readFloat32('unet-small-res1-output.bin'))).toBeLessThanOrEqual(1e-4);
    await expectCode(backend.run(new Float32Array(8 * 8 * 8), 1, [8, 8, 8]), 'ERR_MODEL_INVALID', /fixed at a different size/);
  });

  it('reads names and the output channel count from the model', async () => {
    const config = { ...DEFAULT_UNET_CONFIG, outChannels: 3, channels: [4, 8], strides: [2], numResUnits: 1 };
    const backend = await backendOf(buildUnetOnnx(seededUnetWeights(4, config), config, { inputName: 'image', outputName: 'logits' }));
    expect([backend.inputName, backend.outputName, backend.outputChannels]).toEqual(['image', 'logits', 3]);
    const { logits } = await backend.run(new Float32Array(2 * 4 * 6 * 8).fill(0.5), 2, [4, 6, 8]);
    expect(logits).toHaveLength(2 * 3 * 4 * 6 * 8);
    // A network with 2 input channels is not a single-channel CT network.
    const twoIn = toUnetConfig(stateDictFixtures()['small-res0'].config);
    await expectCode(backendOf(buildUnetOnnx(seededUnetWeights(4, twoIn), twoIn)), 'ERR_MODEL_INVALID', /has 2 channels/);
  });

  it('splits batches for a model with a fixed batch of 1, hand-checked values', async () => {
    const backend = await backendOf(pointwiseModel(1));
    const x = new Float32Array([0, 1, 2, 3, 4, 5, -1, -2, 10, 20, 30, 40]); // 3 windows of 1x2x2
    const { logits } = await backend.run(x, 3, [1, 2, 2]);
    const expected = new Float32Array(24);
    for (let w = 0; w < 3; w++) {
      for (let v = 0; v < 4; v++) {
        expected[w * 8 + v] = 2 * x[w * 4 + v] + 0.5;
        expected[w * 8 + 4 + v] = -x[w * 4 + v] + 0; // + bias 0 turns -0 into +0, as the conv does
      }
    }
    expect(logits).toEqual(expected);
  });

  it('zero-pads the last chunk for a fixed batch of 2', async () => {
    const backend = await backendOf(pointwiseModel(2));
    const { logits } = await backend.run(new Float32Array([1, 2, 3]), 3, [1, 1, 1]);
    expect(logits).toEqual(new Float32Array([2.5, -1, 4.5, -2, 6.5, -3]));
  });

  it('rejects models without the [N, 1, d0, d1, d2] -> [N, C, d0, d1, d2] signature', async () => {
    const v = (name: string, dims: Array<number | string>, elemType = 1): ValueInfoProto => ({ name, elemType, dims });
    const dims5 = ['n', 1, 'a', 'b', 'c'];
    await expectCode(
      backendOf(tinyModel([v('x', dims5), v('z', dims5)], [v('y', dims5)], [node('Add', ['x', 'z'], ['y'])])),
      'ERR_MODEL_INVALID',
      /expected 1 input, found 2 \(x, z\)/,
    );
    await expectCode(
      backendOf(tinyModel([v('x', ['n', 1, 'h', 'w'])], [v('y', ['n', 1, 'h', 'w'])], [node('Identity', ['x'], ['y'])])),
      'ERR_MODEL_INVALID',
      /input x has shape \[n, 1, h, w\], expected \[N, C, d0, d1, d2\]/,
    );
    await expectCode(
      backendOf(tinyModel([v('x', ['n', 3, 'a', 'b', 'c'])], [v('y', ['n', 3, 'a', 'b', 'c'])], [node('Identity', ['x'], ['y'])])),
      'ERR_MODEL_INVALID',
      /has 3 channels/,
    );
    await expectCode(
      backendOf(tinyModel([v('x', ['n', 'c', 'a', 'b', 'd'])], [v('y', ['n', 'c', 'a', 'b', 'd'])], [node('Identity', ['x'], ['y'])])),
      'ERR_MODEL_INVALID',
      /channel dimension must be a fixed number/,
    );
    await expectCode(
      backendOf(tinyModel([v('x', dims5, 7)], [v('y', dims5, 7)], [node('Identity', ['x'], ['y'])])),
      'ERR_MODEL_INVALID',
      /type int64, expected float32/,
    );
  });

  it('maps missing and corrupt files to error codes', async () => {
    await expectCode(backendOf(path.join(tmp, 'nope.onnx')), 'ERR_FILE_NOT_FOUND', /nope\.onnx/);
    const junk = path.join(tmp, 'junk.onnx');
    writeFileSync(junk, 'this is not a protobuf at all');
    await expectCode(backendOf(junk), 'ERR_MODEL_INVALID', /onnxruntime cannot load/);
    await expectCode(backendOf(new Uint8Array(0)), 'ERR_MODEL_INVALID');
    await expectCode(backendOf(tmp), 'ERR_MODEL_INVALID');
    const truncated = pointwiseModel('n');
    await expectCode(backendOf(truncated.subarray(0, truncated.length - 9)), 'ERR_MODEL_INVALID');
  });

  it('rejects bad arguments as caller mistakes', async () => {
    await expect(createOnnxRuntimeBackend(42 as unknown as string)).rejects.toThrow(TypeError);
    await expect(createOnnxRuntimeBackend(pointwiseModel('n'), { intraOpThreads: 0 })).rejects.toThrow(
      'Expected a positive integer for options.intraOpThreads but received 0',
    );
    await expect(createOnnxRuntimeBackend(pointwiseModel('n'), { graphOptimizationLevel: 'max' as 'all' })).rejects.toThrow(RangeError);
    await expect(createOnnxRuntimeBackend(pointwiseModel('n'), { thread: 'other' as 'main' })).rejects.toThrow(RangeError);
    const backend = await backendOf(pointwiseModel('n'));
    await expect(backend.run(new Float32Array(7), 1, [2, 2, 2])).rejects.toThrow(RangeError);
    await expect(backend.run(new Float32Array(8), 0, [2, 2, 2])).rejects.toThrow(RangeError);
    await expect(backend.run([1] as unknown as Float32Array, 1, [1, 1, 1])).rejects.toThrow(TypeError);
  });

  it('closes idempotently, after in-flight runs, and refuses runs afterwards', async () => {
    const backend = await createOnnxRuntimeBackend(pointwiseModel('n'), { intraOpThreads: 1, thread: where });
    const running = backend.run(new Float32Array([1, 2]), 2, [1, 1, 1]);
    const closed = backend.close();
    const { logits } = await running;
    await closed;
    await backend.close();
    await expectCode(backend.run(new Float32Array([1]), 1, [1, 1, 1]), 'ERR_CLOSED');
    // Results stay valid after the session is released.
    expect(logits).toEqual(new Float32Array([2.5, -1, 4.5, -2]));
  });
});
