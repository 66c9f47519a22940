/**
 * A summary of an ONNX model read with the package's own decoder (no onnxruntime needed): what a
 * CLI `info` command or a manifest check shows before loading a session.
 */
import { decodeModel, type ValueInfoProto } from './onnx-proto.js';

export interface OnnxSummary {
  irVersion: number;
  /** Version of the default ("" / ai.onnx) operator set, undefined if the model imports none. */
  opset: number | undefined;
  producer: string;
  /** Graph inputs that are not initializers (IR < 4 models list weights as inputs too). */
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  initializerCount: number;
  /** Total elements over all initializers. */
  initializerElements: number;
  /** Node count per op type. */
  opCounts: Record<string, number>;
}

/** Decodes `bytes` and summarises them; throws ERR_MODEL_INVALID for bytes that are not ONNX. */
export function inspectOnnx(bytes: Uint8Array): OnnxSummary {
  const model = decodeModel(bytes);
  const { graph } = model;
  const initializerNames = new Set(graph.initializers.map((t) => t.name));
  const opCounts: Record<string, number> = {};
  for (const n of graph.nodes) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    opCounts[key] = (opCounts[key] ?? 0) + 1;
  }
  return {
    irVersion: model.irVersion,
    opset: model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version,
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    inputs: graph.inputs.filter((v) => !initializerNames.has(v.name)),
    outputs: graph.outputs,
    initializerCount: graph.initializers.length,
    initializerElements: graph.initializers.reduce((sum, t) => sum + t.dims.reduce((a, b) => a * b, 1), 0),
    opCounts,
  };
}
