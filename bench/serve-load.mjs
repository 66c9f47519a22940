#!/usr/bin/env node
/**
 * Load test of `spleen-trt serve` (run `npm run build` first):
 *  1. the in-process baseline: readNifti -> Segmenter.segment -> writeNifti, as a library user would;
 *  2. the service at 1, 2, 4 concurrent clients, each client submitting with ?wait and downloading
 *     the mask (end to end as a client sees it): volumes per minute, latency p50 / p95;
 *  3. overload: submissions at twice the rate the service finishes them (open loop) for a while;
 *     every answer must be 202, 429 or a result; zero 5xx; every accepted job must end done or
 *     cancelled; peak RSS of the server process (VmHWM).
 * The volume is the bench's small case, the 256x256x60 phantom. Writes bench/results/serve-<time>.json.
 *
 *   node bench/serve-load.mjs [--clients 1,2,4] [--requests 4] [--baseline-runs 3] [--overload-s 120] [--threads 2] [--max-queue 4]
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { encodeNifti, makePhantom, readNifti, Segmenter, writeNifti } from '../dist/index.js';
import { gzipSync } from 'node:zlib';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1,2,4' },
    requests: { type: 'string', default: '4' },
    'baseline-runs': { type: 'string', default: '3' },
    'overload-s': { type: 'string', default: '120' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    // Small, so that the overload phase fills the queue and sees 429s within a couple of minutes.
    'max-queue': { type: 'string', default: '4' },
  },
});
const clients = values.clients.split(',').map(Number);
const requestsPerLevel = Number(values.requests);
const baselineRuns = Number(values['baseline-runs']);
const overloadS = Number(values['overload-s']);
const threads = Number(values.threads);
const main = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../dist/cli/main.js');

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const work = await mkdtemp(path.join(os.tmpdir(), 'spleen-serve-bench-'));
const ctBytes = gzipSync(encodeNifti(makePhantom({ seed: 1 }).image, { datatype: 'int16' }), { level: 6 });
const ctFile = path.join(work, 'ct.nii.gz');
await writeFile(ctFile, ctBytes);

// 1. In process.
const segmenter = await Segmenter.create({ backend: 'onnxruntime', threads });
const baseline = [];
for (let i = 0; i <= baselineRuns; i++) {
  const t = performance.now();
  const { volume } = await readNifti(ctFile);
  const { mask } = await segmenter.segment(volume);
  await writeNifti(path.join(work, 'mask.nii.gz'), mask);
  if (i > 0) baseline.push(performance.now() - t); // the first is a warm-up
}
await segmenter.close();
console.error(`in process: mean ${mean(baseline).toFixed(0)} ms over ${baseline.length} runs`);

// The service.
const child = spawn(process.execPath, [main, 'serve', '--no-auth', '--port', '0', '--threads', String(threads), '--data-dir', path.join(work, 'data'), '--max-queue', values['max-queue'], '--log-level', 'warn'], {
  stdio: ['ignore', 'ignore', 'pipe'],
});
let stderr = '';
const base = await new Promise((resolve, reject) => {
  child.stderr.on('data', (c) => {
    stderr += c;
    const m = /spleen-trt serve: (http:\/\/\S+)/.exec(stderr);
    if (m) resolve(m[1]);
  });
  child.on('exit', () => reject(new Error(stderr)));
});

async function oneRequest() {
  const t = performance.now();
  const response = await fetch(`${base}/v1/segmentations?wait=600`, { method: 'POST', body: ctBytes, headers: { 'content-type': 'application/octet-stream' } });
  const job = await response.json();
  if (response.status !== 200 || job.state !== 'done') throw new Error(`job not done: ${response.status} ${JSON.stringify(job).slice(0, 300)}`);
  await (await fetch(`${base}${job.urls.mask}`)).arrayBuffer();
  return { ms: performance.now() - t, job };
}

await oneRequest(); // warm-up
const levels = [];
for (const c of clients) {
  const latencies = [];
  const serverMs = [];
  const t0 = performance.now();
  let left = requestsPerLevel;
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (left > 0) {
        left--;
        const { ms, job } = await oneRequest();
        latencies.push(ms);
        serverMs.push(job.timings.totalMs);
      }
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  levels.push({ clients: c, requests: latencies.length, volumesPerMin: (latencies.length / wallS) * 60, p50Ms: quantile(latencies, 0.5), p95Ms: quantile(latencies, 0.95), meanMs: mean(latencies) });
  console.error(`${c} client(s): ${JSON.stringify(levels.at(-1))}`);
}
const single = levels.find((l) => l.clients === 1);
const overheadPct = single ? ((single.meanMs - mean(baseline)) / mean(baseline)) * 100 : undefined;

// 3. Overload: open loop at twice the finishing rate.
const serviceRatePerS = single ? 1000 / single.meanMs : 1 / 5;
const intervalMs = 1000 / (2 * serviceRatePerS);
const statuses = {};
const accepted = [];
const tEnd = performance.now() + overloadS * 1000;
const inflight = [];
while (performance.now() < tEnd) {
  inflight.push(
    fetch(`${base}/v1/segmentations`, { method: 'POST', body: ctBytes, headers: { 'content-type': 'application/octet-stream' } })
      .then(async (r) => {
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        const body = await r.json();
        if (r.status === 202 || r.status === 200) accepted.push(body.id);
      })
      .catch((e) => {
        statuses.error = (statuses.error ?? 0) + 1;
        console.error(String(e));
      }),
  );
  await sleep(intervalMs);
}
await Promise.all(inflight);
const outcomes = {};
for (const id of accepted) {
  let state = 'lost';
  for (let i = 0; i < 2400; i++) {
    const r = await fetch(`${base}/v1/segmentations/${id}`);
    if (r.status === 404) break;
    const job = await r.json();
    if (['done', 'failed', 'cancelled'].includes(job.state)) {
      state = job.state === 'failed' ? `failed:${job.error?.code}` : job.state;
      break;
    }
    await sleep(250);
  }
  outcomes[state] = (outcomes[state] ?? 0) + 1;
}
const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
const peakRssMiB = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
child.kill('SIGTERM');
const exitCode = await new Promise((r) => child.on('exit', r));

const result = {
  when: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, threads },
  volume: '256x256x60 phantom (seed 1), .nii.gz int16',
  inProcessMs: { mean: mean(baseline), runs: baseline },
  levels,
  overheadPctAt1Client: overheadPct,
  overload: { seconds: overloadS, intervalMs, statuses, accepted: accepted.length, outcomes, peakRssMiB, exitCode },
};
await mkdir('bench/results', { recursive: true });
const out = `bench/results/serve-${result.when.replace(/[:.]/g, '-')}.json`;
await writeFile(out, JSON.stringify(result, null, 2));
console.log(JSON.stringify(result, null, 2));
console.error(`written ${out}`);
await rm(work, { recursive: true, force: true });
