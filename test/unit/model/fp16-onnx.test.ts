/**
 * The fp16 ONNX derived for TensorRT 11 (strongly typed: fp16 weights and compute, fp32 I/O).
 *
 * Numerics are checked on the CPU with onnxruntime. Its x86-64 CPU provider has no float16
 * Conv/ConvTranspose/PRelu kernels: it wraps such nodes in Casts and computes them in float32
 * (measured: for the torch-export-like graph the fp16 graph's output equals the float32 graph
 * run with the fp16-rounded weights to ~1e-6), rounding activations to float16 only where an fp16
 * kernel exists (Concat, Transpose, BatchNormalization). So the run proves that the
 * converted graph type-checks and runs, and that its weights are the correctly rounded halves;
 * TensorRT's fp16 accumulation is checked by the GPU tests. Tolerances are relative to the largest
 * |logit| (about 3 for the seeded default network at 32^3):
 * - fp16 graph vs original fp32 graph: max |diff| <= 4e-3 * max|y| (~8 half-precision ulps;
 *   measured 5.8e-4 torch-like, 9.2e-4 sub-pixel, 9.2e-4 BN nodes; weights rounded to bfloat16's
 *   8 bits instead would give ~8x more);
 * - fp32 graph with the fp16 graph's weights decoded back vs the fp16 graph: <= 2e-3 * max|y|
 *   (measured 0 torch-like, 4.8e-4 sub-pixel, 4.9e-4 BN nodes, where fp16 kernels round).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildUnetOnnx, ONNXRUNTIME_CPU_OPTIONS, type BuildUnetOnnxOptions } from '../../../src/model/build-unet-onnx.js';
import { convertOnnxToFp16, float16BitsToFloat32, float32ToFloat16Bits } from '../../../src/model/fp16-onnx.js';
import {
  decodeModel,
  encodeModel,
  floatTensor,
  int64Tensor,
  TensorDataType,
  tensorToFloat32,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from '../../../src/model/onnx-proto.js';
import { seededUnetWeights } from '../../../src/model/seeded-weights.js';
import { thrownError as catchError } from '../../helpers/rejection.js';

const FIXTURE = path.resolve(import.meta.dirname, '../../fixtures/tensorrt/fp16-rounding.json');

/** Independent decoding of binary16 bits (sign, 5-bit exponent, 10-bit fraction). */
function halfValue(bits: number): number {
  const s = bits >> 15 ? -1 : 1;
  const e = (bits >> 10) & 31;
  const f = bits & 1023;
  if (e === 31) return f ? NaN : s * Infinity;
  return e === 0 ? s * f * 2 ** -24 : s * 2 ** (e - 15) * (1 + f / 1024);
}

/** The correctly rounded half of finite x, checked against both neighbours (ties to even bits). */
function isNearestHalf(x: number, bits: number): boolean {
  const v = halfValue(bits);
  const mag = bits & 0x7fff;
  const neighbours = [mag - 1, mag + 1].filter((m) => m >= 0 && m <= 0x7bff).map((m) => halfValue((bits & 0x8000) | m));
  if (x === 0) return mag === 0;
  if (Math.sign(v) !== Math.sign(x) && v !== 0) return false;
  return neighbours.every((n) => {
    const d = Math.abs(x - v);
    const dn = Math.abs(x - n);
    return d < dn || (d === dn && (mag & 1) === 0);
  });
}

function halfTensorValues(t: TensorProto): Float32Array {
  const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
  const out = new Float32Array(t.rawData.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = halfValue(view.getUint16(i * 2, true));
  return out;
}

/** The original fp32 model with each FLOAT initializer replaced by the fp16 model's value, decoded. */
function withDecodedHalfWeights(original: Uint8Array, fp16: Uint8Array): Uint8Array {
  const halves = new Map(decodeModel(fp16).graph.initializers.map((t) => [t.name, t]));
  const model = decodeModel(original);
  model.graph.initializers = model.graph.initializers.map((t) => {
    const h = halves.get(t.name);
    if (t.dataType !== TensorDataType.FLOAT || !h) return t;
    return floatTensor(t.name, t.dims, halfTensorValues(h));
  });
  return encodeModel(model);
}

async function runOnnx(onnx: Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 2 });
  try {
    const tensors = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)]));
    const out = await session.run(tensors);
    const first = out[session.outputNames[0]];
    expect(first.type).toBe('float32');
    return first.data as Float32Array;
  } finally {
    await session.release();
  }
}

