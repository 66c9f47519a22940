#!/usr/bin/env node
/**
 * Scale-out bench (issue 12): what the Redis/BullMQ queue adds per job, and jobs per minute with
 * one and two worker processes. Needs `npm run build` and redis-server on PATH; starts its own
 * Redis (loopback, free port, temporary directory, AOF on as in production) and removes it after.
 *
 *   node bench/queue-bench.mjs [--jobs 8] [--overhead-jobs 40] [--out bench/results/queue-bench.json]
 *
 * 1. Queue overhead: jobs whose Segmenter is a stand-in that returns a precomputed mask at once,
 *    timed from add() to 'completed' seen by the producer (QueueEvents), one worker, one job at a
 *    time, against the job's own file work done directly (decode the input, gzip the mask, render
 *    the preview). The difference is the queue's cost: Redis round trips, and the input written
 *    to and read from shared storage and the artifacts committed (fsynced). Run on a tiny volume
 *    (queue cost alone) and on the bench's 256x256x60 CT (plus the file transfer).
 * 2. Throughput: the real Segmenter (onnxruntime) in `spleen-trt worker` processes, N jobs of a
 *    small CT, for 1 worker x 2 threads, 1 worker x 1 thread and 2 workers x 1 thread.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { QueueEvents } from 'bullmq';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { encodeNifti, encodePng, makePhantom, PREDICTION_COLOR, readNifti, renderPreview, Segmenter } from '../dist/index.js';
import { createSegmentationQueue, createSegmentationWorker, DirectoryStorage, QUEUE_NAME } from '../dist/queue/index.js';
import { startRedis } from './redis-server.mjs';

const ROOT = path.resolve(import.meta.dirname, '..');
const gzipAsync = promisify(gzip);
const CLI = path.join(ROOT, 'dist/cli/main.js');
const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '8' },
    'skip-throughput': { type: 'boolean', default: false },
    'overhead-jobs': { type: 'string', default: '40' },
    out: { type: 'string', default: path.join(ROOT, 'bench/results/queue-bench.json') },
  },
});

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, mean: s.reduce((a, b) => a + b, 0) / s.length, median: q(0.5), p90: q(0.9), min: s[0], max: s.at(-1) };
};
const round = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v * 10) / 10 : v]));

/** add() -> 'completed' per job with a stand-in Segmenter (a precomputed mask, no compute). */
async function queueOverhead(redisUrl, dataDir, volume, jobs, prefix) {
  const mask = { data: Uint8Array.from(volume.data, (v) => (v > 0 ? 1 : 0)), shape: volume.shape, spacingMm: volume.spacingMm, affine: volume.affine };
  const result = { mask, summary: { voxelCount: 0, volumeMl: 0, boundingBox: null, centroidMm: null, empty: true }, windowCount: 0, timings: { totalMs: 0 } };
  const segmenter = { segment: async () => result };
  const storage = new DirectoryStorage(dataDir);
  const queue = createSegmentationQueue({ connection: redisUrl, storage, prefix });
  const events = new QueueEvents(QUEUE_NAME, { connection: { url: redisUrl }, prefix });
  await events.waitUntilReady();
  const worker = createSegmentationWorker({ connection: redisUrl, storage, segmenter, prefix });
  worker.start();
  const bytes = encodeNifti(volume, { datatype: 'int16' });
  const latencies = [];
  const addMs = [];
  const runMs = [];
  const queueOnly = [];
  for (let i = 0; i < jobs + 3; i++) {
    const t = performance.now();
    const { id } = await queue.add(bytes);
    const added = performance.now();
    const job = await queue.queue.getJob(id);
    await job.waitUntilFinished(events, 60_000);
    const total = performance.now() - t;
    const done = await queue.queue.getJob(id);
    if (i < 3) continue; // 3 warm-up jobs
    latencies.push(total);
    addMs.push(added - t);
    // processedOn -> finishedOn: the job's own work in the worker (read input, decode, encode and
    // commit the artifacts); the rest of add -> completed, minus add(), is Redis and BullMQ.
    runMs.push(done.finishedOn - done.processedOn);
    queueOnly.push(total - (added - t) - (done.finishedOn - done.processedOn));
  }
  // The job's own file work without Redis or storage (what an in-process run that reads its
  // input and writes the same artifacts also pays): decode the input, gzip the float32 mask,
  // render and encode the preview.
  const direct = [];
  for (let i = 0; i < Math.min(jobs, 10); i++) {
    const t = performance.now();
    const { volume: decoded } = await readNifti(bytes);
    await gzipAsync(encodeNifti(mask), { level: 1 });
    encodePng(renderPreview(decoded, [{ mask: mask.data, color: PREDICTION_COLOR }]));
    direct.push(performance.now() - t);
  }
  await worker.close();
  await events.close();
  await queue.close();
  const queueMs = stats(latencies);
  const fileWorkMs = stats(direct);
  return {
    inputBytes: bytes.length,
    addToCompletedMs: round(queueMs),
    addMs: round(stats(addMs)),
    workerRunMs: round(stats(runMs)),
    redisAndBullmqMs: round(stats(queueOnly)),
    fileWorkOnlyMs: round(fileWorkMs),
  };
}

