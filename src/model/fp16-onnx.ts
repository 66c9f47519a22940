/**
 * Derives an fp16 ONNX from an fp32 one: every float weight and every float computation in half
 * precision, graph input and output still float32 (a Cast after the input, a Cast before the
 * output). TensorRT 11 dropped `BuilderFlag::kFP16`: every network is strongly typed, so an fp16
 * engine needs the types in the ONNX itself (design/tensorrt.md, "Building an engine").
 *
 * Only ops whose float inputs and outputs share one element type are converted (all the UNet
 * builder and torch's export of the bundle's UNet emit); anything else is refused by name, because
 * an op with a float32-only operand (Resize scales, a Cast to DOUBLE...) would make a graph that
 * does not type-check, and that should fail here, not deep inside the TensorRT parser.
 */
import { SpleenTrtError } from '../errors.js';
import { decodeModel, encodeModel, floatTensor, TensorDataType, type AttributeProto, type NodeProto, type TensorProto } from './onnx-proto.js';

/**
 * Ops the converter accepts: type-polymorphic in T (float16 allowed wherever float is), with no
 * float32-only operand. Shape, Slice, Reshape... only move int64 shapes or pass T through.
 */
export const FP16_CONVERTIBLE_OPS: ReadonlySet<string> = new Set([
  'Conv',
  'ConvTranspose',
  'BatchNormalization',
  'PRelu',
  'LeakyRelu',
  'Relu',
  'Sigmoid',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Concat',
  'Reshape',
  'Transpose',
  'DepthToSpace',
  'Shape',
  'Slice',
  'Gather',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'Constant',
  'Cast',
]);

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * IEEE 754 binary16 bits of `value` rounded to nearest, ties to even (what numpy's
 * `astype(float16)` and CUDA's `__float2half_rn` do). Overflow gives +-Infinity, NaN stays NaN.
 */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  // Re-biased exponent: float32 bias 127, float16 bias 15.
  const e = exponent - 112;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: units of 2^-24. Below 2^-25 everything rounds to zero (e < -10).
    if (e < -10) return sign;
    const m = mantissa | 0x800000;
    const shift = 14 - e;
    let half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    if (rest > midpoint || (rest === midpoint && (half & 1) === 1)) half++;
    // A carry into bit 10 is the smallest normal number, which is exactly its encoding.
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  // A carry out of the mantissa bumps the exponent, and out of the largest finite value to 0x7c00 (inf).
  return sign | half;
}

/** The value of binary16 `bits` (exact in a JS number). */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** FLOAT raw data as FLOAT16 raw data; a finite value beyond the half range is refused by name. */
function floatRawToHalfRaw(t: TensorProto, where: string): Uint8Array {
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (t.rawData.length !== count * 4) {
    // External data or a malformed tensor: rawData does not hold the values.
    throw new SpleenTrtError(
      'ERR_MODEL_INVALID',
      `fp16 conversion: ${where} ${t.name || '(unnamed)'} has ${t.rawData.length} bytes of data for ${count} float values (external data is not supported)`,
    );
  }
  const src = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
  const out = new Uint8Array(count * 2);
  const dst = new DataView(out.buffer);
  for (let i = 0; i < count; i++) {
    const v = src.getFloat32(i * 4, true);
    const h = float32ToFloat16Bits(v);
    if ((h & 0x7fff) === 0x7c00 && Number.isFinite(v)) {
      throw new SpleenTrtError(
        'ERR_MODEL_INVALID',
        `fp16 conversion: ${where} ${t.name || '(unnamed)'} holds ${v} at index ${i}, beyond the float16 range (|x| < 65520)`,
      );
    }
    dst.setUint16(i * 2, h, true);
  }
  return out;
}

function toHalfTensor(t: TensorProto, where: string): TensorProto {
  return { ...t, dataType: TensorDataType.FLOAT16, rawData: floatRawToHalfRaw(t, where) };
}

const FLOAT_LIKE = new Set<number>([TensorDataType.DOUBLE, 16 /* BFLOAT16 */]);

function convertConstant(node: NodeProto): NodeProto {
  const attributes: AttributeProto[] = node.attributes.map((a) => {
    if (a.name === 'value' && a.type === 'TENSOR') {
      if (a.t.dataType === TensorDataType.FLOAT) return { ...a, t: toHalfTensor(a.t, `Constant node ${node.name}`) };
      if (a.t.dataType === TensorDataType.FLOAT16 || FLOAT_LIKE.has(a.t.dataType)) {
        throw new SpleenTrtError('ERR_MODEL_INVALID', `fp16 conversion: Constant node ${node.name} holds data type ${a.t.dataType}, expected float32 or an integer type`);
      }
      return a;
    }
    if (a.name === 'value_float' && a.type === 'FLOAT') {
      const t = floatTensor('', [], new Float32Array([a.f]));
      return { name: 'value', type: 'TENSOR', t: toHalfTensor(t, `Constant node ${node.name}`) };
    }
    if (a.name === 'value_floats' && a.type === 'FLOATS') {
      const t = floatTensor('', [a.floats.length], Float32Array.from(a.floats));
      return { name: 'value', type: 'TENSOR', t: toHalfTensor(t, `Constant node ${node.name}`) };
    }
    return a;
  });
  return { ...node, attributes };
}