function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('float32ToFloat16Bits', () => {
  it('rounds hand-computed values to nearest, ties to even', () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // largest finite half
      [65519, 0x7bff], // below the midpoint 65520 to the next (infinite) step
      [65520, 0x7c00], // exactly the midpoint: ties to even = infinity
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // midpoint between 0 and 2^-24: ties to even = 0
      [1.5 * 2 ** -25, 0x0001],
      [3 * 2 ** -25, 0x0002], // midpoint between subnormals 1 and 2: even = 2
      [1 + 2 ** -11, 0x3c00], // midpoint 1 / 1 + 2^-10: even = 1
      [1 + 3 * 2 ** -11, 0x3c02], // midpoint 1 + 2^-10 / 1 + 2^-9: even = 0x3c02
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
    ];
    for (const [value, bits] of cases) expect([value, float32ToFloat16Bits(value)]).toEqual([value, bits]);
    const nan = float32ToFloat16Bits(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
  });

  it("matches numpy's astype(float16) bit for bit on 1925 values (edges, exact ties, random)", () => {
    const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { float32Bits: number[]; float16Bits: number[]; float16Values: Array<number | string | null> };
    const f32 = new Float32Array(new Uint32Array(fixture.float32Bits).buffer);
    let mismatches = 0;
    for (let i = 0; i < f32.length; i++) {
      const got = float32ToFloat16Bits(f32[i]);
      const want = fixture.float16Bits[i];
      const bothNaN = Number.isNaN(f32[i]) && (got & 0x7c00) === 0x7c00 && (got & 0x3ff) !== 0;
      if (got !== want && !bothNaN) mismatches++;
    }
    expect(mismatches).toBe(0);
    // The decoder against numpy's decoding of the same bits.
    for (let i = 0; i < f32.length; i++) {
      const want = fixture.float16Values[i];
      const got = float16BitsToFloat32(fixture.float16Bits[i]);
      if (want === null) expect(got).toBeNaN();
      else expect(got).toBe(typeof want === 'string' ? Number(want.replace('inf', 'Infinity')) : want);
    }
  });

  it('decodes every one of the 65536 halves and re-encodes it to the same bits', () => {
    let bad = 0;
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = float16BitsToFloat32(bits);
      const isNaN = (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;
      if (isNaN ? !Number.isNaN(v) : v !== halfValue(bits) || float32ToFloat16Bits(v) !== bits) bad++;
    }
    expect(bad).toBe(0);
  });
});

describe('convertOnnxToFp16: structure', () => {
  const onnx = buildUnetOnnx(seededUnetWeights(7), undefined, ONNXRUNTIME_CPU_OPTIONS);
  const original = decodeModel(onnx);
  const converted = decodeModel(convertOnnxToFp16(onnx));

  it('casts the float32 input to fp16 first and the fp16 result to float32 last', () => {
    const { nodes } = converted.graph;
    const first = nodes[0];
    const last = nodes[nodes.length - 1];
    expect(first.opType).toBe('Cast');
    expect(first.inputs).toEqual(['input_0']);
    expect(first.attributes).toEqual([{ name: 'to', type: 'INT', i: TensorDataType.FLOAT16 }]);
    expect(last.opType).toBe('Cast');
    expect(last.outputs).toEqual(['output_0']);
    expect(last.attributes).toEqual([{ name: 'to', type: 'INT', i: TensorDataType.FLOAT }]);
    // Nothing else reads the float32 input or writes the float32 output.
    expect(nodes.slice(1).some((n) => n.inputs.includes('input_0'))).toBe(false);
    expect(nodes.slice(0, -1).some((n) => n.outputs.includes('output_0'))).toBe(false);
    expect(nodes.length).toBe(original.graph.nodes.length + 2);
    expect(converted.graph.inputs).toEqual(original.graph.inputs);
    expect(converted.graph.outputs).toEqual(original.graph.outputs);
  });

  it('stores every float weight as its correctly rounded half, and leaves int64 shapes alone', () => {
    const byName = new Map(converted.graph.initializers.map((t) => [t.name, t]));
    let floats = 0;
    let halves = 0;
    let wrong = 0;
    for (const t of original.graph.initializers) {
      const c = byName.get(t.name)!;
      expect(c.dims).toEqual(t.dims);
      if (t.dataType === TensorDataType.INT64) {
        expect(c.dataType).toBe(TensorDataType.INT64);
        expect(Buffer.from(c.rawData).equals(Buffer.from(t.rawData))).toBe(true);
        continue;
      }
      expect(c.dataType).toBe(TensorDataType.FLOAT16);
      expect(c.rawData.length).toBe(t.rawData.length / 2);
      const values = tensorToFloat32(t);
      const view = new DataView(c.rawData.buffer, c.rawData.byteOffset, c.rawData.byteLength);
      for (let i = 0; i < values.length; i++) if (!isNearestHalf(values[i], view.getUint16(i * 2, true))) wrong++;
      floats += values.length;
      halves++;
    }
    // Every float initializer was converted (the fused sub-pixel graph has 46 of them).
    const floatInitializers = original.graph.initializers.filter((t) => t.dataType === TensorDataType.FLOAT).length;
    expect(halves).toBe(floatInitializers);
    expect(halves).toBeGreaterThan(40);
    expect(floats).toBeGreaterThan(4_000_000); // the bundle UNet has 4.8 M parameters
    expect(wrong).toBe(0);
  });
});

