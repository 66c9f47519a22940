/**
 * Rewrites an ONNX model's static batch dimension (MONAI's `onnx_export` traces with batch 1) to a
 * symbolic one, so onnxruntime runs sw_batch_size windows at once and a TensorRT profile can span
 * batch 1..8.
 *
 * Renaming the dimension is only sound when no node depends on the traced batch size. The check is
 * a small dataflow pass: every tensor computed from the graph input carries the batch on axis 0
 * ("data"); each node that consumes data must be an op known to treat axis 0 independently, with
 * attributes/constant operands that leave axis 0 alone. Shape arithmetic fed by `Shape` of data is
 * dynamic already and passes; a constant target shape (Reshape [1, ...], Expand, Resize sizes) would
 * bake the traced batch in and is refused with ERR_MODEL_INVALID naming the node.
 */
import { expectedRange, expectedType, SpleenTrtError } from '../errors.js';
import { decodeModel, encodeModel, tensorToInt64, TensorDataType, type AttributeProto, type ModelProto, type NodeProto, type TensorProto } from './onnx-proto.js';

export interface MakeBatchDynamicOptions {
  /** dim_param written for axis 0 of the input and output; default `'batch'`. */
  batchParam?: string;
}

export interface MakeBatchDynamicResult {
  /** The rewritten model, or the input bytes themselves when nothing needed to change. */
  onnx: Uint8Array;
  /** True when a static batch dimension was replaced. */
  changed: boolean;
  inputName: string;
  outputName: string;
}

/** Ops whose every output element depends only on the same batch item of each data input. */
const ELEMENTWISE = new Set([
  'Abs', 'Add', 'BatchNormalization', 'Cast', 'Ceil', 'Celu', 'Clip', 'Div', 'Dropout', 'Elu', 'Equal', 'Erf', 'Exp',
  'Floor', 'Gelu', 'Greater', 'GreaterOrEqual', 'HardSigmoid', 'HardSwish', 'Identity', 'InstanceNormalization',
  'IsNaN', 'LeakyRelu', 'Less', 'LessOrEqual', 'Log', 'Max', 'Mean', 'Min', 'Mish', 'Mul', 'Neg', 'Not', 'PRelu',
  'Pow', 'Reciprocal', 'Relu', 'Round', 'Selu', 'Sigmoid', 'Sign', 'Softplus', 'Softsign', 'Sqrt', 'Sub', 'Sum',
  'Tanh', 'ThresholdedRelu', 'Where',
]);

/** Ops that mix only within one batch item along non-batch axes whatever their attributes. */
const PER_ITEM = new Set([
  'AveragePool', 'Conv', 'ConvTranspose', 'GlobalAveragePool', 'GlobalMaxPool', 'LpNormalization', 'LpPool',
  'LRN', 'MaxPool', 'Upsample',
]);

/** Ops with an `axis` attribute that must not be the batch axis (default given when absent). */
const AXIS_OPS: Record<string, number> = {
  Concat: Number.NaN, // required attribute
  Softmax: -1,
  LogSoftmax: -1,
  Hardmax: -1,
  ArgMax: 0,
  ArgMin: 0,
  Flatten: 1,
  Split: 0,
  Gather: 0,
  CumSum: Number.NaN,
};

const REDUCE_OPS = new Set([
  'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceMax', 'ReduceMean', 'ReduceMin', 'ReduceProd',
  'ReduceSum', 'ReduceSumSquare',
]);

const ELEMENT_BYTES: Record<number, number> = {
  [TensorDataType.FLOAT]: 4,
  [TensorDataType.UINT8]: 1,
  [TensorDataType.INT8]: 1,
  4: 2, // UINT16
  5: 2, // INT16
  [TensorDataType.INT32]: 4,
  [TensorDataType.INT64]: 8,
  [TensorDataType.BOOL]: 1,
  [TensorDataType.FLOAT16]: 2,
  [TensorDataType.DOUBLE]: 8,
  12: 4, // UINT32
  13: 8, // UINT64
  16: 2, // BFLOAT16
};

function invalid(message: string): never {
  throw new SpleenTrtError('ERR_MODEL_INVALID', message);
}

function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attributes.find((a) => a.name === name);
}

