#!/usr/bin/env node
/**
 * A 512x512x90 mask (a 100x100x30 box of ones) compressed as a .nii.gz: one zlib stream at level 1
 * (what the queue worker did) against gzipNiftiAsync (pieces on the thread pool, the addon's run
 * encoder where it loads), alternating, medians. Needs `npm run build`.
 *   node bench/mask-gzip.mjs [rounds]
 */
import os from 'node:os';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { encodeNifti } from '../dist/index.js';
import { gzipNiftiAsync } from '../dist/nifti/index.js';

const gzipAsync = promisify(gzip);
const rounds = Number(process.argv[2]) || 6;
const shape = [512, 512, 90];
const data = new Uint8Array(shape[0] * shape[1] * shape[2]);
for (let i = 250; i < 350; i++) for (let j = 200; j < 300; j++) for (let k = 30; k < 60; k++) data[(i * shape[1] + j) * shape[2] + k] = 1;
const mask = { data, shape, spacingMm: [0.8, 0.8, 2.5], affine: Float64Array.from([0.8, 0, 0, 0, 0, 0.8, 0, 0, 0, 0, 2.5, 0, 0, 0, 0, 1]) };
const times = { zlibStream: [], gzipNiftiAsync: [] };
const bytes = {};
for (let r = 0; r < rounds; r++) {
  let t = performance.now();
  bytes.zlibStream = (await gzipAsync(encodeNifti(mask), { level: 1 })).length;
  times.zlibStream.push(performance.now() - t);
  t = performance.now();
  bytes.gzipNiftiAsync = (await gzipNiftiAsync(mask, { gzipLevel: 1 })).length;
  times.gzipNiftiAsync.push(performance.now() - t);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(JSON.stringify({ rounds, loadavg: os.loadavg().map((x) => +x.toFixed(2)), medianMs: Object.fromEntries(Object.entries(times).map(([k, v]) => [k, +median(v).toFixed(1)])), bytes }));
