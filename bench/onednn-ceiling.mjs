// The single-convolution ceiling on this machine: one Conv node (the UNet's busiest shapes) at
// batch 4, oneDNN (the addon's network, blocked layouts) against onnxruntime (same ONNX, same
// weights), interleaved in one process; ms per call and GFLOP/s (2 * multiply-adds).
//   node bench/onednn-ceiling.mjs [rounds=8] [batch=4]     (after npm run build)
// DNNL_VERBOSE=1 in the environment shows which oneDNN implementation ran (brg/jit avx512_core...)
// and each primitive's own time. Last, the UNet's work per 96^3 window: the network's
// multiply-adds (a ConvTranspose counted as its 27 taps per input voxel) and what the default
// oneDNN plan executes (its fused sub-pixel layers multiply zero taps too).
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { onednnNetworkSpec } from '../dist/inference/onednn-plan.js';
import { GraphBuilder } from '../dist/model/graph-builder.js';
import { encodeModel, intsAttribute } from '../dist/model/onnx-proto.js';
import { createOnednnNetwork, onednnInfo } from '../dist/native/onednn.js';
import { loadDefaultModel } from '../dist/model/load-model.js';

// The primitive's own time comes from oneDNN's verbose lines: the script reruns itself with
// DNNL_VERBOSE=1 and reads the convolution lines after each case's marker (the network's run()
// also reorders the plain input and output and copies them across the JS boundary).
if (process.env.DNNL_VERBOSE === undefined) {
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    env: { ...process.env, DNNL_VERBOSE: '1' },
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  let convMs = null;
  for (const line of child.stdout.split('\n')) {
    if (line.startsWith('timed ')) convMs = [];
    else if (line.startsWith('onednn_verbose,exec,cpu,convolution,') && convMs) convMs.push(Number(line.split(',').at(-1)));
    else if (line.startsWith('onednn_verbose') || line === '') continue;
    else {
      const own = convMs?.length ? ` | oneDNN conv primitive alone (DNNL_VERBOSE) median ${[...convMs].sort((a, b) => a - b)[convMs.length >> 1].toFixed(1)} ms` : '';
      const flop = /\(([\d.]+) GFLOP\)/.exec(line);
      const rate = own && flop ? ` ${((Number(flop[1]) * 1e3) / [...convMs].sort((a, b) => a - b)[convMs.length >> 1]).toFixed(0)} GFLOP/s` : '';
      console.log(line + own + rate);
      convMs = null;
    }
  }
  if (child.status !== 0) console.error(child.stderr);
  process.exit(child.status ?? 1);
}

const rounds = Number(process.argv[2] ?? 8);
const batch = Number(process.argv[3] ?? 4);
const threads = os.availableParallelism();
const cases = [
  { cin: 16, cout: 16, size: 48, stride: 1 },
  { cin: 32, cout: 32, size: 24, stride: 1 },
  { cin: 16, cout: 32, size: 48, stride: 2 },
];

function random(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) out[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.2;
  return out;
}

function convModel({ cin, cout, size, stride }) {
  const g = new GraphBuilder(['x']);
  const w = g.init('w', [cout, cin, 3, 3, 3], random(cout * cin * 27, 1));
  const b = g.init('b', [cout], random(cout, 2));
  const y = g.node('Conv', 'y', ['x', w, b], [intsAttribute('kernel_shape', [3, 3, 3]), intsAttribute('strides', [stride, stride, stride]), intsAttribute('pads', [1, 1, 1, 1, 1, 1])]);
  const out = size / stride;
  return encodeModel({
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], producerName: 'bench', producerVersion: '', docString: '',
    graph: {
      name: 'conv', nodes: g.nodes, initializers: g.initializers,
      inputs: [{ name: 'x', elemType: 1, dims: [batch, cin, size, size, size] }],
      outputs: [{ name: y, elemType: 1, dims: [batch, cout, out, out, out] }],
    },
  });
}

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const c of cases) {
  const onnx = convModel(c);
  // The layout the backend uses: channels-last (brgconv) with AVX-512, else blocked.
  const net = createOnednnNetwork({ ...onednnNetworkSpec(onnx), threads, channelsLast: onednnInfo().isa === 'avx512_core' });
  const session = await ort.InferenceSession.create(onnx, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' });
  const x = random(batch * c.cin * c.size ** 3, 3);
  const feeds = { x: new ort.Tensor('float32', x, [batch, c.cin, c.size, c.size, c.size]) };
  const runs = {
    onednn: async () => { await net.run(x, batch, [c.size, c.size, c.size]); },
    onnxruntime: async () => { await session.run(feeds); },
  };
  for (const run of Object.values(runs)) { await run(); await run(); }
  const times = { onednn: [], onnxruntime: [] };
  console.log(`timed ${c.cin}->${c.cout}`);
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of r % 2 ? Object.entries(runs).reverse() : Object.entries(runs)) {
      const t = performance.now();
      await run();
      times[name].push(performance.now() - t);
    }
  }
  const flop = 2 * batch * c.cout * (c.size / c.stride) ** 3 * c.cin * 27;
  const line = Object.entries(times).map(([name, t]) => `${name} run() ${median(t).toFixed(1)} ms (min ${Math.min(...t).toFixed(1)}) ${(flop / median(t) / 1e6).toFixed(0)} GFLOP/s`);
  console.log(`conv ${c.cin}->${c.cout} k3 s${c.stride} ${c.size}^3 batch ${batch} (${(flop / 1e9).toFixed(2)} GFLOP): ${line.join(' | ')}`);
  net.close();
  await session.release();
}
console.log(`load: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, ${threads} threads`);

// Work per window, from the default oneDNN plan (shapes propagated as the addon does).
const spec = onednnNetworkSpec(loadDefaultModel('tensorrt').onnx);
const sizes = new Map([[0, 96]]);
let network = 0;
let executed = 0;
for (const op of spec.ops) {
  if (op.kind === 'concat') {
    sizes.set(op.output, sizes.get(op.inputs[0]));
    continue;
  }
  const inSize = sizes.get(op.input);
  if (op.subpixel) {
    const taps = 2 * inSize ** 3 * op.inChannels * op.outChannels;
    network += taps * 27;
    // Per-parity convs (27 taps) where the channels fill 16-float blocks, else one fused conv (64).
    executed += taps * (op.outChannels % 16 === 0 ? 27 : 64);
    sizes.set(op.output, 2 * inSize);
  } else {
    const outSize = Math.floor((inSize + op.padBegin + op.padEnd - op.kernel) / op.stride) + 1;
    const flop = 2 * outSize ** 3 * op.inChannels * op.outChannels * op.kernel ** 3;
    network += flop;
    executed += flop;
    sizes.set(op.output, outSize);
  }
}
console.log(`UNet per 96^3 window: ${(network / 1e9).toFixed(3)} GFLOP (network), ${(executed / 1e9).toFixed(3)} GFLOP executed by the oneDNN plan`);
