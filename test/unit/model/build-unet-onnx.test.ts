import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildUnetOnnx, ONNXRUNTIME_CPU_OPTIONS, validateUnetWeights, type BuildUnetOnnxOptions } from '../../../src/model/build-unet-onnx.js';
import { decodeModel } from '../../../src/model/onnx-proto.js';
import { seededUnetWeights } from '../../../src/model/seeded-weights.js';
import { DEFAULT_UNET_CONFIG, type UnetConfig } from '../../../src/model/unet-architecture.js';
import { MODEL_FIXTURES, maxAbsDiff, parityCases, readFloat32, stateDictFixtures, toUnetConfig } from './unet-fixtures.js';
import { thrownError as catchError } from '../../helpers/rejection.js';

async function runOnnx(onnx: Uint8Array, input: Float32Array, shape: number[]): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 2 });
  try {
    const out = await session.run({ input_0: new ort.Tensor('float32', input, shape) });
    return out.output_0 as ort.Tensor;
  } finally {
    await session.release();
  }
}

describe('validateUnetWeights', () => {
  const weights = seededUnetWeights(11);

  it('accepts the seeded state_dict as a Map or a record, with or without num_batches_tracked', () => {
    expect(validateUnetWeights(weights).size).toBe(148);
    const record = Object.fromEntries([...weights].filter(([k]) => !k.endsWith('num_batches_tracked')));
    expect(validateUnetWeights(record).size).toBe(148 - 17);
  });

  it('lists missing, unexpected and mis-sized keys in one ERR_MODEL_INVALID', () => {
    const bad = new Map(weights);
    bad.delete('model.0.conv.unit0.conv.bias');
    bad.delete('model.2.1.conv.unit0.conv.weight');
    bad.set('module.extra.weight', new Float32Array(3));
    bad.set('model.0.residual.weight', new Float32Array(16 * 27 + 1));
    const error = catchError(() => buildUnetOnnx(bad));
    expect(error.code).toBe('ERR_MODEL_INVALID');
    expect(error.message).toContain('missing 2: model.0.conv.unit0.conv.bias, model.2.1.conv.unit0.conv.weight');
    expect(error.message).toContain('unexpected 1: module.extra.weight');
    expect(error.message).toContain('model.0.residual.weight (expected [16, 1, 3, 3, 3] = 432 values, got 433)');
    expect(error.details).toHaveLength(4);
  });

  it('rejects weights of another config', () => {
    const small: UnetConfig = { ...DEFAULT_UNET_CONFIG, channels: [4, 8, 16], strides: [2, 2] };
    const error = catchError(() => buildUnetOnnx(seededUnetWeights(1, small)));
    expect(error.code).toBe('ERR_MODEL_INVALID');
    expect(error.message).toMatch(/missing \d+: .*\(\d+ in all\)/);
  });

  it('rejects non-Float32Array values and bad options as caller mistakes', () => {
    const bad = new Map<string, Float32Array>(weights);
    bad.set('model.0.residual.bias', new Float64Array(16) as unknown as Float32Array);
    expect(() => buildUnetOnnx(bad)).toThrow(TypeError);
    expect(() => buildUnetOnnx(weights, undefined, { opset: 13 as 17 })).toThrow(RangeError);
    expect(() => buildUnetOnnx(weights, undefined, { batchNorm: 'none' as 'op' })).toThrow(RangeError);
    expect(() => buildUnetOnnx(weights, undefined, { spatialShape: [96, 96] as unknown as [number, number, number] })).toThrow(
      RangeError,
    );
  });
});

