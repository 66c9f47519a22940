// Model computation per 96^3 window, oneDNN vs onnxruntime, interleaved in one process (same
// weights: the embedded default model), so both see the same machine state.
//   node bench/onednn-vs-ort.mjs [rounds=6]      (after npm run build)
import os from 'node:os';
import { createOnednnBackend } from '../dist/inference/onednn-backend.js';
import { createOnnxRuntimeBackend } from '../dist/inference/onnxruntime-backend.js';
import { loadDefaultModel } from '../dist/model/load-model.js';

const rounds = Number(process.argv[2] ?? 6);
const roi = [96, 96, 96];
const threads = os.availableParallelism();
const onednn = createOnednnBackend(loadDefaultModel('tensorrt').onnx, { inputName: 'input_0', outputName: 'output_0' });
const ort = await createOnnxRuntimeBackend(loadDefaultModel('onnxruntime').onnx, { intraOpThreads: threads });
const backends = { onednn, onnxruntime: ort };
for (const batch of [1, 4]) {
  const input = new Float32Array(batch * 96 ** 3).map(() => Math.random());
  for (const b of Object.values(backends)) await b.run(input, batch, roi); // warm-up (plans, sessions)
  const times = { onednn: [], onnxruntime: [] };
  for (let r = 0; r < rounds; r++) {
    for (const [name, b] of r % 2 ? Object.entries(backends).reverse() : Object.entries(backends)) {
      const t = performance.now();
      await b.run(input, batch, roi);
      times[name].push((performance.now() - t) / batch);
    }
  }
  const stats = (a) => { const s = [...a].sort((x, y) => x - y); return `mean ${(a.reduce((x, y) => x + y, 0) / a.length).toFixed(1)} median ${s[s.length >> 1].toFixed(1)} min ${s[0].toFixed(1)}`; };
  for (const name of Object.keys(times)) console.log(`batch ${batch} ${name}: ms per window ${stats(times[name])} (${rounds} runs)`);
}
console.log(onednn.description, '|', ort.description);
await onednn.close();
await ort.close();