function startWorker(name, redisUrl, dataDir, threads, prefix) {
  const child = spawn(process.execPath, [CLI, 'worker', '--queue', redisUrl, '--data-dir', dataDir, '--backend', 'onnxruntime', '--threads', String(threads), '--name', name, '--prefix', prefix], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise((resolve) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      if (out.includes('"event":"ready"')) resolve();
    });
  });
  return { child, ready };
}

/** Jobs per minute for `workers` worker processes with `threads` each. */
async function throughput(redisUrl, dataDir, bytes, jobs, workers, threads, prefix) {
  const storage = new DirectoryStorage(dataDir);
  const queue = createSegmentationQueue({ connection: redisUrl, storage, prefix });
  const events = new QueueEvents(QUEUE_NAME, { connection: { url: redisUrl }, prefix });
  await events.waitUntilReady();
  const procs = Array.from({ length: workers }, (_, i) => startWorker(`bench-w${i}`, redisUrl, dataDir, threads, prefix));
  await Promise.all(procs.map((p) => p.ready));
  // One warm-up job per worker (first-run costs), not timed.
  const warm = [];
  for (let i = 0; i < workers; i++) warm.push((await queue.add(bytes)).id);
  await Promise.all(warm.map(async (id) => (await queue.queue.getJob(id)).waitUntilFinished(events, 300_000)));
  const t = performance.now();
  const ids = [];
  for (let i = 0; i < jobs; i++) ids.push((await queue.add(bytes)).id);
  await Promise.all(ids.map(async (id) => (await queue.queue.getJob(id)).waitUntilFinished(events, 600_000)));
  const seconds = (performance.now() - t) / 1000;
  for (const p of procs) p.child.kill('SIGTERM');
  await Promise.all(procs.map((p) => once(p.child, 'exit')));
  await events.close();
  await queue.close();
  return { workers, threadsPerWorker: threads, jobs, seconds: Math.round(seconds * 10) / 10, jobsPerMinute: Math.round((jobs / seconds) * 60 * 10) / 10 };
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-queue-bench-'));
const redis = await startRedis(tmp);
try {
  const jobs = Number(values.jobs);
  const overheadJobs = Number(values['overhead-jobs']);
  const tiny = makePhantom({ shape: [16, 16, 8], spacingMm: [3, 3, 8], seed: 1 }).image;
  const ct = makePhantom({ shape: [256, 256, 60], spacingMm: [0.8, 0.8, 5], seed: 1 }).image;
  const small = makePhantom({ shape: [64, 56, 16], spacingMm: [2.5, 2.5, 6], seed: 11 }).image;
  const smallBytes = encodeNifti(small, { datatype: 'int16' });

  // In-process reference for the small CT: the same Segmenter work without any queue.
  const segmenter = await Segmenter.create({ backend: 'onnxruntime', threads: 1 });
  const volume = (await readNifti(smallBytes)).volume;
  await segmenter.segment(volume);
  const inProcess = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await segmenter.segment((await readNifti(smallBytes)).volume);
    inProcess.push(performance.now() - t);
  }
  await segmenter.close();

  const report = {
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, model: os.cpus()[0]?.model, note: 'shared, busy 2-core VM: rough numbers' },
    overheadTiny: await queueOverhead(redis.url, path.join(tmp, 'data'), tiny, overheadJobs, 'ovt'),
    overheadCt256x256x60: await queueOverhead(redis.url, path.join(tmp, 'data'), ct, Math.max(10, overheadJobs >> 2), 'ovc'),
    smallCtInProcessMs: round(stats(inProcess)),
    throughput: values['skip-throughput'] ? [] : [
      await throughput(redis.url, path.join(tmp, 'data'), smallBytes, jobs, 1, 2, 'tp12'),
      await throughput(redis.url, path.join(tmp, 'data'), smallBytes, jobs, 1, 1, 'tp11'),
      await throughput(redis.url, path.join(tmp, 'data'), smallBytes, jobs, 2, 1, 'tp21'),
    ],
  };
  const text = `${JSON.stringify(report, null, 2)}\n`;
  process.stdout.write(text);
  mkdirSync(path.dirname(values.out), { recursive: true });
  writeFileSync(values.out, text);
} finally {
  redis.child.kill('SIGTERM');
  await once(redis.child, 'exit');
  rmSync(tmp, { recursive: true, force: true });
}
