/**
 * Turns an ONNX graph of the bundle's UNet (or any graph made of the same few operations) into the
 * flat operation list the addon's oneDNN network runs (native/core/onednn_network.h):
 * Conv/ConvTranspose with BatchNormalization folded into the weights (float64), PRelu with one
 * shared slope / LeakyRelu / Relu as an eltwise post-op, `Add` as a sum post-op of the later of
 * its two convs, and channel Concat. Anything else (a per-channel PRelu, grouped or dilated
 * convs, another op) is ERR_BACKEND_UNAVAILABLE naming the node, so `auto` can fall back.
 */
import { SpleenTrtError } from '../errors.js';
import { decodeModel, tensorToFloat32, type AttributeProto, type NodeProto, type TensorProto } from '../model/onnx-proto.js';
import { fusedParityWeights } from '../model/subpixel-conv-transpose.js';

export type OnednnPostOp = { kind: 'relu'; alpha: number } | { kind: 'sum' };

export interface OnednnConvOp {
  kind: 'conv';
  transposed: boolean;
  input: number;
  output: number;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  padBegin: number;
  /** Conv: the end padding; ConvTranspose: the end padding less output_padding (oneDNN's convention). */
  padEnd: number;
  /** ONNX layout: Conv [out][in][k^3], ConvTranspose [in][out][k^3]. */
  weights: Float32Array;
  bias: Float32Array;
  postOps: OnednnPostOp[];
  /** The tensor the `sum` post-op adds, -1 when none. */
  addTensor: number;
  /**
   * A ConvTranspose (kernel 3, stride 2, pads 1, output_padding 1) rewritten as a forward conv
   * (kernel 2, stride 1, padEnd 1) with 8 * outChannels parity-major outputs
   * (`fusedParityWeights`) and a depth-to-space in the addon: oneDNN 2.6 runs transposed convs as
   * backward-data convs or GEMM, several times slower than its forward JIT kernels here.
   */
  subpixel?: boolean;
}

export interface OnednnConcatOp {
  kind: 'concat';
  inputs: number[];
  output: number;
}

export interface OnednnNetworkSpec {
  inputChannels: number;
  tensorCount: number;
  outputTensor: number;
  /** OpenMP threads per run; 0 or absent: OpenMP's default (OMP_NUM_THREADS, else all cores). */
  threads?: number;
  /** Narrow plain stride-1 k3 convs as the addon's direct loop (default) or as oneDNN's (false). */
  directConv?: boolean;
  /** Sub-pixel convs as 8 per-parity convs with only their taps (default) or as one fused conv (false). */
  subpixelSplit?: boolean;
  /** Wide tensors channels-last (ndhwc) instead of oneDNN's blocked layout (nCdhw16c / nCdhw8c). */
  channelsLast?: boolean;
  ops: Array<OnednnConvOp | OnednnConcatOp>;
}

function unsupported(node: NodeProto, why: string): SpleenTrtError {
  return new SpleenTrtError('ERR_BACKEND_UNAVAILABLE', `The oneDNN backend cannot run ${node.opType} node "${node.name}": ${why}`);
}

function attribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attributes.find((a) => a.name === name);
}

function ints(node: NodeProto, name: string): number[] | undefined {
  const a = attribute(node, name);
  if (a === undefined) return undefined;
  if (a.type !== 'INTS') throw unsupported(node, `attribute ${name} is not a list of integers`);
  return a.ints;
}

/** One value for all three spatial axes, or the node is refused (the network is isotropic). */
function isotropic(node: NodeProto, name: string, values: number[] | undefined, fallback: number, count = 3): number[] {
  if (values === undefined) return new Array<number>(count / 3).fill(fallback);
  if (values.length !== count) throw unsupported(node, `${name} has ${values.length} entries, expected ${count}`);
  const out: number[] = [];
  for (let g = 0; g < count; g += 3) {
    if (values[g] !== values[g + 1] || values[g] !== values[g + 2]) throw unsupported(node, `${name} differs between axes`);
    out.push(values[g]);
  }
  return out;
}

export interface OnednnPlanOptions {
  /** How stride-2 ConvTransposes run: 'subpixel' (default, faster) or as oneDNN deconvolutions. */
  upSampling?: 'subpixel' | 'deconvolution';
}

/** `op` in sub-pixel form when it is a ConvTranspose that form covers (and has no sum), else `op`. */
function subpixelForm(op: OnednnConvOp): OnednnConvOp {
  if (!op.transposed || op.kernel !== 3 || op.stride !== 2 || op.padBegin !== 1 || op.padEnd !== 0 || op.addTensor >= 0) return op;
  const { weight, bias } = fusedParityWeights(op.weights, op.bias, op.inChannels, op.outChannels, 'parity-major');
  return { ...op, transposed: false, subpixel: true, kernel: 2, stride: 1, padBegin: 0, padEnd: 1, weights: weight, bias };
}