describe('convertOnnxToFp16: numerics on onnxruntime CPU', () => {
  const n = 32;
  const input = Float32Array.from({ length: n ** 3 }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.37));
  const feeds = { input_0: { data: input, dims: [1, 1, n, n, n] } };

  it.each<[string, BuildUnetOnnxOptions]>([
    ['torch-export-like (ConvTranspose, PRelu, folded BN)', {}],
    ['CPU variant (sub-pixel ConvTranspose, LeakyRelu)', ONNXRUNTIME_CPU_OPTIONS],
    ['explicit BatchNormalization nodes', { batchNorm: 'op' }],
  ])('%s: within fp16 tolerance of the fp32 graph', async (_name, options) => {
    const onnx = buildUnetOnnx(seededUnetWeights(3), undefined, options);
    const fp16 = convertOnnxToFp16(onnx);
    const reference = await runOnnx(onnx, feeds);
    const half = await runOnnx(fp16, feeds);
    const rounded = await runOnnx(withDecodedHalfWeights(onnx, fp16), feeds);
    const scale = maxAbs(reference);
    expect(scale).toBeGreaterThan(0.5);
    const fullError = maxAbsDiff(reference, half) / scale;
    const weightError = maxAbsDiff(rounded, half) / scale;
    expect(fullError).toBeLessThanOrEqual(4e-3);
    expect(weightError).toBeLessThanOrEqual(2e-3);
    // Rounding the weights does change the result: the fp16 graph is not the fp32 one in disguise.
    expect(maxAbsDiff(reference, rounded)).toBeGreaterThan(1e-5);
  });
});

function tinyModel(nodes: NodeProto[], initializers: TensorProto[]): Uint8Array {
  const model: ModelProto = {
    irVersion: 8,
    opsetImports: [{ domain: '', version: 17 }],
    producerName: 'test',
    producerVersion: '',
    docString: '',
    graph: {
      name: 'tiny',
      nodes,
      initializers,
      inputs: [{ name: 'x', elemType: TensorDataType.FLOAT, dims: ['N', 4] }],
      outputs: [{ name: 'y', elemType: TensorDataType.FLOAT, dims: ['N', 4] }],
    },
  };
  return encodeModel(model);
}

const node = (opType: string, inputs: string[], outputs: string[], attributes: NodeProto['attributes'] = [], name = outputs[0]): NodeProto => ({
  name,
  opType,
  domain: '',
  inputs,
  outputs,
  attributes,
});

