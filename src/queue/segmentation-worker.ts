/**
 * A BullMQ worker around one Segmenter: takes segmentation jobs, runs processSegmentJob, and ends
 * each run in one of five ways (completed, failed, retried, handed back, cancelled).
 *
 * - Created paused (`autorun: false`): `start()` once the Segmenter exists, so no job is taken by
 *   a worker that cannot run it yet.
 * - Crash safety is BullMQ's: a worker holds a lock on its job and renews it every
 *   lockDuration / 2; when the worker dies the lock expires, another worker's stalled-job check
 *   moves the job back to waiting (at most `maxStalledCount` times, then it fails), and
 *   `maxStartedAttempts` bounds the starts of a job that keeps killing its worker.
 * - `close(graceMs)`: stops taking jobs, gives the running job `graceMs` to finish, then aborts it
 *   and hands it back to the queue (moveToWait, no attempt counted as failed) for another worker.
 * - Cancel of a running job from any producer: a Redis key the worker checks with each progress
 *   update (about once a second); BullMQ's own cancelJob reaches only jobs in this process.
 */
import os from 'node:os';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import { isSpleenTrtError, type SegmentProgress } from '../index.js';
import { QUEUE_NAME, type SegmentJobData, type SegmentJobResult } from './contract.js';
import type { EventEmitter } from 'node:events';
import { workerConnection, type RedisTarget } from './connection.js';
import { cancelKey } from './redis-keys.js';
import { processSegmentJob, toQueueError, type QueueSegmenter } from './process-segment-job.js';
import type { JobStorage } from './shared-storage.js';
import { WorkerMetrics, type JobOutcome } from './worker-metrics.js';

export interface SegmentationWorkerOptions {
  /** redis://host:port or ioredis options. */
  connection: RedisTarget;
  storage: JobStorage;
  /** One per process, created before the worker starts (a TensorRT engine may take minutes). */
  segmenter: QueueSegmenter;
  /** Shown as the job's worker in status and results; default `<hostname>-<pid>`. */
  name?: string;
  /** BullMQ key prefix (separates deployments on one Redis); default 'bull'. */
  prefix?: string;
  /** Jobs at once; default 1 (a Segmenter runs one volume at a time anyway). */
  concurrency?: number;
  /**
   * Take one job beyond `concurrency` and read its input while the others run; it then waits its
   * turn in the Segmenter's own queue (abortable: a shutdown hands it back, a cancel ends it).
   * Pays where the network runs on a GPU (the CPU idles meanwhile, so the next read and the last
   * job's artifacts come for free); with a CPU backend it only competes with the network. The
   * `worker` command turns it on with TensorRT (src/io/read-ahead.ts); default false. The cost:
   * the extra job waits in this worker while another, idle worker could have taken it.
   */
  readAhead?: boolean;
  /** Job lock in ms; default 30000. A dead worker's job waits about this long before it runs elsewhere. */
  lockDurationMs?: number;
  /** How often this worker looks for stalled jobs, ms; default 30000. */
  stalledIntervalMs?: number;
  /** Stalls a job may survive before it fails; default 1. */
  maxStalledCount?: number;
  /** Starts a job may have (stalls and hand-backs included) before it fails; default 5. */
  maxStartedAttempts?: number;
  /** How long `close()` lets a running job finish before handing it back, ms; default 25000. */
  shutdownGraceMs?: number;
  metrics?: WorkerMetrics;
  /** One line per event (start, completed, failed, handed back, stalled, Redis errors). */
  log?: (event: Record<string, unknown>) => void;
}

export interface SegmentationWorker {
  readonly name: string;
  readonly worker: Worker<SegmentJobData, SegmentJobResult>;
  readonly metrics: WorkerMetrics;
  /** Starts taking jobs. */
  start(): void;
  /** Stops taking jobs, lets the running ones finish within `graceMs`, hands back the rest. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

const SHUTDOWN = 'shutdown';
const CANCEL = 'cancel';
/** Progress writes and cancel checks at most this often (BullMQ guide: about once a second). */
const PROGRESS_INTERVAL_MS = 1000;

function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`Expected a positive integer for ${name} but received ${String(value)}`);
  return value;
}

/**
 * @example
 * const segmenter = await Segmenter.create();
 * const worker = createSegmentationWorker({ connection: 'redis://127.0.0.1:6379', storage: new DirectoryStorage('/mnt/jobs'), segmenter });
 * worker.start();
 * process.once('SIGTERM', () => worker.close().then(() => segmenter.close()));
 */