function intAttr(node: NodeProto, name: string): number | undefined {
  const a = attr(node, name);
  return a && a.type === 'INT' ? a.i : undefined;
}

function intsAttr(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a && a.type === 'INTS' ? a.ints : undefined;
}

function describeNode(node: NodeProto): string {
  return `${node.opType} node "${node.name || node.outputs[0] || '?'}"`;
}

/** Refuses tensors the codec would not write back intact (external data, string or packed small types). */
function checkTensorRoundTrips(t: TensorProto, where: string): void {
  const size = ELEMENT_BYTES[t.dataType];
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (size === undefined || t.rawData.length !== count * size) {
    invalid(
      `Cannot rewrite the batch dimension: ${where} tensor "${t.name}" (data type ${t.dataType}, dims [${t.dims.join(', ')}]) ` +
        'is not stored as inline raw data this package can copy; re-export the model with torch.onnx.export',
    );
  }
}

interface BatchCheck {
  node: NodeProto;
  /** Indices of the node's inputs that carry the batch axis. */
  dataInputs: number[];
  constants: Map<string, TensorProto>;
  inputRank: number;
}

function constantInts(check: BatchCheck, index: number): number[] | undefined {
  const name = check.node.inputs[index];
  if (!name) return undefined;
  const t = check.constants.get(name);
  if (!t || (t.dataType !== TensorDataType.INT64 && t.dataType !== TensorDataType.INT32)) return undefined;
  if (t.dataType === TensorDataType.INT32) {
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    return Array.from({ length: t.rawData.length / 4 }, (_, i) => view.getInt32(i * 4, true));
  }
  return tensorToInt64(t);
}

/** Axes from an attribute (older opsets) or a constant input (newer ones); null = present but not constant. */
function axesOf(check: BatchCheck, attrName: string, inputIndex: number): number[] | null | undefined {
  const fromAttr = intsAttr(check.node, attrName);
  if (fromAttr) return fromAttr;
  const name = check.node.inputs[inputIndex];
  if (!name) return undefined;
  return constantInts(check, inputIndex) ?? null;
}

const isBatchAxis = (axis: number, rank: number): boolean => axis === 0 || axis === -rank;

