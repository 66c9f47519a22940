/**
 * The scale-out proof, as the issue states it: a real redis-server with AOF persistence, the
 * service (`spleen-trt serve --queue`, jobs submitted over HTTP), and two `spleen-trt worker` processes with the real Segmenter (onnxruntime, 1 thread
 * each). One worker is killed with SIGKILL in the middle of a job, and Redis is restarted once
 * while jobs are still waiting. Every job must end completed exactly once (one 'completed' event
 * across both workers' logs, one result directory), none lost, and each mask voxel-equal to an
 * in-process Segmenter run on the same input.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNifti, makePhantom, readNifti, Segmenter, type Volume } from '../../../src/index.js';
import { createSegmentationQueue, type SegmentationQueue } from '../../../src/queue/segmentation-queue.js';
import { DirectoryStorage } from '../../../src/queue/shared-storage.js';
import { redisAvailable, RedisServer } from '../../helpers/redis-server.js';
import { CLI, startCli } from '../../helpers/start-cli.js';

const PREFIX = 'proof';

/** A spawned worker and the JSON events it printed. */
class WorkerProcess {
  readonly events: Array<Record<string, unknown>> = [];
  readonly child: ChildProcess;
  #stderr = '';
  #buffer = '';

  /** `readAhead`: SPLEEN_TRT_READ_AHEAD=1 (one job more taken, its input read while another runs). */
  constructor(name: string, redisUrl: string, dataDir: string, readAhead = false) {
    const env = { ...process.env };
    delete env.SPLEEN_TRT_READ_AHEAD;
    if (readAhead) env.SPLEEN_TRT_READ_AHEAD = '1';
    this.child = spawn(
      process.execPath,
      [
        CLI, 'worker', '--queue', redisUrl, '--data-dir', dataDir, '--prefix', PREFIX, '--name', name,
        '--backend', 'onnxruntime', '--threads', '1',
        // Short locks so the killed worker's job is found stalled within seconds.
        '--lock-duration-ms', '3000', '--stalled-interval-ms', '1000', '--shutdown-grace-ms', '5000',
        '--metrics-port', '0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env },
    );
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.#buffer += chunk.toString();
      const lines = this.#buffer.split('\n');
      this.#buffer = lines.pop()!;
      for (const line of lines) if (line.trim()) this.events.push(JSON.parse(line) as Record<string, unknown>);
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
  }

  get stderr(): string {
    return this.#stderr;
  }

  has(event: string, job?: string): boolean {
    return this.events.some((e) => e.event === event && (job === undefined || e.job === job));
  }

  count(event: string, job: string): number {
    return this.events.filter((e) => e.event === event && e.job === job).length;
  }

  exited(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve(this.child.exitCode);
    return new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }
}

async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// 64x56x16 at 2.5x2.5x6 mm: 4 windows after resampling, a second or two per job on one thread.
const inputs: Volume[] = [11, 12, 13].map((seed) => makePhantom({ shape: [64, 56, 16], spacingMm: [2.5, 2.5, 6], seed }).image);

describe.runIf(existsSync(CLI) && redisAvailable())('scale-out: two worker processes, SIGKILL and a Redis restart', () => {
  let redis: RedisServer;
  let queue: SegmentationQueue;
  const workers: WorkerProcess[] = [];
  const services: ChildProcess[] = [];
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-shared-'));

  let base: string;

  beforeAll(async () => {
    redis = await RedisServer.start();
    // The test's own producer only watches the queue (counts, states); jobs come in over HTTP.
    queue = createSegmentationQueue({ connection: redis.url, storage: new DirectoryStorage(dataDir), prefix: PREFIX });
    const service = await startCli(
      ['serve', '--queue', redis.url, '--queue-prefix', PREFIX, '--data-dir', dataDir, '--port', '0', '--no-auth', '--log-level', 'warn'],
      /spleen-trt serve: (http:\/\/\S+)/,
    );
    services.push(service.child);
    base = service.match[1];
  });
  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    for (const child of services) if (child.exitCode === null) child.kill('SIGKILL');
    await queue?.close();
    await redis?.destroy();
  });

