#!/usr/bin/env node
/**
 * Reading time of a DICOM series against the equivalent .nii.gz (issue 17). Builds a phantom of
 * the given shape, writes it as int16 .nii.gz (gzip level 6) and as a pydicom CT series (Explicit
 * VR LE, one file per slice; optionally converted with dcmcjpls to JPEG-LS), then times
 * readNifti and readDicomSeries (median of --runs, after one warm-up read each).
 *
 * Usage: npm run build && node bench/dicom-read.mjs [--shape 512,512,300] [--runs 3] [--jpeg-ls]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makePhantom, readDicomSeries, readNifti, writeNifti } from '../dist/index.js';

const { values } = parseArgs({ options: { shape: { type: 'string', default: '512,512,300' }, runs: { type: 'string', default: '3' }, 'jpeg-ls': { type: 'boolean' } } });
const shape = values.shape.split(',').map(Number);
const runs = Number(values.runs);
const root = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-dicom-bench-'));
const script = path.join(import.meta.dirname, '../test/helpers/make-dicom-series.py');

function run(command, args) {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} failed: ${r.stderr}`);
}

async function median(label, fn) {
  await fn();
  const times = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const m = times[Math.floor(times.length / 2)];
  console.log(`${label}: median ${m.toFixed(0)} ms (runs: ${times.map((t) => t.toFixed(0)).join(', ')})`);
  return m;
}

try {
  const { image } = makePhantom({ shape, spacingMm: [0.8, 0.8, 1.5], seed: 1 });
  const nifti = path.join(root, 'ct.nii.gz');
  await writeNifti(nifti, image, { datatype: 'int16' });
  let series = path.join(root, 'series');
  run('/usr/bin/python3', [script, nifti, series, '--intercept', '-1024']);
  if (values['jpeg-ls']) {
    const out = path.join(root, 'jpeg-ls');
    mkdirSync(out);
    for (const name of readdirSync(series)) run('dcmcjpls', [path.join(series, name), path.join(out, name)]);
    series = out;
  }
  console.log(`shape ${shape.join('x')}, node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  await median('readNifti(.nii.gz)', () => readNifti(nifti));
  await median(`readDicomSeries(${values['jpeg-ls'] ? 'JPEG-LS' : 'Explicit VR LE'}, ${shape[2]} files)`, () => readDicomSeries(series));
} finally {
  rmSync(root, { recursive: true, force: true });
}