/** Why `node` would depend on the batch size, or null when it treats batch items independently. */
function batchHazard(check: BatchCheck): string | null {
  const { node, dataInputs, constants, inputRank } = check;
  const op = node.opType;
  if (node.domain !== '' && node.domain !== 'ai.onnx') return `operator domain "${node.domain}" is not known to be batch-independent`;
  if (ELEMENTWISE.has(op)) {
    // A constant operand broadcast against data must not have a batch extent of its own.
    for (let i = 0; i < node.inputs.length; i++) {
      if (dataInputs.includes(i)) continue;
      const t = constants.get(node.inputs[i]);
      if (t && t.dims.length >= inputRank && t.dims[t.dims.length - inputRank] !== 1) {
        return `its constant operand "${t.name}" has shape [${t.dims.join(', ')}], sized along the batch axis`;
      }
    }
    return null;
  }
  if (PER_ITEM.has(op)) return dataInputs.length === 1 && dataInputs[0] === 0 ? null : 'a weight input is computed from the data';
  if (op in AXIS_OPS) {
    const axis = intAttr(node, 'axis') ?? AXIS_OPS[op];
    if (op === 'Gather' && !dataInputs.includes(0)) return 'it gathers with data-dependent indices';
    if (Number.isNaN(axis)) return `it has no constant axis`;
    if (op === 'Flatten') return axis === 0 ? 'it flattens the batch axis' : null;
    if (op === 'Concat') {
      // A constant joined to data along another axis carries its own (traced) batch extent.
      const fixed = node.inputs.find((name, i) => !dataInputs.includes(i) && (constants.get(name)?.dims.length ?? 0) >= inputRank);
      if (fixed !== undefined) return `it joins the constant "${fixed}" of fixed batch extent to the data`;
    }
    if (op === 'Softmax' || op === 'LogSoftmax' || op === 'Hardmax') {
      // Before opset 13 these coerce to 2-D at `axis`: only axis 0 spans items.
      return isBatchAxis(axis, inputRank) ? 'it normalises over the batch axis' : null;
    }
    return isBatchAxis(axis, inputRank) ? `its axis is the batch axis` : null;
  }
  if (REDUCE_OPS.has(op)) {
    const axes = axesOf(check, 'axes', 1);
    if (axes === null) return 'its axes are computed at run time';
    if (axes === undefined) return intAttr(node, 'noop_with_empty_axes') === 1 ? null : 'it reduces over all axes, the batch axis included';
    return axes.some((a) => isBatchAxis(a, inputRank)) ? 'it reduces over the batch axis' : null;
  }
  switch (op) {
    case 'Transpose': {
      const perm = intsAttr(node, 'perm');
      return perm && perm[0] === 0 ? null : 'it moves the batch axis';
    }
    case 'Reshape': {
      if (!dataInputs.includes(0) || dataInputs.includes(1)) return null;
      const shape = constantInts(check, 1);
      if (!shape) return null; // computed from Shape of the data: follows the batch at run time
      // allowzero = 0 (default): a 0 copies the input's batch extent; anything else is the traced one.
      if (shape[0] === 0 && intAttr(node, 'allowzero') !== 1) return null;
      return `its constant target shape [${shape.join(', ')}] fixes the batch size`;
    }
    case 'Squeeze':
    case 'Unsqueeze': {
      const axes = axesOf(check, 'axes', 1);
      if (axes === null) return 'its axes are computed at run time';
      if (axes === undefined) return op === 'Squeeze' ? 'it squeezes every size-1 axis, a batch of 1 included' : 'it has no axes';
      return axes.some((a) => isBatchAxis(a, inputRank)) ? `it ${op === 'Squeeze' ? 'removes' : 'inserts'} axis 0` : null;
    }
    case 'Slice': {
      if (!dataInputs.includes(0) || dataInputs.some((i) => i > 0)) return 'its bounds are computed from the data';
      const axes = axesOf(check, 'axes', 3);
      if (axes === null) return 'its axes are computed at run time';
      if (axes === undefined) return 'it slices every axis, the batch axis included';
      return axes.some((a) => isBatchAxis(a, inputRank)) ? 'it slices the batch axis' : null;
    }
    case 'Pad': {
      const pads = intsAttr(node, 'pads') ?? constantInts(check, 1);
      if (!pads) return 'its pads are computed at run time';
      const half = pads.length / 2;
      return pads[0] !== 0 || pads[half] !== 0 ? 'it pads the batch axis' : null;
    }
    case 'Resize': {
      // Inputs: X, roi, scales, sizes. Sizes (opset 11+) are absolute, batch extent included.
      if (node.inputs[3]) return 'its output sizes are constant, batch extent included';
      return null;
    }
    case 'Gemm':
      return dataInputs.length === 1 && dataInputs[0] === 0 && (intAttr(node, 'transA') ?? 0) === 0 ? null : 'it contracts over the batch axis';
    case 'MatMul':
      return dataInputs.length === 1 && dataInputs[0] === 0 ? null : 'it contracts over the batch axis';
    case 'Shape':
    case 'Size':
      return null; // handled by the caller: their outputs are shape values, not data
    default:
      return `${op} is not known to be batch-independent`;
  }
}

/** The model's single data input and output, or a clear refusal. */
function singleIo(model: ModelProto): { inputIndex: number; outputIndex: number } {
  const { graph } = model;
  const initializerNames = new Set(graph.initializers.map((t) => t.name));
  const dataInputs = graph.inputs.map((v, i) => ({ v, i })).filter(({ v }) => !initializerNames.has(v.name));
  if (dataInputs.length !== 1) {
    invalid(`Expected exactly one graph input (the image) but the model has ${dataInputs.length}: ${dataInputs.map(({ v }) => v.name).join(', ') || 'none'}`);
  }
  if (graph.outputs.length !== 1) {
    invalid(`Expected exactly one graph output (the logits) but the model has ${graph.outputs.length}: ${graph.outputs.map((v) => v.name).join(', ') || 'none'}`);
  }
  return { inputIndex: dataInputs[0].i, outputIndex: 0 };
}

/**
 * Throws ERR_MODEL_INVALID naming the first node whose result would depend on the batch size;
 * returns the values that carry the batch on axis 0 (the input and everything computed from it).
 */
