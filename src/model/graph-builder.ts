/**
 * Nodes and initializers added to an ONNX graph under names it does not use yet: the one naming
 * scheme shared by the UNet builder (build-unet-onnx.ts) and the CPU rewrite of existing models
 * (optimize-onnx-for-cpu.ts), and what the sub-pixel emitter writes through.
 */
import { floatTensor, int64Tensor, type AttributeProto, type NodeProto, type TensorProto } from './onnx-proto.js';
import type { GraphEmitter } from './subpixel-conv-transpose.js';

export class GraphBuilder implements GraphEmitter {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly names: Set<string>;
  private readonly int64Cache = new Map<string, string>();

  /** `taken`: names already in use (an existing graph's tensors and nodes). */
  constructor(taken: Iterable<string> = []) {
    this.names = new Set(taken);
  }

  /** `name`, or `name_1`, `name_2`... whichever is free; the result is taken from then on. */
  unique(name: string): string {
    let candidate = name;
    for (let i = 1; this.names.has(candidate); i++) candidate = `${name}_${i}`;
    this.names.add(candidate);
    return candidate;
  }

  /** Adds a FLOAT initializer and returns its (unique) name. */
  init(name: string, dims: number[], data: Float32Array): string {
    const unique = this.unique(name);
    this.initializers.push(floatTensor(unique, dims, data));
    return unique;
  }

  /** The name of a 1-D INT64 constant holding `values`, added once per distinct value list. */
  int64(values: number[]): string {
    const key = values.join(',');
    let name = this.int64Cache.get(key);
    if (!name) {
      name = this.unique(`const_i64_${key.replace(/-/g, 'm').replace(/,/g, '_')}`);
      this.initializers.push(int64Tensor(name, [values.length], values));
      this.int64Cache.set(key, name);
    }
    return name;
  }

  /** Adds a node with one output and returns the output's (unique) name, also the node's name. */
  node(opType: string, name: string, inputs: string[], attributes: AttributeProto[] = []): string {
    const output = this.unique(name);
    this.nodes.push({ name: output, opType, domain: '', inputs, outputs: [output], attributes });
    return output;
  }
}