describe('buildUnetOnnx', () => {
  const weights = seededUnetWeights(20261127);

  it('writes opset 17 with the bundle names, symbolic batch and spatial dims', () => {
    const model = decodeModel(buildUnetOnnx(weights));
    expect(model.irVersion).toBe(8);
    expect(model.opsetImports).toEqual([{ domain: '', version: 17 }]);
    expect(model.graph.inputs).toEqual([{ name: 'input_0', elemType: 1, dims: ['batch', 1, 'd0', 'd1', 'd2'] }]);
    expect(model.graph.outputs).toEqual([{ name: 'output_0', elemType: 1, dims: ['batch', 2, 'd0', 'd1', 'd2'] }]);
    const fixed = decodeModel(buildUnetOnnx(weights, undefined, { spatialShape: [96, 96, 96], inputName: 'x', outputName: 'y' }));
    expect(fixed.graph.inputs[0]).toEqual({ name: 'x', elemType: 1, dims: ['batch', 1, 96, 96, 96] });
    expect(fixed.graph.outputs[0].name).toBe('y');
  });

  it('has the layer counts of the bundle network', () => {
    const count = (options: BuildUnetOnnxOptions) => {
      const counts: Record<string, number> = {};
      for (const n of decodeModel(buildUnetOnnx(weights, undefined, options)).graph.nodes) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
      return counts;
    };
    // Hand count: 4 down units x (2 convs + residual conv) + bottom (2 + 1x1) + 4 up units = 19 Conv;
    // 4 ConvTranspose; BN/PReLU after every conv but the last: 8 + 2 + 4 + 3 = 17;
    // residual Adds: 4 down + bottom + 4 up = 9; skip Concats: 4.
    expect(count({ batchNorm: 'op' })).toEqual({ Conv: 19, ConvTranspose: 4, BatchNormalization: 17, PRelu: 17, Add: 9, Concat: 4 });
    expect(count({})).toEqual({ Conv: 19, ConvTranspose: 4, PRelu: 17, Add: 9, Concat: 4 });
    expect(count({ prelu: 'leakyRelu' })).toEqual({ Conv: 19, ConvTranspose: 4, LeakyRelu: 17, Add: 9, Concat: 4 });
    const subpixel = count({ convTranspose: 'subpixel' });
    expect(subpixel.ConvTranspose).toBeUndefined();
    expect(subpixel.Conv).toBe(19 + 4 * 8);
    const fused = count({ convTranspose: 'subpixelFused' });
    expect(fused.ConvTranspose).toBeUndefined();
    expect(fused.Conv).toBe(19 + 4);
    expect(fused.Transpose).toBeUndefined();
    expect(fused.DepthToSpace).toBe(8);
  });

  it('is deterministic', () => {
    const a = buildUnetOnnx(weights);
    const b = buildUnetOnnx(new Map(weights));
    // Buffer.equals: a deep toEqual over 19 MB is needlessly slow.
    expect(a.length).toBeGreaterThan(4_808_917 * 4);
    expect(Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))).toBe(true);
  });
});

describe('buildUnetOnnx numerical parity with the MONAI UNet in torch (eval mode)', () => {
  const configs = stateDictFixtures();
  const variants: BuildUnetOnnxOptions[] = [
    { batchNorm: 'fold' },
    { batchNorm: 'op' },
    { convTranspose: 'subpixel' },
    { prelu: 'leakyRelu', convTranspose: 'subpixel', batchNorm: 'op' },
    { convTranspose: 'subpixelFused', batchNorm: 'op' },
    ONNXRUNTIME_CPU_OPTIONS,
  ];
  for (const c of parityCases()) {
    it(`matches torch within 1e-4 (${c.case}, input [${c.inputShape.join(', ')}])`, async () => {
      const config = toUnetConfig(configs[c.config].config);
      const weights = seededUnetWeights(c.seed, config);
      const input = readFloat32(`unet-${c.case}-input.bin`);
      const expected = readFloat32(`unet-${c.case}-output.bin`);
      // A tolerance only means something if the logits are not all tiny.
      expect(Math.max(...expected.map(Math.abs))).toBeGreaterThan(0.5);
      for (const options of variants) {
        const out = await runOnnx(buildUnetOnnx(weights, config, options), input, c.inputShape);
        expect(out.dims).toEqual(c.outputShape);
        expect(maxAbsDiff(out.data as Float32Array, expected), JSON.stringify(options)).toBeLessThanOrEqual(1e-4);
      }
    });
  }

  it("agrees with torch.onnx.export's model of the same network", async () => {
    const c = parityCases().find((p) => p.case === 'small-res1');
    if (!c) throw new Error('fixture case small-res1 missing');
    const input = readFloat32('unet-small-res1-input.bin');
    const torchOnnx = readFileSync(`${MODEL_FIXTURES}unet-small-res1-torch.onnx`);
    const theirs = await runOnnx(new Uint8Array(torchOnnx), input, c.inputShape);
    const ours = await runOnnx(buildUnetOnnx(seededUnetWeights(c.seed, toUnetConfig(configs[c.config].config)), toUnetConfig(configs[c.config].config)), input, c.inputShape);
    expect(maxAbsDiff(ours.data as Float32Array, theirs.data as Float32Array)).toBeLessThanOrEqual(1e-5);
  });

  it('runs a full 96^3 window with finite logits', async () => {
    const input = new Float32Array(96 ** 3);
    for (let i = 0; i < input.length; i++) input[i] = ((i * 2654435761) >>> 0) / 2 ** 32;
    const out = await runOnnx(buildUnetOnnx(seededUnetWeights(20261127)), input, [1, 1, 96, 96, 96]);
    expect(out.dims).toEqual([1, 2, 96, 96, 96]);
    expect((out.data as Float32Array).every(Number.isFinite)).toBe(true);
  });
});
