/**
 * The queue's rules on a real redis-server, with workers in this process and a stand-in
 * Segmenter whose behaviour each test sets (a failure, a long run): bad input fails once,
 * transient failures are retried a bounded number of times, shutdown hands the job back, urgent
 * jobs overtake batch jobs, the per-client cap, cancel, and a fast failure while Redis is down.
 * The real Segmenter in separate worker processes is in scale-out.test.ts.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeNifti, readNifti, SpleenTrtError, type SegmentOptions, type SegmentResult, type Volume } from '../../../src/index.js';
import { QUEUE_NAME } from '../../../src/queue/contract.js';
import type { QueueSegmenter } from '../../../src/queue/process-segment-job.js';
import { createSegmentationQueue, type SegmentationQueue, type SegmentationQueueOptions } from '../../../src/queue/segmentation-queue.js';
import { createSegmentationWorker, type SegmentationWorker, type SegmentationWorkerOptions } from '../../../src/queue/segmentation-worker.js';
import { DirectoryStorage } from '../../../src/queue/shared-storage.js';
import { freePort, redisAvailable, RedisServer } from '../../helpers/redis-server.js';
import { rejection } from '../../helpers/rejection.js';

const tiny: Volume = {
  data: Float32Array.from({ length: 4 * 4 * 3 }, (_, i) => (i % 3 === 0 ? 100 : -100)),
  shape: [4, 4, 3],
  spacingMm: [1, 1, 1],
  affine: Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
};
const tinyNifti = encodeNifti(tiny);

type Behaviour = (volume: Volume, options: SegmentOptions, call: number) => Promise<SegmentResult>;

/** The stand-in's mask: voxels above 0. */
function thresholdResult(volume: Volume): SegmentResult {
  const data = Uint8Array.from(volume.data, (v) => (v > 0 ? 1 : 0));
  const voxelCount = data.reduce((a, b) => a + b, 0);
  return {
    mask: { data, shape: volume.shape, spacingMm: volume.spacingMm, affine: volume.affine },
    summary: { voxelCount, volumeMl: voxelCount / 1000, boundingBox: null, centroidMm: null, empty: voxelCount === 0 },
    timings: { preprocessMs: 0, computeMs: 0, h2dMs: 0, d2hMs: 0, stitchMs: 0, networkMs: 0, postprocessMs: 0, totalMs: 1 },
    windowCount: 1,
  };
}

/** Runs until its signal aborts, reporting progress every 50 ms, then rejects as the Segmenter does. */
function untilAborted(volume: Volume, options: SegmentOptions): Promise<SegmentResult> {
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => options.onProgress?.({ stage: 'network', windowsDone: 0, windowsTotal: 1 }), 50);
    const stop = (): void => {
      clearInterval(timer);
      reject(new SpleenTrtError('ERR_ABORTED', 'The operation was aborted'));
    };
    if (options.signal?.aborted) stop();
    options.signal?.addEventListener('abort', stop, { once: true });
    // Bounded: a stand-in that is never aborted still ends.
    setTimeout(() => {
      clearInterval(timer);
      resolve(thresholdResult(volume));
    }, 20_000);
  });
}

function standIn(behaviour: Behaviour): QueueSegmenter & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    segment: (volume: Volume, options: SegmentOptions = {}) => {
      calls.push(String(volume.data[0]));
      return behaviour(volume, options, calls.length);
    },
  } as QueueSegmenter & { calls: string[] };
}

/**
 * A Segmenter stand-in that runs one volume at a time in call order, as the real one does, and
 * rejects a run aborted while it waits its turn with ERR_ABORTED (the real queue's rule). `body`
 * is the run itself.
 */
function serialStandIn(body: (volume: Volume, options: SegmentOptions) => Promise<SegmentResult>): QueueSegmenter {
  let previous: Promise<unknown> = Promise.resolve();
  return {
    segment: (volume: Volume, options: SegmentOptions = {}) => {
      const turn = previous;
      const run = new Promise<SegmentResult>((resolve, reject) => {
        const aborted = (): void => reject(new SpleenTrtError('ERR_ABORTED', 'The operation was aborted while queued'));
        if (options.signal?.aborted) return aborted();
        options.signal?.addEventListener('abort', aborted, { once: true });
        void turn.then(() => {
          options.signal?.removeEventListener('abort', aborted);
          if (options.signal?.aborted) return aborted();
          body(volume, options).then(resolve, reject);
        });
      });
      previous = run.catch(() => undefined);
      return run;
    },
  } as QueueSegmenter;
}