function checkBatchIndependent(model: ModelProto, inputName: string, inputRank: number): Set<string> {
  const { graph } = model;
  const constants = new Map<string, TensorProto>();
  for (const t of graph.initializers) constants.set(t.name, t);
  const data = new Set([inputName]);
  for (const node of graph.nodes) {
    for (const a of node.attributes) {
      if (a.type === 'OTHER') invalid(`Cannot rewrite the batch dimension: ${describeNode(node)} has a subgraph or sparse attribute "${a.name}"`);
      if (a.type === 'TENSOR') checkTensorRoundTrips(a.t, `${describeNode(node)} attribute`);
    }
    if (node.opType === 'Constant' && (node.domain === '' || node.domain === 'ai.onnx')) {
      const value = attr(node, 'value');
      if (value?.type === 'TENSOR' && node.outputs[0]) constants.set(node.outputs[0], value.t);
      continue;
    }
    const dataInputs = node.inputs.flatMap((name, i) => (name && data.has(name) ? [i] : []));
    if (dataInputs.length === 0) continue;
    // Shape/Size of data are run-time values: consumers of them follow the actual batch.
    if (node.opType === 'Shape' || node.opType === 'Size') continue;
    const hazard = batchHazard({ node, dataInputs, constants, inputRank });
    if (hazard) {
      invalid(
        `Cannot make the batch dimension dynamic: ${describeNode(node)} would keep the exported batch size (${hazard}). ` +
          'Export the model with a dynamic batch axis (torch.onnx.export dynamic_axes) instead',
      );
    }
    for (const o of node.outputs) if (o) data.add(o);
  }
  return data;
}

/**
 * Rewrites a static batch dimension (e.g. 1) of the graph's input and output to the symbolic
 * `batchParam`; returns the bytes unchanged (`changed: false`) when the batch is already symbolic.
 * Throws ERR_MODEL_INVALID when the model is not ONNX, has other than one input and one output, or
 * contains an op that would keep the traced batch size (Reshape to a constant shape, Flatten at
 * axis 0, ...). Everything else in the model is kept (metadata_props, doc strings, opset imports,
 * fields this codec does not model, byte for byte); `value_info` entries of values computed from
 * the input get the same symbolic batch, so no stale batch-1 shape survives.
 * @example
 * const { onnx, changed } = makeBatchDynamic(readFileSync('model.onnx'));
 */
export function makeBatchDynamic(onnx: Uint8Array, options: MakeBatchDynamicOptions = {}): MakeBatchDynamicResult {
  if (!(onnx instanceof Uint8Array)) throw expectedType('a Uint8Array', 'onnx', onnx);
  if (typeof options !== 'object' || options === null) throw expectedType('an options object', 'options', options);
  const batchParam = options.batchParam ?? 'batch';
  if (typeof batchParam !== 'string') throw expectedType('a string', 'options.batchParam', batchParam);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(batchParam)) throw expectedRange('an identifier', 'options.batchParam', batchParam);
  const model = decodeModel(onnx);
  const { inputIndex, outputIndex } = singleIo(model);
  const input = model.graph.inputs[inputIndex];
  const output = model.graph.outputs[outputIndex];
  for (const v of [input, output]) {
    if (v.dims === null || v.dims.length === 0) invalid(`Graph ${v === input ? 'input' : 'output'} "${v.name}" has no shape; expected [N, C, D, H, W]`);
  }
  const inputStatic = typeof input.dims![0] === 'number';
  const outputStatic = typeof output.dims![0] === 'number';
  const result = { onnx, changed: false, inputName: input.name, outputName: output.name };
  if (!inputStatic && !outputStatic) return result;
  if (inputStatic && outputStatic && input.dims![0] !== output.dims![0]) {
    invalid(`Graph input "${input.name}" has batch ${input.dims![0]} but output "${output.name}" has batch ${output.dims![0]}`);
  }
  const data = checkBatchIndependent(model, input.name, input.dims!.length);
  for (const t of model.graph.initializers) checkTensorRoundTrips(t, 'initializer');
  input.dims![0] = batchParam;
  output.dims![0] = batchParam;
  for (const v of model.graph.valueInfo ?? []) {
    if (data.has(v.name) && v.dims !== null && typeof v.dims[0] === 'number') v.dims[0] = batchParam;
  }
  return { ...result, onnx: encodeModel(model), changed: true };
}
