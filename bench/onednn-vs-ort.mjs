// Model computation per 96^3 window, oneDNN vs onnxruntime, interleaved in one process (same
// weights: the embedded default model), so all see the same machine state. Besides the default
// oneDNN plan (channels-last with AVX-512), `onednn-blocked` is it in the blocked layout,
// `onednn-fused` with one fused conv per sub-pixel layer, and `onednn-deconv` the earlier plan
// (blocked layout, oneDNN deconvolutions for the stride-2 ConvTransposes, oneDNN's GEMM conv for
// the last 2->2 layer) for an A/B of the C++ layers.
//   node bench/onednn-vs-ort.mjs [rounds=6] [batches=1,4] [backends=onednn,onednn-deconv,onnxruntime]
import os from 'node:os';
import { createOnednnBackend } from '../dist/inference/onednn-backend.js';
import { createOnnxRuntimeBackend } from '../dist/inference/onnxruntime-backend.js';
import { loadDefaultModel } from '../dist/model/load-model.js';

const rounds = Number(process.argv[2] ?? 6);
const batches = (process.argv[3] ?? '1,4').split(',').map(Number);
const wanted = (process.argv[4] ?? 'onednn,onednn-deconv,onnxruntime').split(',');
const roi = [96, 96, 96];
const threads = os.availableParallelism();
const names = { inputName: 'input_0', outputName: 'output_0' };
const makers = {
  onednn: async () => createOnednnBackend(loadDefaultModel('tensorrt').onnx, names, { threads }),
  'onednn-blocked': async () => createOnednnBackend(loadDefaultModel('tensorrt').onnx, names, { threads, channelsLast: false }),
  'onednn-fused': async () => createOnednnBackend(loadDefaultModel('tensorrt').onnx, names, { threads, subpixelSplit: false }),
  'onednn-deconv': async () =>
    createOnednnBackend(loadDefaultModel('tensorrt').onnx, names, {
      threads,
      upSampling: 'deconvolution',
      directConv: false,
      channelsLast: false,
    }),
  onnxruntime: async () => createOnnxRuntimeBackend(loadDefaultModel('onnxruntime').onnx, { intraOpThreads: threads }),
};
const backends = {};
for (const name of wanted) backends[name] = await makers[name]();
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
for (const batch of batches) {
  const input = new Float32Array(batch * 96 ** 3).map(() => Math.random());
  for (const b of Object.values(backends)) await b.run(input, batch, roi); // warm-up (plans, sessions)
  const times = Object.fromEntries(wanted.map((n) => [n, []]));
  // CPU time of the whole process per window (user + system, all threads): on this shared VM the
  // wall time swings with other work; the CPU time less so (it includes OpenMP's spin-waiting).
  const cpu = Object.fromEntries(wanted.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    const order = Object.entries(backends);
    for (let k = 0; k < r % order.length; k++) order.push(order.shift()); // rotate who runs first
    for (const [name, b] of order) {
      const t = performance.now();
      const c = process.cpuUsage();
      await b.run(input, batch, roi);
      times[name].push((performance.now() - t) / batch);
      const used = process.cpuUsage(c);
      cpu[name].push((used.user + used.system) / 1000 / batch);
    }
  }
  for (const name of wanted) {
    const t = times[name];
    console.log(
      `batch ${batch} ${name.padEnd(14)} ms per window: median ${median(t).toFixed(1)} min ${Math.min(...t).toFixed(1)}, ` +
        `CPU ms per window: median ${median(cpu[name]).toFixed(1)} (${rounds} runs)`,
    );
  }
}
console.log(Object.values(backends).map((b) => b.description).join(' | '));
console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
for (const b of Object.values(backends)) await b.close();
