// In-process, interleaved A/B of the NIfTI read and write paths: this checkout's dist/ against
// another checkout's (--base DIR: an older commit built there, e.g. `git archive <commit> | tar -x
// -C DIR`, node_modules linked, `npm run build && npm run build:addon`), or with this checkout's
// switches (--switches: the run encoder off, huge-page advice off). Reads the bench's
// int16 CT phantom (readNifti) and writes its mask (writeMaskNifti, float32 .nii.gz, level 1):
// A, B, B, A... in one process so a busy machine's drift hits both alike; medians of wall time
// and of the process's CPU time (all threads). Checks that both sides decode the same voxels and
// write files that inflate to the same bytes. Usage:
//   npm run build && node bench/ab-io.mjs [--large|--xlarge] [--rounds 9] (--base DIR | --switches)
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

const args = process.argv.slice(2);
const size = args.includes('--xlarge') ? 'xlarge' : args.includes('--large') ? 'large' : 'small';
const rounds = Number(args[args.indexOf('--rounds') + 1]) || 9;
const baseDir = args.includes('--base') ? path.resolve(args[args.indexOf('--base') + 1]) : undefined;
const here = path.resolve(import.meta.dirname, '..');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function side(root) {
  const dist = (file) => import(path.join(root, 'dist', file));
  return {
    readNifti: (await dist('nifti/index.js')).readNifti,
    writeMaskNifti: (await dist('cli/infer-command.js')).writeMaskNifti,
  };
}

const newSide = await side(here);
const { setRunDeflateEnabled } = await import(path.join(here, 'dist/native/run-deflate.js'));
const { setHugePageAdvice } = await import(path.join(here, 'dist/native/memory.js'));
const sides = { new: { ...newSide, setup: () => {} } };
if (baseDir) {
  sides.base = { ...(await side(baseDir)), setup: () => {} };
} else {
  // This checkout with the issue-13 I/O levers off: zlib for the mask, no huge-page advice.
  const on = (flag) => () => {
    setRunDeflateEnabled(flag);
    setHugePageAdvice(flag);
  };
  sides.new.setup = on(true);
  sides.off = { ...newSide, setup: on(false) };
}

const { PHANTOMS } = await import(path.join(here, 'dist/bench/bench-worker.js'));
const { makePhantom } = await import(path.join(here, 'dist/phantom/make-phantom.js'));
const { writeNifti } = await import(path.join(here, 'dist/nifti/index.js'));
const dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-ab-io-'));
try {
  const phantom = makePhantom({ ...PHANTOMS[size], seed: 1 });
  const ct = path.join(dir, 'ct.nii.gz');
  await writeNifti(ct, phantom.image, { datatype: 'int16' });
  const names = Object.keys(sides);
  const times = Object.fromEntries(names.map((n) => [n, { read: { wall: [], cpu: [] }, write: { wall: [], cpu: [] } }]));
  const voxels = {};
  const masks = {};
  const sizes = {};
  const measure = async (into, run) => {
    const cpu0 = process.cpuUsage();
    const t = performance.now();
    const result = await run();
    const wall = performance.now() - t;
    const cpu = process.cpuUsage(cpu0);
    into.wall.push(wall);
    into.cpu.push((cpu.user + cpu.system) / 1000);
    return result;
  };
  for (let r = 0; r <= rounds; r++) {
    for (const name of r % 2 ? [...names].reverse() : names) {
      const s = sides[name];
      s.setup();
      const sink = r === 0 ? { read: { wall: [], cpu: [] }, write: { wall: [], cpu: [] } } : times[name];
      const { volume } = await measure(sink.read, () => s.readNifti(ct));
      const file = path.join(dir, `mask-${name}.nii.gz`);
      await measure(sink.write, () => s.writeMaskNifti(file, phantom.label));
      if (r === 0) {
        voxels[name] = volume.data;
        const gz = await readFile(file);
        sizes[name] = gz.length;
        masks[name] = zlib.gunzipSync(gz);
      }
    }
  }
  sides.new.setup();
  const [a, b] = names;
  const sameVoxels = Buffer.compare(Buffer.from(voxels[a].buffer, voxels[a].byteOffset, voxels[a].byteLength), Buffer.from(voxels[b].buffer, voxels[b].byteOffset, voxels[b].byteLength)) === 0;
  const result = {
    size, shape: PHANTOMS[size].shape, rounds, loadavg: os.loadavg().map((x) => +x.toFixed(2)),
    sameVoxels, sameMaskBytes: Buffer.compare(masks[a], masks[b]) === 0, maskGzBytes: sizes,
  };
  for (const name of names) {
    result[name] = Object.fromEntries(
      Object.entries(times[name]).map(([stage, t]) => [stage, `wall ${median(t.wall).toFixed(1)} ms, process CPU ${median(t.cpu).toFixed(1)} ms`]),
    );
  }
  console.log(JSON.stringify(result, null, 1));
  if (!result.sameVoxels || !result.sameMaskBytes) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
