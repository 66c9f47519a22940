import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSpleenTrtError } from '../../../src/errors.js';
import { buildUnetOnnx, ONNXRUNTIME_CPU_OPTIONS } from '../../../src/model/build-unet-onnx.js';
import { optimizeOnnxForCpu } from '../../../src/model/optimize-onnx-for-cpu.js';
import { decodeModel, floatTensor, type NodeProto } from '../../../src/model/onnx-proto.js';
import { seededUnetWeights } from '../../../src/model/seeded-weights.js';
import { runOnnx as run, tinyModel } from '../../helpers/onnx.js';
import { IMPORT_FIXTURES } from '../import/import-fixtures.js';

function opCounts(onnx: Uint8Array): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of decodeModel(onnx).graph.nodes) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
  return counts;
}

function randomInput(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  });
}

/** A one-node model: x [1, 4, 6, 6, 6] -> `node` -> y, with `initializers`. */
function oneNodeModel(node: NodeProto, initializers: ReturnType<typeof floatTensor>[]): Uint8Array {
  return tinyModel([{ name: 'x', elemType: 1, dims: [1, 4, 6, 6, 6] }], [{ name: 'y', elemType: 1, dims: null }], [node], initializers);
}

describe('optimizeOnnxForCpu', () => {
  const weights = seededUnetWeights(5);
  const torchLike = buildUnetOnnx(weights);

  it('rewrites every shared-slope PRelu and every up-sampling ConvTranspose of the UNet', () => {
    const { onnx, report } = optimizeOnnxForCpu(torchLike);
    expect(report).toEqual({ leakyRelu: 17, subpixel: 4 });
    const counts = opCounts(onnx);
    expect(counts.PRelu).toBeUndefined();
    expect(counts.ConvTranspose).toBeUndefined();
    expect(counts.LeakyRelu).toBe(17);
    expect(counts.DepthToSpace).toBe(8);
    // The replaced weights are gone: the rewrite is not larger than the fused weights it adds.
    expect(decodeModel(onnx).graph.initializers.some((t) => t.name.endsWith('A.weight'))).toBe(false);
  });

  it('computes what the builder\'s own CPU graph computes, bit for bit, and the original to rounding', async () => {
    const { onnx } = optimizeOnnxForCpu(torchLike);
    const shape = [2, 1, 32, 32, 48];
    const input = randomInput(2 * 32 * 32 * 48, 9);
    const [rewritten, builtForCpu, original] = await Promise.all([
      run(onnx, input, shape),
      run(buildUnetOnnx(weights, undefined, ONNXRUNTIME_CPU_OPTIONS), input, shape),
      run(torchLike, input, shape),
    ]);
    expect(Buffer.from(rewritten.buffer).equals(Buffer.from(builtForCpu.buffer))).toBe(true);
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < original.length; i++) {
      scale = Math.max(scale, Math.abs(original[i]));
      diff = Math.max(diff, Math.abs(original[i] - rewritten[i]));
    }
    expect(diff).toBeLessThanOrEqual(1e-5 * scale);
  });

  it.each(['tiny-onnx-export.onnx', 'tiny-trt-export.onnx'])('rewrites what torch exported through MONAI (%s) to the same outputs', async (name) => {
    const exported = new Uint8Array(readFileSync(path.join(IMPORT_FIXTURES, name)));
    const { onnx, report } = optimizeOnnxForCpu(exported);
    expect(report).toEqual({ leakyRelu: 17, subpixel: 4 });
    // These exports have a static 96^3 input.
    const input = randomInput(96 ** 3, 4);
    const [before, after] = await Promise.all([run(exported, input, [1, 1, 96, 96, 96]), run(onnx, input, [1, 1, 96, 96, 96])]);
    const scale = before.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(before.reduce((m, v, i) => Math.max(m, Math.abs(v - after[i])), 0)).toBeLessThanOrEqual(1e-5 * scale);
  });

  it('returns the very same bytes when there is nothing to rewrite', () => {
    const cpu = buildUnetOnnx(weights, undefined, ONNXRUNTIME_CPU_OPTIONS);
    const { onnx, report } = optimizeOnnxForCpu(cpu);
    expect(onnx).toBe(cpu);
    expect(report).toEqual({ leakyRelu: 0, subpixel: 0 });
  });

  it('leaves per-channel PRelu and other ConvTranspose shapes alone', () => {
    const perChannel = oneNodeModel(
      { name: 'p', opType: 'PRelu', domain: '', inputs: ['x', 's'], outputs: ['y'], attributes: [] },
      [floatTensor('s', [4, 1, 1, 1], Float32Array.of(0.1, 0.2, 0.1, 0.1))],
    );
    expect(optimizeOnnxForCpu(perChannel).report).toEqual({ leakyRelu: 0, subpixel: 0 });
    const strideOne = oneNodeModel(
      {
        name: 't', opType: 'ConvTranspose', domain: '', inputs: ['x', 'w'], outputs: ['y'],
        attributes: [{ name: 'strides', type: 'INTS', ints: [1, 1, 1] }, { name: 'pads', type: 'INTS', ints: [1, 1, 1, 1, 1, 1] }],
      },
      [floatTensor('w', [4, 2, 3, 3, 3], new Float32Array(4 * 2 * 27))],
    );
    expect(optimizeOnnxForCpu(strideOne).report.subpixel).toBe(0);
  });

  it('rejects bytes that are not ONNX with ERR_MODEL_INVALID', () => {
    let caught: unknown;
    try {
      optimizeOnnxForCpu(new TextEncoder().encode('not a model at all'));
    } catch (error) {
      caught = error;
    }
    expect(isSpleenTrtError(caught) && caught.code).toBe('ERR_MODEL_INVALID');
  });
});
