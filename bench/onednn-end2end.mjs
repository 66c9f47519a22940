// End2end per volume, oneDNN vs onnxruntime, interleaved in one process: the bench's small
// phantom (256x256x60 at 0.8x0.8x5 mm, LPS int16 .nii.gz, 12 windows): read the .nii.gz, the
// whole pipeline (Segmenter.segment), write the mask; both Segmenters alternate, so they see the
// same machine state. Medians; the model computation and the rest (end2end minus it) apart.
//   node bench/onednn-end2end.mjs [rounds=6] [--monai <monai-source-dir>]   (after npm run build)
// With --monai, MONAI's own CPU pipeline for the bundle (bench/monai_pipeline_timing.py, in a warm
// Python process with Debian's python3-torch and MONAI's source on PYTHONPATH; 2 torch threads)
// takes its turn in every round on the same file, and the ratios to it are printed: the issue's
// "end2end at or under 0.4x MONAI's CPU pipeline, timed in the same run". MONAI runs the seeded
// weights (scripts/reference/export-weights.mjs): the same network and work, other numbers.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { writeMaskNifti } from '../dist/cli/infer-command.js';
import { makePhantom, readNifti, Segmenter, writeNifti } from '../dist/index.js';

const args = process.argv.slice(2);
const monaiAt = args.indexOf('--monai');
const monaiSource = monaiAt >= 0 ? args.splice(monaiAt, 2)[1] : undefined;
const rounds = Number(args[0] ?? 6);
const dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-e2e-'));
const input = path.join(dir, 'phantom_ct.nii.gz');
const phantom = makePhantom({ shape: [256, 256, 60], spacingMm: [0.8, 0.8, 5.0], seed: 1 });
await writeNifti(input, phantom.image, { datatype: 'int16' });
const threads = os.availableParallelism();
const segmenters = {
  onednn: await Segmenter.create({ backend: 'onednn', threads }),
  onnxruntime: await Segmenter.create({ backend: 'onnxruntime', threads }),
};
const contenders = Object.fromEntries(Object.entries(segmenters).map(([name, s]) => [name, () => once(s)]));
let monai;
if (monaiSource) {
  monai = await startMonai(monaiSource);
  contenders.monai = monai.once;
}
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const rows = Object.fromEntries(Object.keys(contenders).map((n) => [n, { total: [], model: [], cpu: [] }]));
const once = async (segmenter) => {
  const start = performance.now();
  const cpu = process.cpuUsage();
  const { volume } = await readNifti(input);
  const result = await segmenter.segment(volume);
  await writeMaskNifti(path.join(dir, 'mask.nii.gz'), result.mask);
  const used = process.cpuUsage(cpu);
  return { total: performance.now() - start, model: result.timings.computeMs, cpu: (used.user + used.system) / 1000, windows: result.windowCount };
};
for (const run of Object.values(contenders)) await run(); // warm-up
let windows = 0;
for (let r = 0; r < rounds; r++) {
  const order = Object.entries(contenders);
  if (r % 2) order.reverse();
  for (const [name, run] of order) {
    const t = await run();
    windows = t.windows ?? windows;
    rows[name].total.push(t.total);
    rows[name].model.push(t.model);
    rows[name].cpu.push(t.cpu);
  }
}
for (const [name, r] of Object.entries(rows)) {
  if (name === 'monai') {
    console.log(`${'monai'.padEnd(12)} end2end median ${median(r.total).toFixed(0)} ms (min ${Math.min(...r.total).toFixed(0)}), ${monai.version} (${rounds} runs)`);
    continue;
  }
  const rest = r.total.map((t, i) => t - r.model[i]);
  console.log(
    `${name.padEnd(12)} end2end median ${median(r.total).toFixed(0)} ms (min ${Math.min(...r.total).toFixed(0)}), model ${median(r.model).toFixed(0)}, ` +
      `end2end minus model ${median(rest).toFixed(0)}, CPU ${median(r.cpu).toFixed(0)} ms (${rounds} runs, ${windows} windows)`,
  );
}
if (monai) {
  for (const name of Object.keys(segmenters)) {
    console.log(`${name} / MONAI CPU pipeline: ${(median(rows[name].total) / median(rows.monai.total)).toFixed(3)}x (medians)`);
  }
  monai.close();
}
console.log(`${segmenters.onednn.info.backendDescription} | ${segmenters.onnxruntime.info.backendDescription}`);
console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
for (const s of Object.values(segmenters)) await s.close();
await rm(dir, { recursive: true, force: true });

/** MONAI's pipeline in a warm Python process that times one volume per `run` line. */
async function startMonai(source) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const weights = path.join(dir, 'weights.bin');
  await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, '../scripts/reference/export-weights.mjs'), weights], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`export-weights.mjs exited with ${code}`))));
  });
  const python = process.env.PYTHON ?? '/usr/bin/python3';
  const child = spawn(python, [path.join(here, 'monai_pipeline_timing.py'), '--weights', weights, '--input', input, '--out', path.join(dir, 'monai'), '--threads', String(threads)], {
    env: { ...process.env, PYTHONPATH: [source, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('the MONAI timing process ended early (see its output above)');
    return JSON.parse(value);
  };
  const ready = await next();
  return {
    version: `MONAI ${ready.monai}, torch ${ready.torch}, ${ready.threads} threads`,
    once: async () => {
      child.stdin.write('run\n');
      const { ms } = await next();
      return { total: ms, model: 0, cpu: 0 };
    },
    close: () => child.stdin.end(),
  };
}
