/**
 * The oneDNN network's own C++ layers against onnxruntime on single-layer ONNX graphs (random
 * weights): the sub-pixel form of ConvTranspose (per-parity convs and the fused conv, into blocked
 * and plain outputs, blocked and channels-last, through the depth-to-space) and the direct narrow conv (vector chunks, the
 * scalar edges, widths below one chunk, PRelu and residual post-ops), each also against oneDNN's
 * own primitive for the same layer. oneDNN 2.x comes from libdnnl-dev: required in CI.
 */
import { describe, expect, it } from 'vitest';
import { onednnNetworkSpec, type OnednnPlanOptions } from '../../src/inference/onednn-plan.js';
import { GraphBuilder } from '../../src/model/graph-builder.js';
import { intsAttribute } from '../../src/model/onnx-proto.js';
import { createOnednnNetwork, onednnInfo, type OnednnNetworkHandle } from '../../src/native/onednn.js';
import { runOnnx, tinyModel } from '../helpers/onnx.js';
import { requireTool } from '../helpers/system-tools.js';

type Shape3 = [number, number, number];

function seeded(length: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function model(g: GraphBuilder, cin: number, cout: number, output: string): Uint8Array {
  return tinyModel(
    [{ name: 'x', elemType: 1, dims: ['n', cin, 'd', 'h', 'w'] }],
    [{ name: output, elemType: 1, dims: ['n', cout, null, null, null] }],
    g.nodes,
    g.initializers,
  );
}

/** ConvTranspose k3 s2 pads 1 output_padding 1 (the UNet's up-sampling), then PRelu. */
function upLayer(cin: number, cout: number): Uint8Array {
  const g = new GraphBuilder(['x']);
  const w = g.init('w', [cin, cout, 3, 3, 3], seeded(cin * cout * 27, 11, 0.3));
  const b = g.init('b', [cout], seeded(cout, 12));
  const y = g.node('ConvTranspose', 'up', ['x', w, b], [
    intsAttribute('kernel_shape', [3, 3, 3]),
    intsAttribute('strides', [2, 2, 2]),
    intsAttribute('pads', [1, 1, 1, 1, 1, 1]),
    intsAttribute('output_padding', [1, 1, 1]),
  ]);
  const slope = g.init('slope', [1], new Float32Array([0.25]));
  return model(g, cin, cout, g.node('PRelu', 'act', [y, slope]));
}

/** Conv k3 pads 1 between narrow tensors, PRelu, + the input (MONAI's residual unit, narrow). */
function narrowLayer(channels: number): Uint8Array {
  const g = new GraphBuilder(['x']);
  const w = g.init('w', [channels, channels, 3, 3, 3], seeded(channels * channels * 27, 21, 0.3));
  const b = g.init('b', [channels], seeded(channels, 22));
  const y = g.node('Conv', 'conv', ['x', w, b], [intsAttribute('kernel_shape', [3, 3, 3]), intsAttribute('pads', [1, 1, 1, 1, 1, 1])]);
  const slope = g.init('slope', [1], new Float32Array([0.1]));
  const act = g.node('PRelu', 'act', [y, slope]);
  return model(g, channels, channels, g.node('Add', 'residual', [act, 'x']));
}

async function onednnRun(
  onnx: Uint8Array,
  input: Float32Array,
  batch: number,
  roi: Shape3,
  options: OnednnPlanOptions & { directConv?: boolean; subpixelSplit?: boolean; channelsLast?: boolean },
): Promise<Float32Array> {
  const spec = onednnNetworkSpec(onnx, { upSampling: options.upSampling });
  const network: OnednnNetworkHandle = createOnednnNetwork({
    ...spec,
    threads: 2,
    directConv: options.directConv,
    subpixelSplit: options.subpixelSplit,
    channelsLast: options.channelsLast,
  });
  try {
    return (await network.run(input, batch, roi)).logits;
  } finally {
    network.close();
  }
}

describe.runIf(requireTool(onednnInfo().available, 'oneDNN 2.x (libdnnl-dev)'))('oneDNN network C++ layers', () => {
  it.each([
    // [cin, cout, batch, input window]: 16 output channels fill a block (per-parity convs), 5 do
    // not (one fused conv, plain output); odd window shapes.
    [32, 16, 1, [6, 5, 7]],
    [32, 16, 3, [4, 9, 2]],
    [16, 5, 2, [5, 3, 6]],
    [16, 2, 1, [7, 4, 5]],
  ] as const)('sub-pixel ConvTranspose %i->%i (batch %i, %j) matches onnxruntime and the oneDNN deconvolution', async (cin, cout, batch, win) => {
    const onnx = upLayer(cin, cout);
    const spec = onednnNetworkSpec(onnx);
    expect(spec.ops[0]).toMatchObject({ subpixel: true, transposed: false, kernel: 2 });
    const input = seeded(batch * cin * win[0] * win[1] * win[2], 31 + cin + cout);
    const reference = await runOnnx(onnx, input, [batch, cin, ...win]);
    expect(reference.length).toBe(batch * cout * 8 * win[0] * win[1] * win[2]);
    const roi = [...win] as Shape3;
    const variants = [{}, { channelsLast: true }, { subpixelSplit: false }, { subpixelSplit: false, channelsLast: true }, { upSampling: 'deconvolution' as const }];
    for (const options of variants) {
      const out = await onednnRun(onnx, input, batch, roi, options);
      expect(out.length, JSON.stringify(options)).toBe(reference.length);
      expect(maxAbsDiff(out, reference), JSON.stringify(options)).toBeLessThanOrEqual(1e-4);
    }
    expect(Math.max(...reference) - Math.min(...reference)).toBeGreaterThan(0.1);
  });

  it.each([
    // Widths: 96 (whole chunks and the overlapping last one), 21 and 37 (partial), 17 and 5
    // (below one chunk plus edges: all scalar), depth and height 1 (all neighbours padding).
    [2, 1, [5, 6, 96]],
    [2, 2, [4, 3, 21]],
    [3, 1, [3, 4, 37]],
    [2, 3, [6, 2, 17]],
    [2, 1, [1, 1, 5]],
  ] as const)('direct %i-channel conv (batch %i, %j) matches onnxruntime and the oneDNN conv', async (channels, batch, roi) => {
    const onnx = narrowLayer(channels);
    const input = seeded(batch * channels * roi[0] * roi[1] * roi[2], 41 + roi[2]);
    const reference = await runOnnx(onnx, input, [batch, channels, ...roi]);
    for (const [directConv, channelsLast] of [[true, false], [true, true], [false, false]]) {
      const out = await onednnRun(onnx, input, batch, [...roi] as Shape3, { directConv, channelsLast });
      expect(out.length).toBe(reference.length);
      expect(maxAbsDiff(out, reference), `directConv ${directConv}`).toBeLessThanOrEqual(1e-5);
    }
    expect(maxAbsDiff(reference, input)).toBeGreaterThan(0.01);
  });
});
