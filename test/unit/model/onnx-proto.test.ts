import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  decodeModel,
  encodeModel,
  floatTensor,
  int64Tensor,
  tensorToFloat32,
  tensorToInt64,
  type ModelProto,
} from '../../../src/model/onnx-proto.js';
import { seededUnetWeights } from '../../../src/model/seeded-weights.js';
import { MODEL_FIXTURES, parityCases, stateDictFixtures, toUnetConfig } from './unet-fixtures.js';

const bytes = (...values: number[]) => new Uint8Array(values);

describe('onnx-proto', () => {
  it('encodes a small model to the bytes protobuf prescribes, and decodes them back', () => {
    // Hand-assembled from onnx.proto's field numbers: ModelProto.ir_version (1), graph (7),
    // opset_import (8); GraphProto.name (2), input (11); ValueInfoProto.name (1), type (2);
    // TypeProto.tensor_type (1); Tensor.elem_type (1), shape (2); Shape.dim (1);
    // Dimension.dim_value (1), dim_param (2).
    const expected = bytes(
      0x08, 0x08, // ir_version 8
      0x3a, 0x19, // graph, 25 bytes
      0x12, 0x01, 0x67, // name "g"
      0x5a, 0x14, // input, 20 bytes
      0x0a, 0x01, 0x78, // name "x"
      0x12, 0x0f, // type
      0x0a, 0x0d, // tensor_type
      0x08, 0x01, // elem_type FLOAT
      0x12, 0x09, // shape
      0x0a, 0x03, 0x12, 0x01, 0x4e, // dim_param "N"
      0x0a, 0x02, 0x08, 0x03, // dim_value 3
      0x42, 0x02, 0x10, 0x11, // opset_import version 17
    );
    const model: ModelProto = {
      irVersion: 8,
      opsetImports: [{ domain: '', version: 17 }],
      producerName: '',
      producerVersion: '',
      docString: '',
      graph: { name: 'g', nodes: [], initializers: [], inputs: [{ name: 'x', elemType: 1, dims: ['N', 3] }], outputs: [] },
    };
    expect(encodeModel(model)).toEqual(expected);
    expect(decodeModel(expected)).toEqual(model);
  });

  it('round-trips nodes, every attribute type, initializers and shapes', () => {
    const weight = new Float32Array(300).map((_, i) => Math.fround(i * 0.37 - 50));
    const model: ModelProto = {
      irVersion: 8,
      opsetImports: [
        { domain: '', version: 17 },
        { domain: 'com.example', version: 1 },
      ],
      producerName: 'test',
      producerVersion: '1.2.3',
      docString: 'ünïcödé',
      graph: {
        name: 'graph',
        nodes: [
          {
            name: 'n0',
            opType: 'Custom',
            domain: 'com.example',
            inputs: ['x', 'w', ''],
            outputs: ['y', 'z'],
            attributes: [
              { name: 'f', type: 'FLOAT', f: Math.fround(1e-5) },
              { name: 'i', type: 'INT', i: -1 },
              { name: 'big', type: 'INT', i: 2 ** 40 + 3 },
              { name: 's', type: 'STRING', s: 'hello' },
              { name: 't', type: 'TENSOR', t: int64Tensor('shape', [3], [-1, 0, 7]) },
              { name: 'fs', type: 'FLOATS', floats: [0.5, -2.25] },
              { name: 'is', type: 'INTS', ints: [0, 1, -2, 300, 2 ** 35] },
              { name: 'ss', type: 'STRINGS', strings: ['a', ''] },
            ],
          },
          { name: '', opType: 'Relu', domain: '', inputs: ['y'], outputs: ['out'], attributes: [] },
        ],
        initializers: [floatTensor('w', [3, 10, 10], weight), floatTensor('scalar', [], new Float32Array([3]))],
        inputs: [{ name: 'x', elemType: 1, dims: ['batch', 1, null, 16] }],
        outputs: [
          { name: 'out', elemType: 1, dims: null },
          { name: 'z', elemType: 7, dims: [] },
        ],
      },
    };
    const decoded = decodeModel(encodeModel(model));
    expect(decoded).toEqual(model);
    expect(tensorToFloat32(decoded.graph.initializers[0])).toEqual(weight);
    const t = decoded.graph.nodes[0].attributes.find((a) => a.type === 'TENSOR');
    expect(t?.type === 'TENSOR' && tensorToInt64(t.t)).toEqual([-1, 0, 7]);
  });

  it('decodes packed repeated fields and float_data/int64_data tensors', () => {
    // AttributeProto { name "p", ints packed [1, -1], type INTS }
    const packedInts = bytes(0x0a, 0x01, 0x70, 0x42, 0x0b, 0x01, ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 0xa0, 0x01, 0x07);
    // TensorProto { dims packed [2], data_type FLOAT, float_data packed [1.5, -2], name "f" }
    const floatData = bytes(0x0a, 0x01, 0x02, 0x10, 0x01, 0x22, 0x08, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x42, 0x01, 0x66);
    // TensorProto { dims [1], data_type INT64, int64_data [5] (unpacked), name "k" }
    const int64Data = bytes(0x08, 0x01, 0x10, 0x07, 0x38, 0x05, 0x42, 0x01, 0x6b);
    // NodeProto { op_type "N", attribute packedInts }, GraphProto { node, initializer x2 }
    const node = bytes(0x22, 0x01, 0x4e, 0x2a, packedInts.length, ...packedInts);
    const graph = bytes(0x0a, node.length, ...node, 0x2a, floatData.length, ...floatData, 0x2a, int64Data.length, ...int64Data);
    const model = bytes(0x08, 0x07, 0x3a, graph.length, ...graph);
    const decoded = decodeModel(model);
    expect(decoded.irVersion).toBe(7);
    expect(decoded.graph.nodes[0].attributes[0]).toEqual({ name: 'p', type: 'INTS', ints: [1, -1] });
    const [f, k] = decoded.graph.initializers;
    expect(f.dims).toEqual([2]);
    expect(tensorToFloat32(f)).toEqual(new Float32Array([1.5, -2]));
    expect(tensorToInt64(k)).toEqual([5]);
  });

  it("reads torch.onnx.export's model of the MONAI UNet", () => {
    const c = parityCases().find((p) => p.case === 'small-res1');
    if (!c) throw new Error('fixture case small-res1 missing');
    const model = decodeModel(new Uint8Array(readFileSync(`${MODEL_FIXTURES}unet-small-res1-torch.onnx`)));
    expect(model.irVersion).toBe(8);
    expect(model.opsetImports).toContainEqual({ domain: '', version: 17 });
    expect(model.graph.inputs).toEqual([{ name: 'input_0', elemType: 1, dims: ['batch', 1, 8, 12, 16] }]);
    expect(model.graph.outputs).toEqual([{ name: 'output_0', elemType: 1, dims: ['batch', 2, 8, 12, 16] }]);
    expect(model.graph.nodes.filter((n) => n.opType === 'ConvTranspose')).toHaveLength(2);
    const conv = model.graph.nodes.find((n) => n.opType === 'Conv');
    expect(conv?.attributes).toContainEqual({ name: 'pads', type: 'INTS', ints: [1, 1, 1, 1, 1, 1] });
    // Initializers the exporter kept under their state_dict names hold our seeded values exactly.
    const weights = seededUnetWeights(c.seed, toUnetConfig(stateDictFixtures()[c.config].config));
    const named = model.graph.initializers.filter((t) => weights.has(t.name));
    expect(named.length).toBeGreaterThan(5);
    for (const t of named) expect(tensorToFloat32(t), t.name).toEqual(weights.get(t.name));
  });

  it('rejects bytes that are not an ONNX model', () => {
    const invalid = (b: Uint8Array) => () => decodeModel(b);
    expect(invalid(new TextEncoder().encode('definitely not onnx'))).toThrow(expect.objectContaining({ code: 'ERR_MODEL_INVALID' }));
    expect(invalid(new Uint8Array(0))).toThrow(/no ir_version or no graph/);
    const good = encodeModel({
      irVersion: 8,
      opsetImports: [{ domain: '', version: 17 }],
      producerName: 'x',
      producerVersion: '',
      docString: '',
      graph: { name: 'g', nodes: [], initializers: [floatTensor('w', [64], new Float32Array(64))], inputs: [], outputs: [] },
    });
    expect(invalid(good.subarray(0, good.length - 20))).toThrow(expect.objectContaining({ code: 'ERR_MODEL_INVALID' }));
  });
});
