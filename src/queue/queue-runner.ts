/**
 * The service's JobRunner when jobs run on queue workers (`spleen-trt serve --queue`): the routes
 * stay as they are; submit stores the input in shared storage and enqueues it, status reads the
 * job's state from Redis and its result from shared storage.
 *
 * The service keeps each job's record (job.json in its data directory, as the in-process runner
 * does) for what Redis does not hold: the input's geometry, and the final state once BullMQ has
 * removed the finished job (a day after completion, a week after failure).
 */
import { readFile, stat } from 'node:fs/promises';
import { Gauge, Counter, type Registry } from 'prom-client';
import { QueueEvents } from 'bullmq';
import { isSpleenTrtError } from '../index.js';
import { newJobId } from '../server/job-id.js';
import { ARTIFACT_NAMES, isFinished, type ArtifactName, type JobRecord, type JobState } from '../server/job-record.js';
import { newJobRecord, type JobRunner, type RunnerObserver, type RunnerStats, type SubmitInput } from '../server/job-runner.js';
import { inputFileKind, type JobStore } from '../server/job-store.js';
import type { RetentionOptions } from '../server/server-options.js';
import { ServiceError, type ResponseErrorCode } from '../server/service-error.js';
import { isValidJobId, QUEUE_NAME } from './contract.js';
import { producerConnection } from './connection.js';
import type { SegmentationJobStatus, SegmentationQueue } from './segmentation-queue.js';
import type { DirectoryStorage } from './shared-storage.js';

export interface QueueRunnerOptions {
  /** The producer; its storage must be a DirectoryStorage (the routes stream artifacts from files). */
  queue: SegmentationQueue;
  storage: DirectoryStorage;
  store: JobStore;
  /** Finished jobs are deleted (record, input, result, Redis entry) this long after they finish. */
  retention?: Pick<RetentionOptions, 'maxAgeMs'>;
  observer?: RunnerObserver;
  /** Where the queue's gauges go (the service's registry). */
  registry?: Registry;
  /** Redis URL for the stalled-job event stream (the queue's own connection target). */
  connection?: string;
  log?: { warn(obj: object, msg: string): void };
}

const POLL_MS = 250;
const COUNTS_REFRESH_MS = 1000;
/** How long DELETE waits for a running job's worker to notice the cancel. */
const CANCEL_WAIT_MS = 15_000;

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

export class QueueRunner implements JobRunner {
  readonly #options: QueueRunnerOptions;
  readonly #records = new Map<string, JobRecord>();
  #counts = { queued: 0, running: 0 };
  #accepting = true;
  #timer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #events: QueueEvents | undefined;
  #meanRunS = 30;

  private constructor(options: QueueRunnerOptions) {
    this.#options = options;
  }

  /** Opens the store, loads the records of earlier jobs, starts refreshing the queue counts. */
  static async open(options: QueueRunnerOptions): Promise<QueueRunner> {
    const runner = new QueueRunner(options);
    await options.store.open();
    for (const record of await options.store.list()) runner.#records.set(record.id, record);
    runner.#timer = setInterval(() => void runner.#refreshCounts(), COUNTS_REFRESH_MS);
    runner.#timer.unref();
    await runner.#refreshCounts();
    if (options.registry) runner.#registerMetrics(options.registry);
    const maxAgeMs = options.retention?.maxAgeMs;
    if (maxAgeMs !== undefined) {
      runner.#sweepTimer = setInterval(() => void runner.sweep(maxAgeMs).catch(() => undefined), Math.min(60_000, Math.max(1000, Math.floor(maxAgeMs / 4))));
      runner.#sweepTimer.unref();
    }
    return runner;
  }

