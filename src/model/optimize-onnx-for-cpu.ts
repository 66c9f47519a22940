/**
 * Rewrites an ONNX model into the form onnxruntime's CPU provider runs fastest, computing the same
 * thing. Imported models (the bundle's model.pt built into the torch-export-like graph, or
 * MONAI's own ONNX export) and the embedded default then run as fast as the graph buildUnetOnnx
 * writes with ONNXRUNTIME_CPU_OPTIONS:
 *
 * - PRelu with one shared slope -> LeakyRelu(alpha = slope): the same float32 product x * slope,
 *   and onnxruntime fuses LeakyRelu into the preceding Conv (it does not fuse PRelu).
 * - ConvTranspose(kernel 3, stride 2, pads 1, output_padding 1, group 1) -> fused sub-pixel Conv
 *   plus DepthToSpace interleave (subpixel-conv-transpose.ts): the same products, summed in
 *   another order, so outputs agree to float32 rounding (~1e-6 relative).
 *
 * Anything else is left exactly as it is; a model with nothing to rewrite comes back unchanged.
 */
import { GraphBuilder } from './graph-builder.js';
import { decodeModel, encodeModel, tensorToFloat32, TensorDataType, type AttributeProto, type NodeProto, type TensorProto } from './onnx-proto.js';
import { emitFusedSubpixel } from './subpixel-conv-transpose.js';

export interface CpuRewriteReport {
  /** PRelu nodes turned into LeakyRelu. */
  leakyRelu: number;
  /** ConvTranspose nodes turned into sub-pixel convolutions. */
  subpixel: number;
}

/** DepthToSpace mode CRD needs opset 11, Slice with steps 10; 13 leaves margin for both. */
const MIN_OPSET_FOR_SUBPIXEL = 13;

function attribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attributes.find((a) => a.name === name);
}

function intsOr(node: NodeProto, name: string, fallback: number[]): number[] | null {
  const a = attribute(node, name);
  if (a === undefined) return fallback;
  return a.type === 'INTS' ? a.ints : null;
}

function sameInts(a: number[] | null, b: number[]): boolean {
  return a !== null && a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The one value every element of a FLOAT initializer has, or null. */
function sharedValue(t: TensorProto | undefined): number | null {
  if (!t || t.dataType !== TensorDataType.FLOAT || t.rawData.length < 4) return null;
  const values = tensorToFloat32(t);
  return values.every((v) => Object.is(v, values[0])) ? values[0] : null;
}

/** Whether a ConvTranspose node is the UNet's 3-D up-sampling layer with constant weights. */
function subpixelCandidate(node: NodeProto, initializers: Map<string, TensorProto>): { w: Float32Array; b: Float32Array; cin: number; cout: number } | null {
  const weight = initializers.get(node.inputs[1] ?? '');
  if (!weight || weight.dataType !== TensorDataType.FLOAT || weight.dims.length !== 5) return null;
  const [cin, cout, k0, k1, k2] = weight.dims;
  if (k0 !== 3 || k1 !== 3 || k2 !== 3) return null;
  const autoPad = attribute(node, 'auto_pad');
  if (autoPad && !(autoPad.type === 'STRING' && autoPad.s === 'NOTSET')) return null;
  if (attribute(node, 'output_shape')) return null;
  const ok =
    sameInts(intsOr(node, 'kernel_shape', [3, 3, 3]), [3, 3, 3]) &&
    sameInts(intsOr(node, 'strides', [1, 1, 1]), [2, 2, 2]) &&
    sameInts(intsOr(node, 'pads', [0, 0, 0, 0, 0, 0]), [1, 1, 1, 1, 1, 1]) &&
    sameInts(intsOr(node, 'output_padding', [0, 0, 0]), [1, 1, 1]) &&
    sameInts(intsOr(node, 'dilations', [1, 1, 1]), [1, 1, 1]);
  const group = attribute(node, 'group');
  if (!ok || (group && !(group.type === 'INT' && group.i === 1))) return null;
  let b: Float32Array = new Float32Array(cout);
  if (node.inputs[2]) {
    const bias = initializers.get(node.inputs[2]);
    if (!bias || bias.dataType !== TensorDataType.FLOAT || bias.rawData.length !== cout * 4) return null;
    b = tensorToFloat32(bias);
  }
  return { w: tensorToFloat32(weight), b, cin, cout };
}

/**
 * The CPU form of `bytes` (an ONNX model) and what was rewritten. Throws ERR_MODEL_INVALID (from
 * the decoder) for bytes that are not an ONNX model.
 * @example
 * const { onnx, report } = optimizeOnnxForCpu(await readFile('model.onnx'));
 */
export function optimizeOnnxForCpu(bytes: Uint8Array): { onnx: Uint8Array; report: CpuRewriteReport } {
  const model = decodeModel(bytes);
  const report: CpuRewriteReport = { leakyRelu: 0, subpixel: 0 };
  const g = model.graph;
  // Attributes the decoder keeps only as a type code (subgraphs...) could not be written back.
  if (g.nodes.some((n) => n.attributes.some((a) => a.type === 'OTHER'))) return { onnx: bytes, report };
  const opset = model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0;
  const initializers = new Map(g.initializers.map((t) => [t.name, t]));
  // New nodes and constants get names the graph does not use yet.
  const appender = new GraphBuilder([
    ...g.initializers.map((t) => t.name),
    ...g.inputs.map((v) => v.name),
    ...g.outputs.map((v) => v.name),
    ...g.nodes.flatMap((n) => [n.name, ...n.outputs]),
  ]);

  for (const node of g.nodes) {
    if (node.domain === '' && node.opType === 'PRelu' && node.inputs.length === 2) {
      const slope = sharedValue(initializers.get(node.inputs[1]));
      if (slope !== null) {
        appender.nodes.push({ ...node, opType: 'LeakyRelu', inputs: [node.inputs[0]], attributes: [{ name: 'alpha', type: 'FLOAT', f: slope }] });
        report.leakyRelu++;
        continue;
      }
    }
    if (node.domain === '' && node.opType === 'ConvTranspose' && opset >= MIN_OPSET_FOR_SUBPIXEL && node.outputs.length === 1) {
      const candidate = subpixelCandidate(node, initializers);
      if (candidate) {
        const { w, b, cin, cout } = candidate;
        emitFusedSubpixel(appender, node.name || 'conv_transpose', node.inputs[0], w, b, cin, cout);
        // The last emitted node takes over the ConvTranspose's output name: consumers are unchanged.
        appender.nodes[appender.nodes.length - 1].outputs[0] = node.outputs[0];
        report.subpixel++;
        continue;
      }
    }
    appender.nodes.push(node);
  }
  if (report.leakyRelu + report.subpixel === 0) return { onnx: bytes, report };

  // Drop initializers nothing reads any more (the replaced weights and slopes).
  const read = new Set([...appender.nodes.flatMap((n) => n.inputs), ...g.inputs.map((v) => v.name), ...g.outputs.map((v) => v.name)]);
  const kept = [...g.initializers.filter((t) => read.has(t.name)), ...appender.initializers];
  const onnx = encodeModel({
    ...model,
    opsetImports: model.opsetImports,
    graph: { ...g, nodes: appender.nodes, initializers: kept },
  });
  return { onnx, report };
}
