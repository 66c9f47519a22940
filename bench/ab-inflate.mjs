// In-process, interleaved A/B of the .nii.gz read by inflater: ISA-L streaming into the decode
// (the slices decoded while the file inflates) against libdeflate's one-shot inflate then the
// decode (and zlib's with --zlib), on the bench's int16 CT phantom, readNifti from the file as
// the CLI reads it. A, B, B, A... in one process so a busy machine's drift hits both alike; the
// first round warms up and is not counted; medians of wall time and of the process's CPU time (all
// threads). Checks that every side decodes the same voxels, prints the load before and after.
// Usage:
//   npm run build && node bench/ab-inflate.mjs [--large|--xlarge] [--rounds 9] [--zlib]
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PHANTOMS } from '../dist/bench/bench-worker.js';
import { gzipCodecStatus, setGzipCodecEnabled, setIsalEnabled } from '../dist/native/gzip-codec.js';
import { readNifti, writeNifti } from '../dist/nifti/index.js';
import { makePhantom } from '../dist/phantom/make-phantom.js';

const args = process.argv.slice(2);
const size = args.includes('--xlarge') ? 'xlarge' : args.includes('--large') ? 'large' : 'small';
const rounds = Number(args[args.indexOf('--rounds') + 1]) || 9;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const sides = {
  'isa-l': () => { setIsalEnabled(true); setGzipCodecEnabled(true); },
  libdeflate: () => { setIsalEnabled(false); setGzipCodecEnabled(true); },
  ...(args.includes('--zlib') ? { zlib: () => { setIsalEnabled(false); setGzipCodecEnabled(false); } } : {}),
};
const names = Object.keys(sides);
const status = gzipCodecStatus();
if (!status.isal) console.error(`warning: ISA-L is not used here (${status.reason}); both sides read the same way`);

const dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-ab-inflate-'));
try {
  const phantom = makePhantom({ ...PHANTOMS[size], seed: 1 });
  const ct = path.join(dir, 'ct.nii.gz');
  await writeNifti(ct, phantom.image, { datatype: 'int16' });
  const loadBefore = os.loadavg().map((x) => +x.toFixed(2));
  const times = Object.fromEntries(names.map((n) => [n, { wall: [], cpu: [] }]));
  const voxels = {};
  for (let r = 0; r <= rounds; r++) {
    for (const name of r % 2 ? [...names].reverse() : names) {
      sides[name]();
      const cpu0 = process.cpuUsage();
      const t = performance.now();
      const { volume } = await readNifti(ct);
      const wall = performance.now() - t;
      const cpu = process.cpuUsage(cpu0);
      if (r === 0) voxels[name] = Buffer.from(volume.data.buffer, volume.data.byteOffset, volume.data.byteLength);
      else {
        times[name].wall.push(wall);
        times[name].cpu.push((cpu.user + cpu.system) / 1000);
      }
    }
  }
  sides['isa-l']();
  const sameVoxels = names.every((n) => voxels[n].equals(voxels[names[0]]));
  const result = {
    size, shape: PHANTOMS[size].shape, rounds, codec: status.reason, loadavgBefore: loadBefore, loadavgAfter: os.loadavg().map((x) => +x.toFixed(2)), sameVoxels,
    readNifti: Object.fromEntries(names.map((n) => [n, `wall ${median(times[n].wall).toFixed(1)} ms (min ${Math.min(...times[n].wall).toFixed(1)}), process CPU ${median(times[n].cpu).toFixed(1)} ms`])),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  console.log(JSON.stringify(result, null, 1));
  if (!sameVoxels) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