  /**
   * Deletes jobs finished more than `maxAgeMs` ago: record, input, result and Redis entry.
   * Unfinished records are refreshed from the queue first (a job nobody polled may have ended).
   */
  async sweep(maxAgeMs: number): Promise<void> {
    const now = Date.now();
    for (const id of [...this.#records.keys()]) {
      const record = isFinished(this.#records.get(id)!.state) ? this.#records.get(id) : await this.status(id);
      if (!record || !isFinished(record.state)) continue;
      if (now - Date.parse(record.finishedAt ?? record.createdAt) <= maxAgeMs) continue;
      // The record last: a client that gets 404 finds nothing left (input, result, Redis entry),
      // and a removal that fails leaves the record for the next sweep to try again.
      await this.#options.queue.forget(id);
      await this.#options.store.remove(id);
      this.#records.delete(id);
    }
  }

  async #refreshCounts(): Promise<void> {
    try {
      const c = await this.#options.queue.counts();
      this.#counts = { queued: c.waiting + c.prioritized + c.delayed, running: c.active };
    } catch {
      // Redis down: keep the last counts; submissions fail with 503 on their own.
    }
  }

  #registerMetrics(registry: Registry): void {
    const queue = this.#options.queue;
    new Gauge({
      name: 'spleen_trt_queue_jobs',
      help: 'Jobs in the Redis queue by state (all workers), read at scrape time',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        try {
          const counts = await queue.counts();
          for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
        } catch {
          // Redis down: the scrape still answers; the gauges keep their last values.
        }
      },
    });
    const stalled = new Counter({
      name: 'spleen_trt_queue_stalled_total',
      help: 'Jobs found stalled (their worker died or lost its lock) and moved back to waiting',
      registers: [registry],
    });
    if (this.#options.connection) {
      this.#events = new QueueEvents(QUEUE_NAME, { connection: producerConnection(this.#options.connection), prefix: queue.prefix });
      this.#events.on('stalled', () => stalled.inc());
      this.#events.on('error', () => undefined);
    }
  }

  stats(): RunnerStats {
    return { ...this.#counts, accepting: this.#accepting };
  }

  retryAfterS(): number {
    const workers = Math.max(1, this.#counts.running);
    return Math.min(3600, Math.max(1, Math.ceil((this.#meanRunS * (this.#counts.queued + 1)) / workers)));
  }

  async submit(input: SubmitInput): Promise<JobRecord> {
    if (!this.#accepting) throw new ServiceError('ERR_SHUTTING_DOWN', 'The server is shutting down', { retryAfterS: 5 });
    const { upload } = input;
    let id = newJobId();
    while (!isValidJobId(id)) id = newJobId(); // BullMQ refuses all-digit ids
    const record = newJobRecord(id, input);
    const bytes = await readFile(upload.path);
    // The record first, so a status request right after the answer finds the job.
    await this.#options.store.create(record, upload.path, inputFileKind(upload));
    await this.#options.store.removeInput(id);
    this.#records.set(id, record);
    try {
      await this.#options.queue.add(bytes, { jobId: id, clientId: input.clientId, priority: input.priority, reqId: input.reqId, probability: input.probability });
    } catch (error) {
      this.#records.delete(id);
      await this.#options.store.remove(id);
      if (isSpleenTrtError(error, 'ERR_QUEUE_FULL')) throw new ServiceError('ERR_QUEUE_FULL', error.message, { retryAfterS: this.retryAfterS() });
      throw error;
    }
    this.#counts.queued++;
    return (await this.status(id)) ?? record;
  }

  /** The record updated from the queue's view of the job. */
  #merge(record: JobRecord, live: SegmentationJobStatus): JobRecord {
    const out = structuredClone(record);
    out.state = this.#state(live);
    if (live.worker) out.worker = live.worker;
    if (live.startedAt) out.startedAt = iso(live.startedAt);
    if (isFinished(out.state) && live.finishedAt) out.finishedAt = iso(live.finishedAt);
    const progress = live.progress as JobRecord['progress'] | null;
    if (out.state === 'running' && progress && typeof progress === 'object' && 'stage' in progress) {
      out.progress = { stage: progress.stage, windowsDone: progress.windowsDone, windowsTotal: progress.windowsTotal };
    }
    if (live.result) {
      const s = live.result.summary;
      out.summary = { volumeMl: s.volumeMl, voxelCount: s.voxelCount, boundingBox: s.boundingBox, centroidMm: s.centroidMm, empty: s.empty };
      const t = live.result.timings;
      if (t) Object.assign(out.timings, { preprocessMs: t.preprocessMs, networkMs: t.networkMs, computeMs: t.computeMs, postprocessMs: t.postprocessMs });
      out.artifacts = (live.result.files ?? []).filter((name): name is ArtifactName => ARTIFACT_NAMES.includes(name as ArtifactName));
    }
    if (live.startedAt) out.timings.queueMs = live.startedAt - live.createdAt;
    if (isFinished(out.state) && live.finishedAt) out.timings.totalMs = live.finishedAt - live.createdAt;
    if (live.error) out.error = { code: live.error.code as ResponseErrorCode, message: live.error.message };
    return out;
  }

  #state(live: SegmentationJobStatus): JobState {
    switch (live.state) {
      case 'active':
        return 'running';
      case 'completed':
        return 'done';
      case 'failed':
        return live.error?.code === 'ERR_ABORTED' ? 'cancelled' : 'failed';
      default:
        return 'queued';
    }
  }

  async status(id: string): Promise<JobRecord | undefined> {
    const record = this.#records.get(id);
    if (!record) return undefined;
    if (isFinished(record.state)) return structuredClone(record);
    const live = await this.#options.queue.status(id);
    if (!live) return structuredClone(record);
    const merged = this.#merge(record, live);
    if (isFinished(merged.state)) {
      // Final: kept in job.json, which outlives the job in Redis; reported to the metrics once.
      this.#records.set(id, merged);
      // A finished job never runs again: its input can go (the result stays until retention).
      await this.#options.storage.removeInput(id).catch(() => undefined);
      await this.#options.store.save(merged).catch((error: unknown) => this.#options.log?.warn({ jobId: id, err: error }, 'could not save the job record'));
      if (live.result) this.#meanRunS = 0.7 * this.#meanRunS + 0.3 * (live.result.segmentMs / 1000);
      this.#options.observer?.finished?.(merged.state, merged.timings.totalMs ?? 0, merged.error?.code);
    }
    return merged;
  }

  async wait(id: string, ms: number): Promise<JobRecord | undefined> {
    const deadline = Date.now() + ms;
    let record = await this.status(id);
    while (record && !isFinished(record.state) && Date.now() < deadline && this.#accepting) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
      record = await this.status(id);
    }
    return record;
  }

  async artifact(id: string, name: ArtifactName): Promise<string | undefined> {
    const record = await this.status(id);
    if (!record || !record.artifacts.includes(name)) return undefined;
    const file = this.#options.storage.resultPath(id, name);
    return (await stat(file).catch(() => undefined)) ? file : undefined;
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    const record = await this.status(id);
    if (!record) return undefined;
    const outcome = await this.#options.queue.cancel(id);
    let final = record;
    if (outcome === 'cancelling') final = (await this.wait(id, CANCEL_WAIT_MS)) ?? record;
    if (outcome === 'removed' || !isFinished(final.state) || final.state === 'cancelled') {
      final = { ...final, state: 'cancelled', error: { code: 'ERR_ABORTED', message: 'Cancelled by the client' } };
    }
    this.#records.delete(id);
    await this.#options.queue.forget(id);
    await this.#options.store.remove(id);
    return final;
  }

  /** Stops accepting; the jobs stay in Redis for the workers. */
  async close(_graceMs: number): Promise<void> {
    this.#accepting = false;
    clearInterval(this.#timer);
    clearInterval(this.#sweepTimer);
    await this.#events?.close();
    await this.#options.queue.close();
  }
}