describe('convertOnnxToFp16: Constant, Cast and refusals', () => {
  it('converts float Constants and Cast-to-float, and the result runs', async () => {
    // y = Cast<float>(x * 2.5 + b) * [1, 2, 3, 4]
    const onnx = tinyModel(
      [
        node('Constant', [], ['k'], [{ name: 'value_float', type: 'FLOAT', f: 2.5 }]),
        node('Constant', [], ['w'], [{ name: 'value_floats', type: 'FLOATS', floats: [1, 2, 3, 4] }]),
        node('Mul', ['x', 'k'], ['a']),
        node('Add', ['a', 'b'], ['c']),
        node('Cast', ['c'], ['d'], [{ name: 'to', type: 'INT', i: TensorDataType.FLOAT }]),
        node('Mul', ['d', 'w'], ['y']),
      ],
      [floatTensor('b', [4], Float32Array.of(0.1, -0.2, 0.3, 1000.7))],
    );
    const fp16 = convertOnnxToFp16(onnx);
    const model = decodeModel(fp16);
    const constants = model.graph.nodes.filter((n) => n.opType === 'Constant');
    for (const c of constants) {
      expect(c.attributes).toHaveLength(1);
      const a = c.attributes[0];
      expect(a.type === 'TENSOR' && a.t.dataType).toBe(TensorDataType.FLOAT16);
    }
    const inner = model.graph.nodes.find((n) => n.name === 'd')!;
    expect(inner.attributes[0]).toEqual({ name: 'to', type: 'INT', i: TensorDataType.FLOAT16 });
    const x = Float32Array.of(1, 2, 3, 4, -1, -2, -3, -4);
    const got = await runOnnx(fp16, { x: { data: x, dims: [2, 4] } });
    // By hand: b rounds to halves 0.0999755859375, -0.199951171875, 0.300048828125, 1000.5 (step 0.5).
    const b = [0.0999755859375, -0.199951171875, 0.300048828125, 1000.5];
    const expected = Array.from(x, (v, i) => (v * 2.5 + b[i % 4]) * ((i % 4) + 1));
    for (let i = 0; i < expected.length; i++) expect(Math.abs(got[i] - expected[i])).toBeLessThanOrEqual(Math.abs(expected[i]) * 2 ** -10 + 1e-3);
  });

  it('lists every unsupported op with its nodes in one ERR_MODEL_INVALID', () => {
    const onnx = tinyModel(
      [node('Softmax', ['x'], ['s']), node('Exp', ['s'], ['e1']), node('Exp', ['e1'], ['y'])],
      [],
    );
    const error = catchError(() => convertOnnxToFp16(onnx));
    expect(error.code).toBe('ERR_MODEL_INVALID');
    expect(error.message).toMatch(/does not support these ops: Softmax \(1 node: s\); Exp \(2 nodes: e1, y\)/);
    expect(error.details).toEqual(['Softmax: s', 'Exp: e1', 'Exp: y']);
  });

  it('refuses ops from other domains, casts to double, weights beyond the half range, and fp16 models', () => {
    const custom = tinyModel([{ ...node('Relu', ['x'], ['y']), domain: 'com.microsoft' }], []);
    expect(catchError(() => convertOnnxToFp16(custom)).message).toMatch(/com\.microsoft\.Relu/);

    const toDouble = tinyModel([node('Cast', ['x'], ['y'], [{ name: 'to', type: 'INT', i: TensorDataType.DOUBLE }])], []);
    expect(catchError(() => convertOnnxToFp16(toDouble)).message).toMatch(/casts to data type 11/);

    const huge = tinyModel([node('Add', ['x', 'b'], ['y'])], [floatTensor('b', [4], Float32Array.of(1, 2, 70000, 4))]);
    expect(catchError(() => convertOnnxToFp16(huge)).message).toMatch(/initializer b holds 70000 at index 2, beyond the float16 range/);

    const half: TensorProto = { name: 'b', dataType: TensorDataType.FLOAT16, dims: [4], rawData: new Uint8Array(8) };
    expect(catchError(() => convertOnnxToFp16(tinyModel([node('Add', ['x', 'b'], ['y'])], [half]))).message).toMatch(/already has data type 10/);

    const shapes = tinyModel([node('Reshape', ['x', 's'], ['y'])], [int64Tensor('s', [2], [-1, 4])]);
    const kept = decodeModel(convertOnnxToFp16(shapes)).graph.initializers[0];
    expect(kept.dataType).toBe(TensorDataType.INT64);

    expect(catchError(() => convertOnnxToFp16(new Uint8Array([1, 2, 3]))).code).toBe('ERR_MODEL_INVALID');
  });
});