export function createSegmentationWorker(options: SegmentationWorkerOptions): SegmentationWorker {
  const name = options.name ?? `${os.hostname()}-${process.pid}`;
  const metrics = options.metrics ?? new WorkerMetrics({ worker: name });
  const log = options.log ?? (() => undefined);
  const prefix = options.prefix ?? 'bull';
  const graceDefault = options.shutdownGraceMs ?? 25_000;
  const { segmenter, storage } = options;

  const processor = async (job: Job<SegmentJobData, SegmentJobResult>, token?: string, signal?: AbortSignal): Promise<SegmentJobResult> => {
    const jobId = job.id as string;
    const startedAt = performance.now();
    const controller = new AbortController();
    // BullMQ's signal: cancelAllJobs(SHUTDOWN) from close(); the reason says which.
    const forward = (): void => controller.abort(signal?.reason ?? SHUTDOWN);
    if (signal?.aborted) forward();
    else signal?.addEventListener('abort', forward, { once: true });
    let lastProgress = 0;
    let checking = false;
    const onProgress = (progress: SegmentProgress): void => {
      const now = performance.now();
      if (now - lastProgress < PROGRESS_INTERVAL_MS && progress.stage !== 'done') return;
      lastProgress = now;
      job.updateProgress({ ...progress }).catch(() => undefined);
      if (checking) return;
      checking = true;
      worker.client
        .then((client) => client.get(cancelKey(prefix, jobId)))
        .then((found) => {
          if (found !== null) controller.abort(CANCEL);
        })
        .catch(() => undefined)
        .finally(() => {
          checking = false;
        });
    };
    const finish = (outcome: JobOutcome, extra: Record<string, unknown> = {}): void => {
      const seconds = (performance.now() - startedAt) / 1000;
      metrics.observe(outcome, seconds);
      log({ event: 'run-end', outcome, job: jobId, worker: name, seconds: Math.round(seconds * 1000) / 1000, ...extra });
    };

    log({ event: 'start', job: jobId, worker: name, attempt: job.attemptsStarted });
    try {
      const result = await processSegmentJob(segmenter, storage, jobId, job.data, { worker: name, signal: controller.signal, onProgress });
      finish('completed', { stored: result.stored });
      return result;
    } catch (error) {
      signal?.removeEventListener('abort', forward);
      if (controller.signal.aborted && isSpleenTrtError(error, 'ERR_ABORTED')) {
        if (controller.signal.reason === CANCEL) {
          finish('cancelled');
          throw new UnrecoverableError('ERR_ABORTED: cancelled by the client');
        }
        // Shutdown: back to waiting for another worker. WaitingError tells BullMQ the job was moved.
        await job.moveToWait(token);
        finish('handed_back');
        throw new WaitingError();
      }
      const queueError = toQueueError(error);
      const final = queueError instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      finish(final ? 'failed' : 'retried', { reason: queueError.message });
      throw queueError;
    }
  };

  const worker = new Worker<SegmentJobData, SegmentJobResult>(QUEUE_NAME, processor, {
    connection: workerConnection(options.connection),
    prefix,
    name,
    autorun: false,
    concurrency: positiveInteger(options.concurrency, 'concurrency', 1) + (options.readAhead === true ? 1 : 0),
    lockDuration: positiveInteger(options.lockDurationMs, 'lockDurationMs', 30_000),
    stalledInterval: positiveInteger(options.stalledIntervalMs, 'stalledIntervalMs', 30_000),
    maxStalledCount: options.maxStalledCount ?? 1,
    maxStartedAttempts: positiveInteger(options.maxStartedAttempts, 'maxStartedAttempts', 5),
  });
  // Without an 'error' listener a lost Redis connection would throw from an EventEmitter and end
  // the process; ioredis reconnects on its own.
  worker.on('error', (error) => log({ event: 'error', worker: name, message: error.message }));
  // Logged from BullMQ's events, after Redis has recorded the end: a run whose lock was lost
  // (its job stalled and went elsewhere) never logs 'completed'.
  worker.on('completed', (job) => log({ event: 'completed', job: job.id, worker: name }));
  worker.on('failed', (job, error) => log({ event: 'failed', job: job?.id, worker: name, reason: error.message, attemptsMade: job?.attemptsMade }));
  worker.on('stalled', (jobId) => {
    metrics.stalled.inc();
    log({ event: 'stalled', job: jobId, worker: name });
  });
  worker.on('lockRenewalFailed', (jobIds) => {
    metrics.lockRenewalFailures.inc(jobIds.length);
    log({ event: 'lock-renewal-failed', jobs: jobIds, worker: name });
  });

  let closing: Promise<void> | undefined;
  return {
    name,
    worker,
    metrics,
    start(): void {
      if (closing) throw new Error('The worker is closed');
      worker.run().catch((error: unknown) => log({ event: 'error', worker: name, message: String(error) }));
    },
    close(graceMs = graceDefault): Promise<void> {
      closing ??= (async () => {
        const timer = setTimeout(() => worker.cancelAllJobs(SHUTDOWN), graceMs);
        try {
          // close() stops intake at once and resolves when the running jobs have settled.
          await worker.close();
        } finally {
          clearTimeout(timer);
          swallowLateConnectionErrors(worker);
        }
      })();
      return closing;
    },
  };
}

/**
 * BullMQ 5's close() removes every listener of the worker's two Redis connections (its own and the
 * blocking one), but a socket that closes a moment later can still make one of them emit
 * "Connection is closed." as an 'error' event; with no listener left, Node turns that into an
 * uncaught exception and the process exits 1 after a clean shutdown (seen under CPU load in
 * `worker --devices` on SIGTERM). After close nothing is waiting on those connections, so a late
 * error is noise: give each a listener that drops it.
 */
function swallowLateConnectionErrors(worker: Worker): void {
  const internals = worker as unknown as { connection?: EventEmitter; blockingConnection?: EventEmitter };
  for (const connection of [internals.connection, internals.blockingConnection]) connection?.on('error', () => undefined);
}
