// End2end per volume, oneDNN vs onnxruntime, interleaved in one process: the bench's small
// phantom (256x256x60 at 0.8x0.8x5 mm, LPS int16 .nii.gz, 12 windows): read the .nii.gz, the
// whole pipeline (Segmenter.segment), write the mask; both Segmenters alternate, so they see the
// same machine state. Medians; the model computation and the rest (end2end minus it) apart.
//   node bench/onednn-end2end.mjs [rounds=6]      (after npm run build)
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeMaskNifti } from '../dist/cli/infer-command.js';
import { makePhantom, readNifti, Segmenter, writeNifti } from '../dist/index.js';

const rounds = Number(process.argv[2] ?? 6);
const dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-e2e-'));
const input = path.join(dir, 'phantom_ct.nii.gz');
const phantom = makePhantom({ shape: [256, 256, 60], spacingMm: [0.8, 0.8, 5.0], seed: 1 });
await writeNifti(input, phantom.image, { datatype: 'int16' });
const threads = os.availableParallelism();
const segmenters = {
  onednn: await Segmenter.create({ backend: 'onednn', threads }),
  onnxruntime: await Segmenter.create({ backend: 'onnxruntime', threads }),
};
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const rows = Object.fromEntries(Object.keys(segmenters).map((n) => [n, { total: [], model: [], cpu: [] }]));
const once = async (segmenter) => {
  const start = performance.now();
  const cpu = process.cpuUsage();
  const { volume } = await readNifti(input);
  const result = await segmenter.segment(volume);
  await writeMaskNifti(path.join(dir, 'mask.nii.gz'), result.mask);
  const used = process.cpuUsage(cpu);
  return { total: performance.now() - start, model: result.timings.computeMs, cpu: (used.user + used.system) / 1000, windows: result.windowCount };
};
for (const s of Object.values(segmenters)) await once(s); // warm-up
let windows = 0;
for (let r = 0; r < rounds; r++) {
  const order = Object.entries(segmenters);
  if (r % 2) order.reverse();
  for (const [name, s] of order) {
    const t = await once(s);
    windows = t.windows;
    rows[name].total.push(t.total);
    rows[name].model.push(t.model);
    rows[name].cpu.push(t.cpu);
  }
}
for (const [name, r] of Object.entries(rows)) {
  const rest = r.total.map((t, i) => t - r.model[i]);
  console.log(
    `${name.padEnd(12)} end2end median ${median(r.total).toFixed(0)} ms (min ${Math.min(...r.total).toFixed(0)}), model ${median(r.model).toFixed(0)}, ` +
      `end2end minus model ${median(rest).toFixed(0)}, CPU ${median(r.cpu).toFixed(0)} ms (${rounds} runs, ${windows} windows)`,
  );
}
console.log(`${segmenters.onednn.info.backendDescription} | ${segmenters.onnxruntime.info.backendDescription}`);
console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
for (const s of Object.values(segmenters)) await s.close();
await rm(dir, { recursive: true, force: true });