  it('ends every job done exactly once, equal to an in-process run, none lost', async () => {
    const w1 = new WorkerProcess('w1', redis.url, dataDir);
    // w2 reads ahead (as a TensorRT worker does): the rules below hold for it too.
    const w2 = new WorkerProcess('w2', redis.url, dataDir, true);
    workers.push(w1, w2);
    await waitUntil(() => w1.has('ready') && w2.has('ready'), `both workers ready (stderr: ${w1.stderr}${w2.stderr})`, 60_000);
    expect(w1.events.find((e) => e.event === 'segmenter')?.readAhead).toBe(false);
    expect(w2.events.find((e) => e.event === 'segmenter')?.readAhead).toBe(true);

    const files = inputs.map((v) => encodeNifti(v, { datatype: 'int16' }));
    /** POST /v1/segmentations; the job id, or the HTTP status when refused. */
    const submit = async (input: number, priority = 'batch'): Promise<string | number> => {
      const response = await fetch(`${base}/v1/segmentations?priority=${priority}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: files[input],
      });
      return response.status === 202 ? ((await response.json()) as { id: string }).id : response.status;
    };
    const jobs: Array<{ id: string; input: number }> = [];
    for (let i = 0; i < 6; i++) {
      const id = await submit(i % 3, i === 4 ? 'urgent' : 'batch');
      expect(typeof id, `submission ${i}`).toBe('string');
      jobs.push({ id: id as string, input: i % 3 });
    }

    // SIGKILL w1 as soon as it is inside a job.
    await waitUntil(() => w1.has('start'), 'w1 to start a job', 60_000);
    const killedJob = w1.events.find((e) => e.event === 'start')!.job as string;
    w1.child.kill('SIGKILL');
    await w1.exited();

    // Restart Redis (same port, same AOF) while jobs are still waiting.
    await waitUntil(async () => (await queue.counts()).completed >= 2, 'two jobs done', 120_000);
    const before = await queue.counts();
    expect(before.waiting + before.prioritized + before.active).toBeGreaterThan(0);
    await redis.restart();

    // The service reconnects too: one more job after the restart (503 until it has).
    await waitUntil(
      async () => {
        const id = await submit(0);
        if (typeof id === 'number') {
          expect(id).toBe(503);
          return false;
        }
        jobs.push({ id, input: 0 });
        return true;
      },
      'the service to reach the restarted Redis',
      20_000,
    );

    await waitUntil(async () => (await queue.counts()).completed === jobs.length, 'all jobs completed', 180_000);

    // The killed worker's job ran again on w2, found stalled there; the service says so.
    const killed = await queue.status(killedJob);
    expect(killed?.state).toBe('completed');
    expect(killed?.attemptsStarted).toBeGreaterThanOrEqual(2);
    const killedView = (await (await fetch(`${base}/v1/segmentations/${killedJob}`)).json()) as { state: string; worker?: string };
    expect(killedView).toMatchObject({ state: 'done', worker: 'w2' });
    expect(w2.has('stalled', killedJob)).toBe(true);
    expect(w1.has('completed', killedJob)).toBe(false);

    // Exactly once: one 'completed' per job across both workers, one result directory each.
    const counts = await queue.counts();
    expect(counts).toMatchObject({ completed: jobs.length, failed: 0, waiting: 0, active: 0, prioritized: 0, delayed: 0 });
    for (const { id } of jobs) {
      expect(w1.count('completed', id) + w2.count('completed', id), id).toBe(1);
      expect((await queue.status(id))?.state).toBe('completed');
    }
    expect(readdirSync(path.join(dataDir, 'results')).sort()).toEqual(jobs.map((j) => j.id).sort());

    // Each result equals an in-process run (same backend, same threads) on the same input.
    const segmenter = await Segmenter.create({ backend: 'onnxruntime', threads: 1 });
    try {
      const references = [];
      for (const volume of inputs) references.push((await segmenter.segment((await readNifti(encodeNifti(volume, { datatype: 'int16' }))).volume)).mask);
      for (const { id, input } of jobs) {
        const response = await fetch(`${base}/v1/segmentations/${id}/mask`);
        expect(response.status, id).toBe(200);
        const { volume } = await readNifti(new Uint8Array(await response.arrayBuffer()));
        const reference = references[input];
        expect(volume.shape).toEqual(reference.shape);
        expect(Array.from(volume.affine)).toEqual(Array.from(reference.affine));
        let differing = 0;
        for (let i = 0; i < reference.data.length; i++) if (volume.data[i] !== reference.data[i]) differing++;
        expect(differing, id).toBe(0);
        expect(reference.data.some((v) => v === 1)).toBe(true); // a spleen was found, not an empty mask twice
      }
    } finally {
      await segmenter.close();
    }

    // w2 shuts down cleanly on SIGTERM.
    w2.child.kill('SIGTERM');
    expect(await w2.exited()).toBe(0);
    expect(w2.has('stopped')).toBe(true);
  });
});