/** Shared storage that logs each input read into `events`. */
class RecordingStorage extends DirectoryStorage {
  constructor(root: string, readonly events: string[]) {
    super(root);
  }

  override async getInput(ref: string): Promise<Uint8Array> {
    this.events.push(`read ${path.basename(ref, '.nii')}`);
    return super.getInput(ref);
  }
}

async function waitFor<T>(probe: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.runIf(redisAvailable())('queue semantics on a real Redis', () => {
  let redis: RedisServer;
  let prefixCount = 0;
  const open: Array<{ close(): Promise<void> }> = [];
  const root = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-queue-'));
  const storage = new DirectoryStorage(root);

  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterEach(async () => {
    for (const item of open.splice(0).reverse()) await item.close();
  });
  afterAll(async () => {
    await redis?.destroy();
  });

  /** A producer and a worker factory on a prefix of their own (tests do not see each other's jobs). */
  function setup(queueOptions: Partial<SegmentationQueueOptions> = {}) {
    const prefix = `t${++prefixCount}`;
    const queue = createSegmentationQueue({ connection: redis.url, storage, prefix, backoffMs: 10, ...queueOptions });
    open.push(queue);
    const worker = (segmenter: QueueSegmenter, options: Partial<SegmentationWorkerOptions> = {}): SegmentationWorker => {
      const w = createSegmentationWorker({ connection: redis.url, storage, segmenter, prefix, lockDurationMs: 5000, ...options });
      open.push({ close: () => w.close(100) });
      return w;
    };
    const settled = (id: string) =>
      waitFor(async () => {
        const s = await queue.status(id);
        return s && (s.state === 'completed' || s.state === 'failed') ? s : undefined;
      }, `job ${id} to finish`);
    return { prefix, queue, worker, settled };
  }

  it('runs a job through shared storage, Redis holding references only, and names its worker', async () => {
    const { queue, worker, settled } = setup();
    const w = worker(standIn(async (v) => thresholdResult(v)), { name: 'worker-a' });
    w.start();
    const { id } = await queue.add(tinyNifti, { clientId: 'ward-1', reqId: 'req-1' });
    const status = await settled(id);
    expect(status.state).toBe('completed');
    expect(status.worker).toBe('worker-a');
    expect(status.result?.summary.voxelCount).toBe(16);
    const mask = await queue.resultFile(id, 'mask.nii.gz');
    expect(mask).not.toBeNull();
    const { volume: stored } = await readNifti(mask!);
    expect(Array.from(stored.data)).toEqual(Array.from(thresholdResult(tiny).mask.data));
    expect((await queue.resultFile(id, 'preview.png'))?.subarray(1, 4).toString()).toBe('PNG');
    expect(await queue.resultFile(id, 'probability.nii.gz')).toBeNull();
    // What Redis holds about the job: a storage key and ids, nothing of the volume.
    const client = await queue.queue.client;
    const data = JSON.parse((await client.hget(`${queue.prefix}:${QUEUE_NAME}:${id}`, 'data'))!);
    expect(Object.keys(data).sort()).toEqual(['clientId', 'inputRef', 'reqId', 'submittedAt', 'v']);
    expect(data.inputRef).toBe(`inputs/${id}.nii`);
    const completed = (await w.metrics.jobs.get()).values.find((v) => v.labels.outcome === 'completed');
    expect(completed?.value).toBe(1);
  });

  it('fails a bad input once, not `attempts` times, with the reason', async () => {
    const { queue, worker, settled } = setup({ attempts: 3 });
    const segmenter = standIn(async (v) => thresholdResult(v));
    worker(segmenter).start();
    const { id } = await queue.add(new TextEncoder().encode('this is not a NIfTI file at all, not even close to 348 bytes'));
    const status = await settled(id);
    expect(status.state).toBe('failed');
    expect(status.attemptsMade).toBe(1);
    expect(status.error?.code).toBe('ERR_NIFTI_INVALID');
    expect(segmenter.calls).toHaveLength(0);
  });

  it('retries a transient failure a bounded number of times, then fails with the reason', async () => {
    const { queue, worker, settled } = setup({ attempts: 3 });
    const segmenter = standIn(async () => {
      throw new SpleenTrtError('ERR_INFERENCE_FAILED', 'the backend failed');
    });
    const w = worker(segmenter);
    w.start();
    const { id } = await queue.add(tinyNifti);
    const status = await settled(id);
    expect(status.state).toBe('failed');
    expect(status.attemptsMade).toBe(3);
    expect(segmenter.calls).toHaveLength(3);
    expect(status.error).toEqual({ code: 'ERR_INFERENCE_FAILED', message: 'the backend failed' });
    const outcomes = Object.fromEntries((await w.metrics.jobs.get()).values.map((v) => [v.labels.outcome, v.value]));
    expect(outcomes).toEqual({ retried: 2, failed: 1 });
  });

  it('hands a running job back on shutdown; another worker finishes it', async () => {
    const { queue, worker, settled } = setup();
    const first = worker(standIn(untilAborted), { name: 'leaving' });
    first.start();
    const { id } = await queue.add(tinyNifti);
    await waitFor(async () => (await queue.status(id))?.state === 'active', 'the job to start');
    await first.close(200);
    const back = await queue.status(id);
    expect(['waiting', 'prioritized']).toContain(back?.state);
    expect(back?.attemptsMade).toBe(0);
    worker(standIn(async (v) => thresholdResult(v)), { name: 'staying' }).start();
    const status = await settled(id);
    expect(status.state).toBe('completed');
    expect(status.worker).toBe('staying');
    const handedBack = (await first.metrics.jobs.get()).values.find((v) => v.labels.outcome === 'handed_back');
    expect(handedBack?.value).toBe(1);
  });

  it('fails a job whose worker keeps dying under it, with ERR_WORKER_LOST', async () => {
    const { queue, worker, settled } = setup();
    // A worker that vanishes mid-job without a word (close(true): no hand-back, no lock renewal).
    const vanishing = worker(standIn(untilAborted), { lockDurationMs: 500, stalledIntervalMs: 300 });
    vanishing.start();
    const { id } = await queue.add(tinyNifti);
    await waitFor(async () => (await queue.status(id))?.state === 'active', 'the job to start');
    await vanishing.worker.close(true);
    // maxStalledCount 0: the first stall is one too many.
    const second = standIn(async (v) => thresholdResult(v));
    const watcher = worker(second, { lockDurationMs: 500, stalledIntervalMs: 300, maxStalledCount: 0 });
    watcher.start();
    const status = await settled(id);
    expect(status.state).toBe('failed');
    expect(status.error?.code).toBe('ERR_WORKER_LOST');
    expect(second.calls).toHaveLength(0); // failed where it stalled, not run again
    expect((await watcher.metrics.stalled.get()).values[0].value).toBe(1);
  });

  it('runs an urgent job ahead of waiting batch jobs', async () => {
    const { queue, worker, settled } = setup();
    const order: string[] = [];
    const ids: Record<string, string> = {};
    for (const name of ['batch-1', 'batch-2', 'batch-3']) ids[name] = (await queue.add(tinyNifti, { priority: 'batch', jobId: `p-${name}` })).id;
    ids.urgent = (await queue.add(tinyNifti, { priority: 'urgent', jobId: 'p-urgent' })).id;
    const w = worker(standIn(async (v) => thresholdResult(v)));
    w.worker.on('active', (job) => order.push(job.id as string));
    w.start();
    for (const id of Object.values(ids)) await settled(id);
    expect(order).toEqual(['p-urgent', 'p-batch-1', 'p-batch-2', 'p-batch-3']);
  });

  it('caps unfinished jobs per client and frees a slot when a job is cancelled or done', async () => {
    const { queue, worker, settled } = setup({ maxQueuedPerClient: 2 });
    const a = await queue.add(tinyNifti, { clientId: 'batch-robot' });
    await queue.add(tinyNifti, { clientId: 'batch-robot' });
    const full = await rejection(queue.add(tinyNifti, { clientId: 'batch-robot' }));
    expect(full.code).toBe('ERR_QUEUE_FULL');
    await queue.add(tinyNifti, { clientId: 'ward-2' }); // another client is not affected
    expect(await queue.cancel(a.id)).toBe('removed');
    expect(await queue.status(a.id)).toBeNull();
    expect((await rejection(storage.getInput(`inputs/${a.id}.nii`))).code).toBe('ERR_FILE_NOT_FOUND');
    const c = await queue.add(tinyNifti, { clientId: 'batch-robot' });
    expect((await rejection(queue.add(tinyNifti, { clientId: 'batch-robot' }))).code).toBe('ERR_QUEUE_FULL');
    worker(standIn(async (v) => thresholdResult(v))).start();
    await settled(c.id);
    await waitFor(async () => (await queue.counts()).waiting + (await queue.counts()).prioritized + (await queue.counts()).active === 0, 'the queue to drain');
    await queue.add(tinyNifti, { clientId: 'batch-robot' });
    await queue.add(tinyNifti, { clientId: 'batch-robot' });
  });

  it('cancels a running job from the producer', async () => {
    const { queue, worker, settled } = setup();
    worker(standIn(untilAborted)).start();
    const { id } = await queue.add(tinyNifti);
    await waitFor(async () => (await queue.status(id))?.state === 'active', 'the job to start');
    expect(await queue.cancel(id)).toBe('cancelling');
    const status = await settled(id);
    expect(status.state).toBe('failed');
    expect(status.error?.code, JSON.stringify(status)).toBe('ERR_ABORTED');
    expect(status.attemptsMade).toBe(1);
    expect(await queue.cancel(id)).toBe('finished');
  });

  /**
   * Two jobs, one worker; the first run waits (at most 1.5 s) until the second job's input has
   * been read. Returns the order of reads and runs.
   */
  async function readsAndRuns(readAhead: boolean): Promise<string[]> {
    const events: string[] = [];
    const prefix = `t${++prefixCount}`;
    const queue = createSegmentationQueue({ connection: redis.url, storage, prefix });
    open.push(queue);
    const a = await queue.add(tinyNifti, { jobId: 'ahead-1' });
    const b = await queue.add(tinyNifti, { jobId: 'ahead-2' });
    const segmenter = serialStandIn(async (volume) => {
      const run = events.includes('start ahead-1') ? 'ahead-2' : 'ahead-1';
      events.push(`start ${run}`);
      const deadline = Date.now() + 1500;
      while (run === 'ahead-1' && !events.includes('read ahead-2') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      events.push(`end ${run}`);
      return thresholdResult(volume);
    });
    const w = createSegmentationWorker({ connection: redis.url, storage: new RecordingStorage(root, events), segmenter, prefix, readAhead });
    open.push({ close: () => w.close(100) });
    w.start();
    for (const id of [a.id, b.id]) {
      await waitFor(async () => ['completed', 'failed'].includes((await queue.status(id))?.state ?? '') && true, `job ${id}`);
      expect((await queue.status(id))?.state).toBe('completed');
    }
    return events;
  }

  it('with readAhead reads the next input while a job runs; the runs stay one at a time', async () => {
    const events = await readsAndRuns(true);
    // The second input is read before the first run ends (whether before or after it starts is BullMQ's timing).
    expect(events.indexOf('read ahead-2')).toBeGreaterThan(events.indexOf('read ahead-1'));
    expect(events.indexOf('read ahead-2')).toBeLessThan(events.indexOf('end ahead-1'));
    expect(events.filter((e) => !e.startsWith('read'))).toEqual(['start ahead-1', 'end ahead-1', 'start ahead-2', 'end ahead-2']);
    const plain = await readsAndRuns(false);
    expect(plain).toEqual(['read ahead-1', 'start ahead-1', 'end ahead-1', 'read ahead-2', 'start ahead-2', 'end ahead-2']);
  });

  it('hands back both the running job and the one read ahead on shutdown', async () => {
    const { queue, worker } = setup();
    const w = worker(serialStandIn((volume, options) => untilAborted(volume, options)), { readAhead: true });
    w.start();
    const first = await queue.add(tinyNifti);
    const second = await queue.add(tinyNifti);
    await waitFor(async () => (await queue.status(second.id))?.state === 'active' && (await queue.status(first.id))?.state === 'active', 'both jobs to be taken');
    await w.close(200);
    for (const id of [first.id, second.id]) {
      const back = await queue.status(id);
      expect(['waiting', 'prioritized']).toContain(back?.state);
      expect(back?.attemptsMade).toBe(0);
    }
    const handedBack = (await w.metrics.jobs.get()).values.find((v) => v.labels.outcome === 'handed_back');
    expect(handedBack?.value).toBe(2);
  });

  it('fails fast with ERR_QUEUE_UNAVAILABLE while Redis is down, leaving no input behind', async () => {
    const port = await freePort(); // nothing listens there
    const queue = createSegmentationQueue({ connection: `redis://127.0.0.1:${port}`, storage });
    open.push(queue);
    const error = await rejection(queue.add(tinyNifti, { jobId: 'seg-offline' }));
    expect(error.code).toBe('ERR_QUEUE_UNAVAILABLE');
    expect((await rejection(queue.status('seg-offline'))).code).toBe('ERR_QUEUE_UNAVAILABLE');
    expect((await rejection(storage.getInput('inputs/seg-offline.nii'))).code).toBe('ERR_FILE_NOT_FOUND');
  });
});
