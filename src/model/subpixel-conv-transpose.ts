/**
 * ConvTranspose(kernel 3, stride 2, pads 1, output_padding 1), the UNet's up-sampling layer, as a
 * sub-pixel convolution: the form onnxruntime's CPU kernels run fastest (col2im's scatter is slow
 * there). Shared by the graph builder (buildUnetOnnx) and the CPU rewrite of imported ONNX files.
 *
 * Per axis, output 2m takes kernel tap 1 at input m; output 2m + 1 takes tap 2 at input m and tap
 * 0 at input m + 1 (zero past the end, which is what output_padding produces). So each of the 8
 * output parities is a convolution with kernel 1 or 2 per axis, using each of the 27 taps once.
 */
import { intAttribute, intsAttribute, stringAttribute, type AttributeProto } from './onnx-proto.js';

/** Per parity (0: even output, 1: odd), the transposed-conv taps that input offsets 0, 1 use. */
export const SUBPIXEL_TAPS: readonly (readonly number[])[] = [[1], [2, 0]];

/** What the emitters below need from a graph under construction. */
export interface GraphEmitter {
  /** Adds a node with one output and returns the output's (unique) name. */
  node(opType: string, name: string, inputs: string[], attributes?: AttributeProto[]): string;
  /** The name of a 1-D INT64 constant holding `values`. */
  int64(values: number[]): string;
  /** Adds a FLOAT initializer and returns its (unique) name. */
  init(name: string, dims: number[], data: Float32Array): string;
}

/**
 * The 8 parities as ONE Conv's weights (kernel 2x2x2, 8 * cout outputs, end padding 1): each
 * parity's weights sit at the taps it uses, the others are zero. More multiply-adds (x 64/27), but
 * one large GEMM and one im2col instead of eight thin ones. The zero taps add exact zeros, so only
 * the summation order differs from the transposed convolution. Output channel order is
 * (pd, o, ph, pw), what `interleaveParityHalves` expects, or with `order` 'parity-major'
 * (pd, ph, pw, o), what the oneDNN network's depth-to-space expects (each parity's channels
 * contiguous, so whole channel blocks move). `w` is the ConvTranspose weight [cin, cout, 3, 3, 3],
 * `b` its bias [cout].
 */
export function fusedParityWeights(
  w: Float32Array,
  b: Float32Array,
  cin: number,
  cout: number,
  order: 'onnxruntime' | 'parity-major' = 'onnxruntime',
): { weight: Float32Array; bias: Float32Array } {
  const weight = new Float32Array(8 * cout * cin * 8);
  const bias = new Float32Array(8 * cout);
  const taps = SUBPIXEL_TAPS;
  for (let parity = 0; parity < 8; parity++) {
    const [pd, ph, pw] = [parity >> 2, (parity >> 1) & 1, parity & 1];
    const t = [taps[pd], taps[ph], taps[pw]];
    for (let o = 0; o < cout; o++) {
      const channel = order === 'parity-major' ? parity * cout + o : ((pd * cout + o) * 2 + ph) * 2 + pw;
      bias[channel] = b[o];
      for (let i = 0; i < cin; i++) {
        const src = (i * cout + o) * 27;
        const dst = (channel * cin + i) * 8;
        for (let a = 0; a < t[0].length; a++) {
          for (let c = 0; c < t[1].length; c++) {
            for (let e = 0; e < t[2].length; e++) {
              weight[dst + (a * 2 + c) * 2 + e] = w[src + (t[0][a] * 3 + t[1][c]) * 3 + t[2][e]];
            }
          }
        }
      }
    }
  }
  return { weight, bias };
}

/**
 * [N, 8*cout, n0, n1, n2] with channel (pd, o, ph, pw) -> [N, cout, 2n0, 2n1, 2n2], in the steps
 * onnxruntime's CPU kernels do fastest (one 8-D Transpose moves single floats and took ~16 % of a
 * batch): per pd half, a DepthToSpace on the [N, 4*cout, n0*n1, n2] view interleaves ph and pw
 * (doubling the merged n0*n1 axis doubles n1 within each n0 row), then a Concat puts the two
 * halves' whole 2n1 x 2n2 planes at 2*d0 + pd. Pure data movement. `x` is the layer's input
 * (for the spatial shape), `conv` the parities.
 */
export function interleaveParityHalves(g: GraphEmitter, prefix: string, x: string, conv: string, cout: number): string {
  const shape = g.node('Shape', `${prefix}.shape`, [x]);
  const batch = g.node('Slice', `${prefix}.batch`, [shape, g.int64([0]), g.int64([1])]);
  const depth = g.node('Slice', `${prefix}.depth`, [shape, g.int64([2]), g.int64([3])]);
  const width = g.node('Slice', `${prefix}.width`, [shape, g.int64([4]), g.int64([5])]);
  const spatial = g.node('Slice', `${prefix}.spatial`, [shape, g.int64([2]), g.int64([5])]);
  const axis0 = [intAttribute('axis', 0)];
  // Reshape's 0 copies the batch dim, -1 takes the rest.
  const planes = g.node('Concat', `${prefix}.planes_shape`, [g.int64([0, 4 * cout, -1]), width], axis0);
  const slabs = g.node('Concat', `${prefix}.slabs_shape`, [g.int64([0, cout]), depth, g.int64([1, -1])], axis0);
  const halves = [0, 1].map((pd) => {
    const half = g.node('Slice', `${prefix}.pd${pd}`, [conv, g.int64([pd * 4 * cout]), g.int64([(pd + 1) * 4 * cout]), g.int64([1])]);
    const view = g.node('Reshape', `${prefix}.pd${pd}_planes`, [half, planes]);
    const interleaved = g.node('DepthToSpace', `${prefix}.pd${pd}_d2s`, [view], [
      intAttribute('blocksize', 2),
      stringAttribute('mode', 'CRD'),
    ]);
    return g.node('Reshape', `${prefix}.pd${pd}_slabs`, [interleaved, slabs]);
  });
  const joined = g.node('Concat', `${prefix}.pd_interleave`, halves, [intAttribute('axis', 3)]);
  const doubled = g.node('Mul', `${prefix}.doubled`, [spatial, g.int64([2])]);
  const merged = g.node('Concat', `${prefix}.merged_shape`, [batch, g.int64([cout]), doubled], axis0);
  return g.node('Reshape', `${prefix}.merge`, [joined, merged]);
}

/**
 * The whole fused sub-pixel layer: Conv with `fusedParityWeights`, then `interleaveParityHalves`.
 * Returns the name of the [N, cout, 2n0, 2n1, 2n2] result.
 */
export function emitFusedSubpixel(
  g: GraphEmitter,
  prefix: string,
  x: string,
  w: Float32Array,
  b: Float32Array,
  cin: number,
  cout: number,
  suffix = '',
): string {
  const { weight, bias } = fusedParityWeights(w, b, cin, cout);
  const wName = g.init(`${prefix}.weight${suffix}_parities`, [8 * cout, cin, 2, 2, 2], weight);
  const bName = g.init(`${prefix}.bias${suffix}_parities`, [8 * cout], bias);
  const conv = g.node('Conv', `${prefix}.parities`, [x, wName, bName], [
    intsAttribute('kernel_shape', [2, 2, 2]),
    intsAttribute('strides', [1, 1, 1]),
    intsAttribute('pads', [0, 0, 0, 1, 1, 1]),
    intsAttribute('dilations', [1, 1, 1]),
    intAttribute('group', 1),
  ]);
  return interleaveParityHalves(g, prefix, x, conv, cout);
}
