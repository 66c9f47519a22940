import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildUnetOnnx } from '../../../src/model/build-unet-onnx.js';
import { inspectOnnx } from '../../../src/model/inspect-onnx.js';
import { seededUnetWeights } from '../../../src/model/seeded-weights.js';
import { MODEL_FIXTURES, stateDictFixtures } from './unet-fixtures.js';

describe('inspectOnnx', () => {
  it("summarises torch.onnx.export's model", () => {
    const summary = inspectOnnx(new Uint8Array(readFileSync(`${MODEL_FIXTURES}unet-small-res1-torch.onnx`)));
    expect(summary.irVersion).toBe(8);
    expect(summary.opset).toBe(17);
    expect(summary.producer).toBe('pytorch 1.13.0');
    expect(summary.inputs.map((v) => v.name)).toEqual(['input_0']);
    expect(summary.outputs.map((v) => v.name)).toEqual(['output_0']);
    // small-res1: 2 ConvTranspose up levels, 2 concats.
    expect(summary.opCounts.ConvTranspose).toBe(2);
    expect(summary.opCounts.Concat).toBe(2);
  });

  it('counts the bundle network with BN as ops: every state_dict value but the BN counters', () => {
    const summary = inspectOnnx(buildUnetOnnx(seededUnetWeights(1), undefined, { batchNorm: 'op' }));
    // 4,808,917 parameters + 2 x (running_mean, running_var) per BN; 17 BN layers.
    const bnChannels = 2 * (16 + 16 + 32 + 32 + 64 + 64 + 128 + 128 + 256 + 256 + 64 + 64 + 32 + 32 + 16 + 16 + 2);
    expect(summary.initializerElements).toBe(stateDictFixtures().bundle.parameterCount + bnChannels);
    expect(summary.initializerCount).toBe(148 - 17);
  });
});
