/**
 * Small ONNX helpers shared by the tests: run a model once on onnxruntime, build a tiny graph.
 */
import * as ort from 'onnxruntime-node';
import { encodeModel, type NodeProto, type TensorProto, type ValueInfoProto } from '../../src/model/onnx-proto.js';

/** Runs `onnx` once on its first input and returns its first output. */
export async function runOnnx(onnx: Uint8Array, input: Float32Array, dims: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 2, interOpNumThreads: 1 });
  try {
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, dims) });
    return out[session.outputNames[0]].data as Float32Array;
  } finally {
    await session.release();
  }
}

/** An opset-17 model of `nodes` between the given inputs and outputs. */
export function tinyModel(inputs: ValueInfoProto[], outputs: ValueInfoProto[], nodes: NodeProto[], initializers: TensorProto[] = []): Uint8Array {
  return encodeModel({
    irVersion: 8,
    opsetImports: [{ domain: '', version: 17 }],
    producerName: 'test',
    producerVersion: '',
    docString: '',
    graph: { name: 'tiny', nodes, initializers, inputs, outputs },
  });
}
