/**
 * The ONNX -> oneDNN operation list translation (no oneDNN needed): the bundle UNet's structure,
 * BatchNormalization folding equal to the builder's own, and coded refusals of what it cannot run.
 */
import { describe, expect, it } from 'vitest';
import { onednnNetworkSpec, type OnednnConvOp } from '../../../src/inference/onednn-plan.js';
import { buildUnetOnnx, ONNXRUNTIME_CPU_OPTIONS } from '../../../src/model/build-unet-onnx.js';
import { DEFAULT_MODEL_SEED } from '../../../src/model/load-model.js';
import { seededUnetWeights } from '../../../src/model/seeded-weights.js';

const weights = seededUnetWeights(DEFAULT_MODEL_SEED);
const convs = (spec: ReturnType<typeof onednnNetworkSpec>) => spec.ops.filter((o): o is OnednnConvOp => o.kind === 'conv');

describe('onednnNetworkSpec', () => {
  it("fuses the bundle UNet's PRelu and residual sums into its 23 convolutions", () => {
    const spec = onednnNetworkSpec(buildUnetOnnx(weights));
    const c = convs(spec);
    expect(c.length).toBe(23);
    // The 4 stride-2 ConvTransposes in sub-pixel form: kernel 2, 8x the output channels' weights.
    expect(c.filter((o) => o.transposed).length).toBe(0);
    const up = c.filter((o) => o.subpixel);
    expect(up.map((o) => [o.inChannels, o.outChannels])).toEqual([[384, 64], [128, 32], [64, 16], [32, 2]]);
    for (const o of up) {
      expect([o.kernel, o.stride, o.padBegin, o.padEnd]).toEqual([2, 1, 0, 1]);
      expect(o.weights.length).toBe(8 * o.outChannels * o.inChannels * 8);
      expect(o.bias.length).toBe(8 * o.outChannels);
    }
    const deconv = convs(onednnNetworkSpec(buildUnetOnnx(weights), { upSampling: 'deconvolution' }));
    expect(deconv.filter((o) => o.transposed).length).toBe(4);
    expect(deconv.some((o) => o.subpixel)).toBe(false);
    expect(spec.ops.filter((o) => o.kind === 'concat').length).toBe(4);
    expect(c.flatMap((o) => o.postOps).filter((p) => p.kind === 'relu').length).toBe(17);
    expect(c.filter((o) => o.addTensor >= 0).length).toBe(9);
    // Every residual sum is the last post-op, after the PRelu (MONAI: prelu(norm(conv(x))) + res).
    for (const o of c.filter((x) => x.addTensor >= 0)) expect(o.postOps.at(-1)).toEqual({ kind: 'sum' });
    expect(spec.inputChannels).toBe(1);
    const last = spec.ops.at(-1) as OnednnConvOp;
    expect(spec.outputTensor).toBe(last.output);
    expect(last.outChannels).toBe(2);
  });

  it('folds explicit BatchNormalization nodes like the builder folds them', () => {
    const folded = convs(onednnNetworkSpec(buildUnetOnnx(weights)));
    const explicit = convs(onednnNetworkSpec(buildUnetOnnx(weights, undefined, { batchNorm: 'op' })));
    expect(explicit.length).toBe(folded.length);
    let max = 0;
    folded.forEach((op, i) => {
      for (let k = 0; k < op.weights.length; k++) max = Math.max(max, Math.abs(op.weights[k] - explicit[i].weights[k]));
      for (let k = 0; k < op.bias.length; k++) max = Math.max(max, Math.abs(op.bias[k] - explicit[i].bias[k]));
    });
    expect(max).toBeLessThanOrEqual(1e-6);
  });

  it('refuses the onnxruntime CPU graph (Reshape/DepthToSpace sub-pixel form) with ERR_BACKEND_UNAVAILABLE', () => {
    expect(() => onednnNetworkSpec(buildUnetOnnx(weights, undefined, ONNXRUNTIME_CPU_OPTIONS))).toThrow(
      expect.objectContaining({ code: 'ERR_BACKEND_UNAVAILABLE', message: expect.stringMatching(/cannot run \w+ node/) }),
    );
  });
});
