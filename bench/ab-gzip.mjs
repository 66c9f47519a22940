// In-run A/B of the .nii.gz inflation (libdeflate vs zlib) on the bench's phantoms: inflating and
// reading the int16 CT, and writing the mask (zlib's deflate either way; the CRC-32 by libdeflate
// on the pool, or zlib.crc32 on the main thread),
// interleaved A, B, A, B... in one
// process so a busy machine's drift hits both alike; medians of wall time and of the process's
// CPU time (all threads; steadier than wall time on a shared machine). Usage:
//   npm run build && node bench/ab-gzip.mjs [--large|--xlarge] [--rounds 7]
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readNifti, writeNifti } from '../dist/nifti/index.js';
import { makePhantom } from '../dist/phantom/make-phantom.js';
import { gunzipCappedAsync } from '../dist/nifti/nifti-gzip.js';
import { gzipCodecStatus, setGzipCodecEnabled } from '../dist/native/gzip-codec.js';
import { PHANTOMS } from '../dist/bench/bench-worker.js';
import { writeMaskNifti } from '../dist/cli/infer-command.js';
import { setRunDeflateEnabled } from '../dist/native/run-deflate.js';

const args = process.argv.slice(2);
const size = args.includes('--xlarge') ? 'xlarge' : args.includes('--large') ? 'large' : 'small';
const rounds = Number(args[args.indexOf('--rounds') + 1]) || 7;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

setRunDeflateEnabled(false);
const dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-ab-gzip-'));
try {
  const phantom = makePhantom({ ...PHANTOMS[size], seed: 1 });
  const ct = path.join(dir, 'ct.nii.gz');
  await writeNifti(ct, phantom.image, { datatype: 'int16' });
  const mask = phantom.label;
  const ctBytes = await readFile(ct);
  const stages = {
    inflate: () => gunzipCappedAsync(ctBytes, 1 << 30),
    readNifti: () => readNifti(ct),
    // The writer deflates with zlib either way (the mask's run encoder is off here: it needs
    // neither library; bench/ab-io.mjs measures it); with libdeflate its CRC-32 runs on the pool.
    writeNifti: () => writeMaskNifti(path.join(dir, 'mask.nii.gz'), mask),
  };
  const times = {};
  for (const which of ['libdeflate', 'zlib']) {
    times[which] = {};
    for (const stage of Object.keys(stages)) times[which][stage] = { wall: [], cpu: [] };
  }
  for (let r = 0; r < rounds + 1; r++) {
    for (const which of r % 2 ? ['zlib', 'libdeflate'] : ['libdeflate', 'zlib']) {
      setGzipCodecEnabled(which === 'libdeflate');
      for (const [stage, run] of Object.entries(stages)) {
        const cpu0 = process.cpuUsage();
        const t = performance.now();
        await run();
        const wall = performance.now() - t;
        const cpu = process.cpuUsage(cpu0);
        // The first round warms both up and is not counted.
        if (r > 0) {
          times[which][stage].wall.push(wall);
          times[which][stage].cpu.push((cpu.user + cpu.system) / 1000);
        }
      }
    }
  }
  setGzipCodecEnabled(true);
  const result = { size, shape: PHANTOMS[size].shape, rounds, codec: gzipCodecStatus().reason, loadavg: os.loadavg() };
  for (const which of ['libdeflate', 'zlib']) {
    result[which] = {};
    for (const [stage, t] of Object.entries(times[which])) result[which][stage] = `wall ${median(t.wall).toFixed(1)} ms, process CPU ${median(t.cpu).toFixed(1)} ms`;
  }
  console.log(JSON.stringify(result, null, 1));
} finally {
  await rm(dir, { recursive: true, force: true });
}