function convertCast(node: NodeProto): NodeProto {
  const to = node.attributes.find((a) => a.name === 'to');
  if (to?.type !== 'INT') throw new SpleenTrtError('ERR_MODEL_INVALID', `fp16 conversion: Cast node ${node.name} has no integer "to" attribute`);
  if (FLOAT_LIKE.has(to.i)) {
    throw new SpleenTrtError('ERR_MODEL_INVALID', `fp16 conversion: Cast node ${node.name} casts to data type ${to.i}; only float32 casts can become float16`);
  }
  if (to.i !== TensorDataType.FLOAT) return node;
  return { ...node, attributes: node.attributes.map((a) => (a === to ? { ...to, i: TensorDataType.FLOAT16 } : a)) };
}

/**
 * An fp16 ONNX from an fp32 one: FLOAT initializers and Constant values become FLOAT16 (rounded
 * to nearest even; a finite value beyond +-65504 is refused), Cast-to-float nodes cast to float16,
 * and the float32 graph input and output are kept through a Cast after the input and a Cast
 * before the output. Throws ERR_MODEL_INVALID naming every op it cannot convert.
 * @example
 * const fp16 = convertOnnxToFp16(buildUnetOnnx(seededUnetWeights(1))); // same I/O, half the weight bytes
 */
export function convertOnnxToFp16(onnx: Uint8Array): Uint8Array {
  const model = decodeModel(onnx);
  const { graph } = model;

  const unsupported = new Map<string, string[]>();
  for (const node of graph.nodes) {
    const standard = node.domain === '' || node.domain === 'ai.onnx';
    if (!standard || !FP16_CONVERTIBLE_OPS.has(node.opType)) {
      const key = standard ? node.opType : `${node.domain}.${node.opType}`;
      unsupported.set(key, [...(unsupported.get(key) ?? []), node.name || '(unnamed)']);
    }
  }
  if (unsupported.size > 0) {
    const list = [...unsupported].map(([op, nodes]) => `${op} (${nodes.length} node${nodes.length > 1 ? 's' : ''}: ${nodes.slice(0, 3).join(', ')}${nodes.length > 3 ? ', ...' : ''})`);
    throw new SpleenTrtError('ERR_MODEL_INVALID', `fp16 conversion does not support these ops: ${list.join('; ')}`, {
      details: [...unsupported].flatMap(([op, nodes]) => nodes.map((n) => `${op}: ${n}`)),
    });
  }

  const initializerNames = new Set(graph.initializers.map((t) => t.name));
  const inputs = graph.inputs.filter((v) => !initializerNames.has(v.name));
  for (const [role, values] of [
    ['input', inputs],
    ['output', graph.outputs],
  ] as const) {
    for (const v of values) {
      if (v.elemType !== TensorDataType.FLOAT) {
        throw new SpleenTrtError('ERR_MODEL_INVALID', `fp16 conversion: graph ${role} ${v.name} has data type ${v.elemType}, expected float32 (1)`);
      }
    }
  }
  for (const t of graph.initializers) {
    if (t.dataType === TensorDataType.FLOAT16 || FLOAT_LIKE.has(t.dataType)) {
      throw new SpleenTrtError(
        'ERR_MODEL_INVALID',
        `fp16 conversion: initializer ${t.name} already has data type ${t.dataType}; expected a float32 model`,
      );
    }
  }
  const inputNames = new Set(inputs.map((v) => v.name));
  for (const v of graph.outputs) {
    if (inputNames.has(v.name)) throw new SpleenTrtError('ERR_MODEL_INVALID', `fp16 conversion: ${v.name} is both a graph input and output`);
  }

  const used = new Set<string>([...initializerNames, ...graph.inputs.map((v) => v.name)]);
  for (const n of graph.nodes) {
    for (const name of [...n.inputs, ...n.outputs, n.name]) used.add(name);
  }
  const fresh = (base: string): string => {
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  };

  // Inside the graph, each float32 input x is read as x_fp16 and each output y is produced as y_fp16.
  const renamed = new Map<string, string>();
  for (const v of [...inputs, ...graph.outputs]) renamed.set(v.name, fresh(`${v.name}_fp16`));
  const rename = (name: string): string => renamed.get(name) ?? name;

  const body: NodeProto[] = graph.nodes.map((node) => {
    const converted = node.opType === 'Constant' ? convertConstant(node) : node.opType === 'Cast' ? convertCast(node) : node;
    return { ...converted, inputs: converted.inputs.map(rename), outputs: converted.outputs.map(rename) };
  });
  const castIn: NodeProto[] = inputs.map((v) => ({
    name: fresh(`${v.name}_cast_to_fp16`),
    opType: 'Cast',
    domain: '',
    inputs: [v.name],
    outputs: [rename(v.name)],
    attributes: [{ name: 'to', type: 'INT', i: TensorDataType.FLOAT16 }],
  }));
  const castOut: NodeProto[] = graph.outputs.map((v) => ({
    name: fresh(`${v.name}_cast_to_fp32`),
    opType: 'Cast',
    domain: '',
    inputs: [rename(v.name)],
    outputs: [v.name],
    attributes: [{ name: 'to', type: 'INT', i: TensorDataType.FLOAT }],
  }));

  return encodeModel({
    ...model,
    docString: [model.docString, 'fp16 weights and compute, float32 input/output (spleen-trt convertOnnxToFp16)'].filter(Boolean).join('; '),
    graph: {
      ...graph,
      // IR < 4 models also list initializers as inputs; their declared type follows the data.
      inputs: graph.inputs.map((v) =>
        initializerNames.has(v.name) && v.elemType === TensorDataType.FLOAT ? { ...v, elemType: TensorDataType.FLOAT16 } : v,
      ),
      nodes: [...castIn, ...body, ...castOut],
      initializers: graph.initializers.map((t) => (t.dataType === TensorDataType.FLOAT ? toHalfTensor(t, 'initializer') : t)),
    },
  });
}
