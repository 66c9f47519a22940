/**
 * `spleen-trt serve --queue` with a `spleen-trt worker`, both as processes on a real Redis: the
 * same HTTP API as in process, the job run by the worker (named in the job's status), its mask
 * equal to an in-process run, the queue's counts in the service's /metrics, cancel, and 503 with
 * ERR_QUEUE_UNAVAILABLE while Redis is down.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNifti, makePhantom, readNifti, Segmenter } from '../../../src/index.js';
import { createSegmentationQueue } from '../../../src/queue/segmentation-queue.js';
import { DirectoryStorage } from '../../../src/queue/shared-storage.js';
import { redisAvailable, RedisServer } from '../../helpers/redis-server.js';
import { CLI, startCli, startServeQueue } from '../../helpers/start-cli.js';


const ct = makePhantom({ shape: [64, 56, 16], spacingMm: [2.5, 2.5, 6], seed: 21 }).image;
const ctBytes = encodeNifti(ct, { datatype: 'int16' });

describe.runIf(existsSync(CLI) && redisAvailable())('serve --queue with a worker process', () => {
  let redis: RedisServer;
  let base: string;
  const children: ChildProcess[] = [];
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-serve-queue-'));

  beforeAll(async () => {
    redis = await RedisServer.start();
    const served = await startServeQueue(redis.url, dataDir);
    children.push(served.child);
    base = served.base;
    const worker = await startCli(
      ['worker', '--queue', redis.url, '--data-dir', dataDir, '--name', 'gpu-node-7', '--backend', 'onnxruntime', '--threads', '1'],
      /"event":"ready"/,
    );
    children.push(worker.child);
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await redis?.destroy();
  });

  it('runs a submitted volume on the worker and serves its mask', async () => {
    const response = await fetch(`${base}/v1/segmentations?wait=60&priority=urgent`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: ctBytes,
    });
    expect(response.status).toBe(200);
    const job = (await response.json()) as { id: string; state: string; worker?: string; urls: Record<string, string>; summary?: { voxelCount: number } };
    expect(job.state).toBe('done');
    expect(job.worker).toBe('gpu-node-7');
    expect(Object.keys(job.urls).sort()).toEqual(['mask', 'preview', 'self']);

    const status = (await (await fetch(`${base}/v1/segmentations/${job.id}`)).json()) as { worker?: string; state: string };
    expect(status).toMatchObject({ state: 'done', worker: 'gpu-node-7' });

    const mask = await fetch(`${base}/v1/segmentations/${job.id}/mask`);
    expect(mask.status).toBe(200);
    const served = (await readNifti(new Uint8Array(await mask.arrayBuffer()))).volume;
    const segmenter = await Segmenter.create({ backend: 'onnxruntime', threads: 1 });
    try {
      const reference = (await segmenter.segment((await readNifti(ctBytes)).volume)).mask;
      expect(served.shape).toEqual(reference.shape);
      expect(Array.from(served.data)).toEqual(Array.from(reference.data));
      expect(job.summary?.voxelCount).toBe(reference.data.reduce((a, b) => a + b, 0));
    } finally {
      await segmenter.close();
    }
    expect((await fetch(`${base}/v1/segmentations/${job.id}/preview.png`)).status).toBe(200);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/spleen_trt_queue_jobs\{state="completed"\} 1/);
    expect(metrics).toMatch(/spleen_trt_queue_jobs\{state="waiting"\} 0/);
    expect(metrics).toMatch(/spleen_trt_queue_stalled_total 0/);

    const deleted = await fetch(`${base}/v1/segmentations/${job.id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    expect((await fetch(`${base}/v1/segmentations/${job.id}`)).status).toBe(404);
  });

  it('worker --devices starts one worker per device, each with its /metrics, and stops them all on SIGTERM', async () => {
    const parent = await startCli(
      ['worker', '--queue', redis.url, '--data-dir', dataDir, '--devices', '0,1', '--name', 'node-9', '--backend', 'onnxruntime', '--threads', '1', '--metrics-port', '0'],
      /"event":"ready".*\n(.|\n)*"event":"ready".*\n/,
    );
    children.push(parent.child);
    const ready = parent
      .output()
      .split('\n')
      .filter((line) => line.includes('"event":"ready"'))
      .map((line) => JSON.parse(line) as { worker: string; metricsPort: number });
    expect(ready.map((r) => r.worker).sort()).toEqual(['node-9-gpu0', 'node-9-gpu1']);
    for (const { metricsPort } of ready) {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(text).toMatch(/# TYPE spleen_trt_worker_jobs_total counter/);
      expect(text).toMatch(/spleen_trt_worker_lock_renewal_failures_total\{worker="node-9-gpu\d"\} 0/);
    }
    const exited = new Promise<number | null>((resolve) => parent.child.once('exit', (code) => resolve(code)));
    parent.child.kill('SIGTERM');
    expect(await exited, parent.output()).toBe(0);
    expect(parent.output().match(/"event":"stopped"/g)).toHaveLength(2);
  });

  it('deletes finished jobs after the retention time: record, input, result and Redis entry', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-retention-'));
    const service = await startCli(
      ['serve', '--queue', redis.url, '--queue-prefix', 'ret', '--data-dir', dir, '--port', '0', '--no-auth', '--log-level', 'warn', '--retention-h', '0.001'],
      /spleen-trt serve: (http:\/\/\S+)/,
    );
    children.push(service.child);
    const worker = await startCli(['worker', '--queue', redis.url, '--prefix', 'ret', '--data-dir', dir, '--backend', 'onnxruntime', '--threads', '1'], /"event":"ready"/);
    children.push(worker.child);
    const retBase = service.match[1];
    const response = await fetch(`${retBase}/v1/segmentations?wait=60`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: ctBytes });
    const job = (await response.json()) as { id: string; state: string };
    expect(job.state).toBe('done');
    expect(readdirSync(path.join(dir, 'inputs'))).toEqual([]); // a finished job's input goes at once
    expect(readdirSync(path.join(dir, 'results'))).toEqual([job.id]);
    // 3.6 s retention, swept every second: gone within a bounded wait.
    const deadline = Date.now() + 30_000;
    while ((await fetch(`${retBase}/v1/segmentations/${job.id}`)).status !== 404 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect((await fetch(`${retBase}/v1/segmentations/${job.id}`)).status).toBe(404);
    expect(readdirSync(path.join(dir, 'results'))).toEqual([]);
    expect(readdirSync(path.join(dir, 'jobs'))).toEqual([]);
    const queue = createSegmentationQueue({ connection: redis.url, storage: new DirectoryStorage(dir), prefix: 'ret' });
    try {
      expect(await queue.status(job.id)).toBeNull();
    } finally {
      await queue.close();
    }
    service.child.kill('SIGTERM');
    worker.child.kill('SIGTERM');
  });

  it('answers 503 with ERR_QUEUE_UNAVAILABLE while Redis is down', async () => {
    await redis.stop();
    const response = await fetch(`${base}/v1/segmentations`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: ctBytes });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).not.toBeNull();
    expect(((await response.json()) as { code: string }).code).toBe('ERR_QUEUE_UNAVAILABLE');
  });
});