/** The plan of `onnx`'s graph (bytes of a ModelProto). */
export function onednnNetworkSpec(onnx: Uint8Array, options: OnednnPlanOptions = {}): OnednnNetworkSpec {
  const graph = decodeModel(onnx).graph;
  const initializers = new Map<string, TensorProto>(graph.initializers.map((t) => [t.name, t]));
  const inputs = graph.inputs.filter((i) => !initializers.has(i.name));
  if (inputs.length !== 1 || graph.outputs.length !== 1) {
    throw new SpleenTrtError('ERR_BACKEND_UNAVAILABLE', 'The oneDNN backend runs models with one input and one output');
  }
  const inputChannels = inputs[0].dims?.[1];
  if (typeof inputChannels !== 'number' || inputChannels < 1) {
    throw new SpleenTrtError('ERR_BACKEND_UNAVAILABLE', 'The oneDNN backend needs a fixed input channel count');
  }
  const consumers = new Map<string, number>();
  for (const node of graph.nodes) for (const name of node.inputs) consumers.set(name, (consumers.get(name) ?? 0) + 1);
  for (const out of graph.outputs) consumers.set(out.name, (consumers.get(out.name) ?? 0) + 1);

  const ops: Array<OnednnConvOp | OnednnConcatOp> = [];
  /** ONNX value -> tensor id, and the conv op that writes it (for fusing). */
  const values = new Map<string, { tensor: number; conv: OnednnConvOp | null; opIndex: number }>();
  values.set(inputs[0].name, { tensor: 0, conv: null, opIndex: -1 });
  let tensorCount = 1;
  const channelsOf = new Map<number, number>([[0, inputChannels]]);

  const valueOf = (node: NodeProto, name: string) => {
    const v = values.get(name);
    if (!v) throw unsupported(node, `input ${name} is not computed by a supported node`);
    return v;
  };
  const initializer = (node: NodeProto, name: string | undefined): Float32Array | null => {
    if (name === undefined || name === '') return null;
    const t = initializers.get(name);
    if (!t) throw unsupported(node, `${name} is not a constant initializer`);
    return tensorToFloat32(t);
  };
  /** The conv whose only consumer is `node` and which has no post-op yet of `kind`, else null. */
  const fusable = (name: string, allowPostOps: boolean) => {
    const v = values.get(name);
    if (!v?.conv || consumers.get(name) !== 1) return null;
    if (!allowPostOps && v.conv.postOps.length > 0) return null;
    return v;
  };

  for (const node of graph.nodes) {
    if (node.domain !== '' && node.domain !== 'ai.onnx') throw unsupported(node, `domain ${node.domain}`);
    switch (node.opType) {
      case 'Conv':
      case 'ConvTranspose': {
        const transposed = node.opType === 'ConvTranspose';
        const src = valueOf(node, node.inputs[0]);
        const wTensor = initializers.get(node.inputs[1]);
        if (!wTensor || wTensor.dims.length !== 5) throw unsupported(node, 'weights are not a constant 5-D tensor');
        const group = attribute(node, 'group');
        if (group && (group.type !== 'INT' || group.i !== 1)) throw unsupported(node, 'grouped convolution');
        const autoPad = attribute(node, 'auto_pad');
        if (autoPad && !(autoPad.type === 'STRING' && autoPad.s === 'NOTSET')) throw unsupported(node, 'auto_pad');
        if (isotropic(node, 'dilations', ints(node, 'dilations'), 1)[0] !== 1) throw unsupported(node, 'dilation');
        const [, , kd, kh, kw] = wTensor.dims;
        if (kd !== kh || kd !== kw) throw unsupported(node, 'the kernel differs between axes');
        const kernel = kd;
        const stride = isotropic(node, 'strides', ints(node, 'strides'), 1)[0];
        const [padBegin, padEndRaw] = isotropic(node, 'pads', ints(node, 'pads'), 0, 6);
        const outputPadding = transposed ? isotropic(node, 'output_padding', ints(node, 'output_padding'), 0)[0] : 0;
        const [inChannels, outChannels] = transposed ? [wTensor.dims[0], wTensor.dims[1]] : [wTensor.dims[1], wTensor.dims[0]];
        if (channelsOf.get(src.tensor) !== inChannels) {
          throw unsupported(node, `its input has ${channelsOf.get(src.tensor)} channels, its weights ${inChannels}`);
        }
        const bias = initializer(node, node.inputs[2]) ?? new Float32Array(outChannels);
        if (bias.length !== outChannels) throw unsupported(node, 'bias length differs from the output channels');
        const op: OnednnConvOp = {
          kind: 'conv', transposed, input: src.tensor, output: tensorCount, inChannels, outChannels, kernel, stride,
          padBegin, padEnd: padEndRaw - outputPadding, weights: tensorToFloat32(wTensor), bias, postOps: [], addTensor: -1,
        };
        channelsOf.set(tensorCount, outChannels);
        values.set(node.outputs[0], { tensor: tensorCount++, conv: op, opIndex: ops.length });
        ops.push(op);
        break;
      }
      case 'BatchNormalization': {
        const v = fusable(node.inputs[0], false);
        if (!v || v.conv!.addTensor >= 0) throw unsupported(node, 'it does not follow a convolution it can be folded into');
        const conv = v.conv!;
        const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => initializer(node, node.inputs[i]));
        const eps = attribute(node, 'epsilon');
        const epsilon = eps?.type === 'FLOAT' ? eps.f : 1e-5;
        const c = conv.outChannels;
        if (![gamma, beta, mean, variance].every((a) => a?.length === c)) throw unsupported(node, 'parameters differ from the channels');
        const k3 = conv.kernel ** 3;
        const weights = new Float32Array(conv.weights.length);
        const bias = new Float32Array(c);
        for (let o = 0; o < c; o++) {
          const scale = gamma![o] / Math.sqrt(variance![o] + epsilon);
          bias[o] = (conv.bias[o] - mean![o]) * scale + beta![o];
          for (let i = 0; i < conv.inChannels; i++) {
            const base = conv.transposed ? (i * c + o) * k3 : (o * conv.inChannels + i) * k3;
            for (let t = 0; t < k3; t++) weights[base + t] = conv.weights[base + t] * scale;
          }
        }
        conv.weights = weights;
        conv.bias = bias;
        values.set(node.outputs[0], v);
        break;
      }
      case 'PRelu':
      case 'LeakyRelu':
      case 'Relu': {
        let alpha = 0;
        if (node.opType === 'LeakyRelu') {
          const a = attribute(node, 'alpha');
          alpha = a?.type === 'FLOAT' ? a.f : 0.01;
        } else if (node.opType === 'PRelu') {
          const slope = initializer(node, node.inputs[1]);
          if (!slope || slope.length === 0 || slope.some((s) => s !== slope[0])) throw unsupported(node, 'the slope is not one shared value');
          alpha = slope[0];
        }
        const v = fusable(node.inputs[0], true);
        if (!v) throw unsupported(node, 'it does not follow a convolution whose only consumer it is');
        v.conv!.postOps.push({ kind: 'relu', alpha });
        values.set(node.outputs[0], v);
        break;
      }
      case 'Add': {
        const a = values.get(node.inputs[0]);
        const b = values.get(node.inputs[1]);
        if (!a || !b) throw unsupported(node, 'an operand is not computed by a supported node');
        // The later conv takes the sum: the other operand exists by the time it runs.
        const candidates = [
          { fused: fusable(node.inputs[0], true), other: b },
          { fused: fusable(node.inputs[1], true), other: a },
        ].filter((x) => x.fused && x.fused.conv!.addTensor < 0 && x.other.opIndex < x.fused.opIndex);
        candidates.sort((x, y) => y.fused!.opIndex - x.fused!.opIndex);
        const pick = candidates[0];
        if (!pick) throw unsupported(node, 'neither operand is a convolution it can be fused into');
        const conv = pick.fused!.conv!;
        if (channelsOf.get(pick.other.tensor) !== conv.outChannels) throw unsupported(node, 'the operands differ in channels');
        conv.postOps.push({ kind: 'sum' });
        conv.addTensor = pick.other.tensor;
        values.set(node.outputs[0], pick.fused!);
        break;
      }
      case 'Concat': {
        const axis = attribute(node, 'axis');
        if (!axis || axis.type !== 'INT' || (axis.i !== 1 && axis.i !== -4)) throw unsupported(node, 'only the channel axis is supported');
        const srcs = node.inputs.map((name) => valueOf(node, name));
        const op: OnednnConcatOp = { kind: 'concat', inputs: srcs.map((s) => s.tensor), output: tensorCount };
        channelsOf.set(tensorCount, srcs.reduce((sum, s) => sum + channelsOf.get(s.tensor)!, 0));
        values.set(node.outputs[0], { tensor: tensorCount++, conv: null, opIndex: ops.length });
        ops.push(op);
        break;
      }
      case 'Identity':
      case 'Dropout':
        values.set(node.outputs[0], valueOf(node, node.inputs[0]));
        break;
      default:
        throw unsupported(node, 'this operation is not implemented with oneDNN here');
    }
  }
  const output = values.get(graph.outputs[0].name);
  if (!output || output.tensor === 0) throw new SpleenTrtError('ERR_BACKEND_UNAVAILABLE', 'The oneDNN backend found no computed output');
  // After the whole graph: BatchNormalization and PRelu are folded into the transposed weights first.
  const planned = (options.upSampling ?? 'subpixel') === 'subpixel' ? ops.map((op) => (op.kind === 'conv' ? subpixelForm(op) : op)) : ops;
  return { inputChannels, tensorCount, outputTensor: output.tensor, ops: planned };
}
