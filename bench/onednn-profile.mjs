// Per-primitive time of the oneDNN backend on one 96^3 window batch, from DNNL_VERBOSE.
//   DNNL_VERBOSE=1 node bench/onednn-profile.mjs [batch=1] 2>/dev/null | node bench/onednn-profile.mjs --sum
// The first form prints oneDNN's verbose lines of the third run (after two warm-ups);
// the second sums them per primitive line (kind, implementation, shapes), largest first.
import os from 'node:os';
import readline from 'node:readline';

if (process.argv[2] === '--sum') {
  const rows = new Map();
  let total = 0;
  let started = false;
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line === 'onednn_profile,start') started = true;
    if (!started || !line.startsWith('onednn_verbose,exec,cpu,')) continue;
    const f = line.split(',');
    const ms = Number(f[f.length - 1]);
    const key = [f[3], f[4], f[f.length - 2]].join(' ');
    rows.set(key, (rows.get(key) ?? 0) + ms);
    total += ms;
  }
  for (const [k, ms] of [...rows].sort((a, b) => b[1] - a[1])) console.log(ms.toFixed(2).padStart(9), k);
  console.log(total.toFixed(2).padStart(9), 'total');
} else {
  const { createOnednnBackend } = await import('../dist/inference/onednn-backend.js');
  const { loadDefaultModel } = await import('../dist/model/load-model.js');
  const batch = Number(process.argv[2] ?? 1);
  const b = createOnednnBackend(loadDefaultModel('tensorrt').onnx, { inputName: 'input_0', outputName: 'output_0' }, { threads: os.availableParallelism() });
  const input = new Float32Array(batch * 96 ** 3).map(() => Math.random());
  const verbose = process.env.DNNL_VERBOSE;
  for (let r = 0; r < 3; r++) {
    if (r === 2) console.log('onednn_profile,start');
    const t = performance.now();
    const out = await b.run(input, batch, [96, 96, 96]);
    console.error(`run ${r}: ${(performance.now() - t).toFixed(1)} ms (compute ${out.timings.computeMs.toFixed(1)})`);
  }
  await b.close();
}
