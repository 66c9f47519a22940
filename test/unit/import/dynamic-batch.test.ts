import { describe, expect, it } from 'vitest';
import { isSpleenTrtError } from '../../../src/errors.js';
import { buildUnetOnnx } from '../../../src/model/build-unet-onnx.js';
import { makeBatchDynamic } from '../../../src/model/dynamic-batch.js';
import { inspectOnnx } from '../../../src/model/inspect-onnx.js';
import { encodeModel, floatTensor, int64Tensor, type NodeProto, type TensorProto } from '../../../src/model/onnx-proto.js';
import { mulberry32, seededUnetWeights } from '../../../src/model/seeded-weights.js';
import { runOnnx as run, tinyModel } from '../../helpers/onnx.js';
import { fixtureBytes, maxAbsDiff, reference, tinyConfig } from './import-fixtures.js';

function random(n: number, seed: number): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => next());
}

/** x [1, 1, 2, 2, 2] -> Conv 1x1x1 -> <tail nodes> -> y, batch fixed at 1. */
function smallModel(tail: NodeProto[], extra: TensorProto[] = [], outputDims: Array<number | string> = [1, 1, 2, 2, 2]): Uint8Array {
  return tinyModel(
    [{ name: 'x', elemType: 1, dims: [1, 1, 2, 2, 2] }],
    [{ name: 'y', elemType: 1, dims: outputDims }],
    [{ name: 'conv', opType: 'Conv', domain: '', inputs: ['x', 'w', 'b'], outputs: ['c'], attributes: [] }, ...tail],
    [floatTensor('w', [1, 1, 1, 1, 1], new Float32Array([2])), floatTensor('b', [1], new Float32Array([0.5])), ...extra],
  );
}

const node = (opType: string, inputs: string[], attributes: NodeProto['attributes'] = []): NodeProto => ({
  name: opType.toLowerCase(),
  opType,
  domain: '',
  inputs,
  outputs: ['y'],
  attributes,
});

function refusal(onnx: Uint8Array): string {
  try {
    makeBatchDynamic(onnx);
  } catch (error) {
    if (isSpleenTrtError(error, 'ERR_MODEL_INVALID')) return error.message;
    throw error;
  }
  throw new Error('expected ERR_MODEL_INVALID');
}

