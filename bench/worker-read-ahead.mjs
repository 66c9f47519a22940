#!/usr/bin/env node
/**
 * What reading ahead buys a queue worker when the network runs on a GPU: a real Redis, the real
 * BullMQ worker (createSegmentationWorker) and shared storage, N jobs of the MSD-like 512x512x90
 * CT (.nii.gz), with readAhead off and on in alternating rounds. The Segmenter is the real
 * segmentVolume (every CPU stage as in production) around the benches' stand-in backend paced like
 * a GPU (bench/stand-in-backend.mjs: batches one after another, windows x --gpu-ms-per-window ms
 * each on a timer, no CPU; the bundle publishes ~2 ms per window for TensorRT fp16); its logits
 * are computed once, in a warm-up run. Runs are one at a time, in call order, as a Segmenter's are. Needs `npm run build` and
 * redis-server on PATH.
 *
 *   node bench/worker-read-ahead.mjs [--jobs 6] [--rounds 3] [--gpu-ms-per-window 2] [--size large|small]
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { QueueEvents } from 'bullmq';
import { PHANTOMS } from '../dist/bench/bench-worker.js';
import { makePhantom } from '../dist/index.js';
import { gzipNifti } from '../dist/nifti/write-nifti.js';
import { loadModel } from '../dist/model/load-model.js';
import { createSegmentationQueue, createSegmentationWorker, DirectoryStorage, QUEUE_NAME } from '../dist/queue/index.js';
import { segmentVolume } from '../dist/segment-volume.js';
import { startRedis } from './redis-server.mjs';
import { standInBackend } from './stand-in-backend.mjs';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '3' },
    'gpu-ms-per-window': { type: 'string', default: '2' },
    size: { type: 'string', default: 'large' },
  },
});
const jobs = Number(values.jobs);
const rounds = Number(values.rounds);
const msPerWindow = Number(values['gpu-ms-per-window']);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const tmp = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-read-ahead-'));
const redis = await startRedis(tmp);
try {
  const model = await loadModel();
  const backend = standInBackend({ gpuMsPerWindow: msPerWindow });
  // One run at a time, in call order, as a Segmenter runs them.
  let previous = Promise.resolve();
  const segmenter = {
    segment(volume, options = {}) {
      const run = previous.then(() => {
        backend.startRun();
        return segmentVolume(volume, backend, model.manifest.pipeline, { signal: options.signal });
      });
      previous = run.catch(() => undefined);
      return run;
    },
  };
  const phantom = makePhantom({ ...PHANTOMS[values.size], seed: 1 });
  const bytes = gzipNifti(phantom.image, { datatype: 'int16' });
  const storage = new DirectoryStorage(path.join(tmp, 'data'));
  const results = { off: [], on: [] };
  let prefixCount = 0;
  for (let r = 0; r <= rounds; r++) {
    for (const readAhead of [false, true]) {
      const prefix = `ra${++prefixCount}`;
      const queue = createSegmentationQueue({ connection: redis.url, storage, prefix });
      const events = new QueueEvents(QUEUE_NAME, { connection: { url: redis.url }, prefix });
      await events.waitUntilReady();
      const ids = [];
      for (let i = 0; i < (r === 0 ? 1 : jobs); i++) ids.push((await queue.add(bytes)).id);
      const worker = createSegmentationWorker({ connection: redis.url, storage, segmenter, prefix, readAhead });
      const t = performance.now();
      worker.start();
      await Promise.all(ids.map(async (id) => (await queue.queue.getJob(id)).waitUntilFinished(events, 300_000)));
      const ms = performance.now() - t;
      // Round 0 is the warm-up (the stand-in's logits, first-run costs).
      if (r > 0) results[readAhead ? 'on' : 'off'].push(ms / jobs);
      await worker.close();
      await events.close();
      await queue.close();
    }
  }
  const off = median(results.off);
  const on = median(results.on);
  console.log(JSON.stringify({
    date: new Date().toISOString(),
    size: values.size, shape: PHANTOMS[values.size].shape, inputBytes: bytes.length, jobs, rounds, gpuMsPerWindow: msPerWindow,
    loadavg: os.loadavg().map((x) => +x.toFixed(2)),
    msPerJob: { readAheadOff: +off.toFixed(1), readAheadOn: +on.toFixed(1), saved: +(off - on).toFixed(1) },
    perRound: { off: results.off.map((x) => +x.toFixed(1)), on: results.on.map((x) => +x.toFixed(1)) },
  }, null, 1));
} finally {
  redis.child.kill('SIGTERM');
  await once(redis.child, 'exit');
  rmSync(tmp, { recursive: true, force: true });
}