describe('makeBatchDynamic', () => {
  it("rewrites MONAI onnx_export's static batch of 1; the model then runs a batch of 2 with the same logits", async () => {
    const ref = reference().onnx.find((o) => o.file === 'tiny-onnx-export.onnx')!;
    const original = fixtureBytes('tiny-onnx-export.onnx');
    const result = makeBatchDynamic(original);
    expect(result.changed).toBe(true);
    expect(result.inputName).toBe(ref.inputs[0][0]);
    expect(result.outputName).toBe(ref.outputs[0][0]);
    const before = inspectOnnx(original);
    const after = inspectOnnx(result.onnx);
    expect(before.inputs[0].dims).toEqual(ref.inputs[0][1]);
    expect(after.inputs[0].dims).toEqual(['batch', 1, 96, 96, 96]);
    expect(after.outputs[0].dims).toEqual(['batch', 2, 96, 96, 96]);
    expect(after.opCounts).toEqual(before.opCounts);
    expect(after.initializerElements).toBe(before.initializerElements);

    const n = 96 ** 3;
    const a = random(n, 1);
    const b = random(n, 2);
    const both = new Float32Array(2 * n);
    both.set(a);
    both.set(b, n);
    await expect(run(original, both, [2, 1, 96, 96, 96])).rejects.toThrow();
    const batched = await run(result.onnx, both, [2, 1, 96, 96, 96]);
    const single = await run(original, a, [1, 1, 96, 96, 96]);
    expect(maxAbsDiff(batched.subarray(0, 2 * n), single)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(batched.subarray(2 * n), await run(result.onnx, b, [1, 1, 96, 96, 96]))).toBeLessThanOrEqual(1e-6);
  });

  it('leaves a dynamic batch alone and returns the very same bytes', () => {
    const trt = fixtureBytes('tiny-trt-export.onnx');
    expect(makeBatchDynamic(trt)).toEqual({ onnx: trt, changed: false, inputName: 'input_0', outputName: 'output_0' });
    const built = buildUnetOnnx(seededUnetWeights(3, tinyConfig()), tinyConfig());
    expect(makeBatchDynamic(built).onnx).toBe(built);
  });

  it('uses the given dim_param name and checks it', () => {
    const model = smallModel([node('Relu', ['c'])]);
    const result = makeBatchDynamic(model, { batchParam: 'N' });
    expect(inspectOnnx(result.onnx).inputs[0].dims).toEqual(['N', 1, 2, 2, 2]);
    expect(() => makeBatchDynamic(model, { batchParam: '1x' })).toThrow(RangeError);
    expect(() => makeBatchDynamic('model.onnx' as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('accepts reshapes that follow the batch at run time: shape from Shape, or a leading 0', async () => {
    const viaShape = smallModel(
      [
        { name: 'shape', opType: 'Shape', domain: '', inputs: ['c'], outputs: ['s'], attributes: [] },
        node('Reshape', ['c', 's']),
      ],
    );
    const leadingZero = smallModel([node('Reshape', ['c', 'shape'])], [int64Tensor('shape', [2], [0, -1])], [1, 8]);
    for (const model of [viaShape, leadingZero]) {
      const { onnx, changed } = makeBatchDynamic(model);
      expect(changed).toBe(true);
      const out = await run(onnx, new Float32Array(16).fill(1), [2, 1, 2, 2, 2]);
      expect(Array.from(out)).toEqual(new Array(16).fill(2.5));
    }
  });

  it('refuses ops that would keep the exported batch size, naming the node', () => {
    expect(refusal(smallModel([node('Reshape', ['c', 'shape'])], [int64Tensor('shape', [2], [1, -1])], [1, 8]))).toMatch(
      /Reshape node "reshape" would keep the exported batch size \(its constant target shape \[1, -1\] fixes the batch size\)/,
    );
    expect(refusal(smallModel([node('Flatten', ['c'], [{ name: 'axis', type: 'INT', i: 0 }])], [], [1, 8]))).toMatch(/Flatten .*flattens the batch axis/);
    expect(refusal(smallModel([node('Transpose', ['c'], [{ name: 'perm', type: 'INTS', ints: [1, 0, 2, 3, 4] }])]))).toMatch(/Transpose .*moves the batch axis/);
    expect(refusal(smallModel([node('ReduceMean', ['c'])], [], [1, 1, 1, 1, 1]))).toMatch(/reduces over all axes/);
    expect(refusal(smallModel([node('Concat', ['c', 'c'], [{ name: 'axis', type: 'INT', i: -5 }])], [], ['n', 1, 2, 2, 2]))).toMatch(/its axis is the batch axis/);
    const plane = floatTensor('plane', [1, 1, 2, 2, 2], new Float32Array(8));
    expect(refusal(smallModel([node('Concat', ['c', 'plane'], [{ name: 'axis', type: 'INT', i: 1 }])], [plane], [1, 2, 2, 2, 2]))).toMatch(
      /joins the constant "plane" of fixed batch extent/,
    );
    expect(refusal(smallModel([node('Expand', ['c', 'shape'])], [int64Tensor('shape', [5], [1, 1, 2, 2, 2])]))).toMatch(/Expand is not known to be batch-independent/);
    const custom: NodeProto = { ...node('Fancy', ['c']), domain: 'com.example' };
    expect(refusal(smallModel([custom]))).toMatch(/domain "com\.example"/);
  });

  it('refuses models it cannot rewrite faithfully or that are not one image in, one map out', () => {
    const external: TensorProto = { name: 'b2', dataType: 1, dims: [1], rawData: new Uint8Array(0) };
    expect(refusal(smallModel([node('Add', ['c', 'b2'])], [external]))).toMatch(/tensor "b2" .*not stored as inline raw data/);
    const twoOutputs = encodeModel({
      irVersion: 8,
      opsetImports: [{ domain: '', version: 17 }],
      producerName: '',
      producerVersion: '',
      docString: '',
      graph: {
        name: 'g',
        nodes: [node('Relu', ['x']), { ...node('Neg', ['x']), outputs: ['z'] }],
        initializers: [],
        inputs: [{ name: 'x', elemType: 1, dims: [1, 1, 2, 2, 2] }],
        outputs: [
          { name: 'y', elemType: 1, dims: [1, 1, 2, 2, 2] },
          { name: 'z', elemType: 1, dims: [1, 1, 2, 2, 2] },
        ],
      },
    });
    expect(refusal(twoOutputs)).toMatch(/exactly one graph output .* has 2: y, z/);
    expect(refusal(new TextEncoder().encode('definitely not protobuf'))).toMatch(/Not a valid ONNX/);
  });
});
