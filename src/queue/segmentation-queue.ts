/**
 * The producer side: a service stores the input in shared storage and enqueues a reference;
 * status, cancel and the result come back by job id.
 *
 * - Fails fast: while Redis is down, `add` rejects at once with ERR_QUEUE_UNAVAILABLE (HTTP 503)
 *   instead of waiting for a reconnect with the client's request open.
 * - Priorities: 'urgent' runs ahead of every waiting 'batch' job.
 * - Per-client cap: at most `maxQueuedPerClient` unfinished jobs per client id (ERR_QUEUE_FULL,
 *   HTTP 429). Counted in Redis by one script that also drops the ids of jobs that have finished
 *   or no longer exist, so a crashed producer or a removed job never leaks a slot.
 * - Jobs are kept a day after completion and a week after failure (bounded, BullMQ's auto-removal).
 */
import { randomUUID } from 'node:crypto';
import { Queue, type Job, type JobsOptions } from 'bullmq';
import { SpleenTrtError } from '../errors.js';
import {
  isValidJobId,
  JOB_DATA_VERSION,
  JOB_NAME,
  PRIORITY,
  QUEUE_NAME,
  type PriorityClass,
  type SegmentJobData,
  type SegmentJobResult,
} from './contract.js';
import { producerConnection, type RedisTarget } from './connection.js';
import { parseFailedReason } from './process-segment-job.js';
import { cancelKey, clientJobsKey, jobKey } from './redis-keys.js';
import type { JobStorage } from './shared-storage.js';

export interface SegmentationQueueOptions {
  connection: RedisTarget;
  storage: JobStorage;
  /** BullMQ key prefix; default 'bull'. Workers must use the same. */
  prefix?: string;
  /** Tries per job, the first included; default 3. A bad input fails after one. */
  attempts?: number;
  /** First retry delay in ms (exponential, with jitter); default 30000. */
  backoffMs?: number;
  /** Unfinished jobs one client may have; default 100. */
  maxQueuedPerClient?: number;
  /** How long a call waits for a first connection before ERR_QUEUE_UNAVAILABLE, ms; default 2000. */
  connectTimeoutMs?: number;
}

export interface AddSegmentationOptions {
  /** Who submits (token or client name): the per-client cap counts by it. Default 'anonymous'. */
  clientId?: string;
  /** Default 'batch'. */
  priority?: PriorityClass;
  /** Default 'seg-' + a UUID. */
  jobId?: string;
  /** Correlation id for logs (the HTTP request id). */
  reqId?: string;
  /** Also store the foreground probability map. */
  probability?: boolean;
}

export type SegmentationJobState = 'waiting' | 'prioritized' | 'delayed' | 'active' | 'completed' | 'failed' | 'waiting-children' | 'unknown';

export interface SegmentationJobStatus {
  id: string;
  state: SegmentationJobState;
  /** The last progress a worker reported ({stage, windowsDone, windowsTotal}), or null. */
  progress: unknown;
  /** Failed tries so far. */
  attemptsMade: number;
  /** Starts so far (a stalled or handed-back run counts). */
  attemptsStarted: number;
  /** The worker running it, or the one that ran it last. */
  worker?: string;
  result?: SegmentJobResult;
  error?: { code: string; message: string };
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
}

export type CancelOutcome = 'removed' | 'cancelling' | 'finished' | 'not-found';

/** Releases the client's slot ids of finished or vanished jobs, then takes one if under the cap. */
const RESERVE_SLOT = `
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local now = tonumber(ARGV[4])
for i = 1, #members, 2 do
  local key = ARGV[1] .. members[i]
  if redis.call('EXISTS', key) == 0 then
    -- A slot is taken before its job is added: give that a grace time before calling it vanished.
    if now - tonumber(members[i + 1]) > tonumber(ARGV[5]) then redis.call('ZREM', KEYS[1], members[i]) end
  elseif redis.call('HEXISTS', key, 'finishedOn') == 1 then
    redis.call('ZREM', KEYS[1], members[i])
  end
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], 604800000)
return redis.call('ZCARD', KEYS[1])
`;
const RELEASE_SLOT = `return redis.call('ZREM', KEYS[1], ARGV[1])`;
const SLOT_GRACE_MS = 60_000;

function unavailable(error: unknown): SpleenTrtError {
  return new SpleenTrtError('ERR_QUEUE_UNAVAILABLE', `The job queue (Redis) cannot be reached: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });
}

/**
 * @example
 * const queue = createSegmentationQueue({ connection: 'redis://127.0.0.1:6379', storage: new DirectoryStorage('/mnt/jobs') });
 * const { id } = await queue.add(await readFile('ct.nii.gz'), { priority: 'urgent', clientId: 'ward-3' });
 * console.log(await queue.status(id));
 */
export function createSegmentationQueue(options: SegmentationQueueOptions): SegmentationQueue {
  return new SegmentationQueue(options);
}

export class SegmentationQueue {
  readonly queue: Queue<SegmentJobData, SegmentJobResult>;
  readonly storage: JobStorage;
  readonly prefix: string;
  readonly #jobOptions: JobsOptions;
  readonly #maxQueuedPerClient: number;
  #lastError: Error | undefined;
  #scriptsDefined = false;
  readonly #connectTimeoutMs: number;

  constructor(options: SegmentationQueueOptions) {
    this.prefix = options.prefix ?? 'bull';
    this.storage = options.storage;
    const attempts = options.attempts ?? 3;
    if (!Number.isInteger(attempts) || attempts < 1) throw new RangeError(`Expected a positive integer for attempts but received ${String(attempts)}`);
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 2000;
    this.#maxQueuedPerClient = options.maxQueuedPerClient ?? 100;
    if (!Number.isInteger(this.#maxQueuedPerClient) || this.#maxQueuedPerClient < 1) {
      throw new RangeError(`Expected a positive integer for maxQueuedPerClient but received ${String(options.maxQueuedPerClient)}`);
    }
    this.#jobOptions = {
      attempts,
      backoff: { type: 'exponential', delay: options.backoffMs ?? 30_000, jitter: 0.5 },
      removeOnComplete: { age: 86_400, count: 10_000 },
      removeOnFail: { age: 7 * 86_400 },
    };
    this.queue = new Queue<SegmentJobData, SegmentJobResult>(QUEUE_NAME, { connection: producerConnection(options.connection), prefix: this.prefix });
    // Connection errors arrive as events; unlistened they would end the process.
    this.queue.on('error', (error) => {
      this.#lastError = error;
    });
  }

  /** The last Redis connection error seen (for health checks), if any. */
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  async #redis(): Promise<Awaited<Queue['client']>> {
    let client: Awaited<Queue['client']>;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Once connected, commands fail at once while Redis is down (no offline queue); before the
      // first connection BullMQ waits for it, so that wait is bounded here.
      client = await Promise.race([
        this.queue.client,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(this.#lastError ?? new Error('no connection yet')), this.#connectTimeoutMs);
        }),
      ]);
    } catch (error) {
      throw unavailable(error);
    } finally {
      clearTimeout(timer);
    }
    if (!this.#scriptsDefined) {
      client.defineCommand('spleenTrtReserveSlot', { numberOfKeys: 1, lua: RESERVE_SLOT });
      client.defineCommand('spleenTrtReleaseSlot', { numberOfKeys: 1, lua: RELEASE_SLOT });
      this.#scriptsDefined = true;
    }
    return client;
  }

  /**
   * Stores `input` (.nii or .nii.gz bytes) and enqueues it. ERR_QUEUE_FULL when the client has its
   * cap of unfinished jobs, ERR_QUEUE_UNAVAILABLE when Redis is down (nothing is left behind).
   */
  async add(input: Uint8Array, options: AddSegmentationOptions = {}): Promise<{ id: string }> {
    if (!(input instanceof Uint8Array)) throw new TypeError('Expected a Uint8Array for input');
    const id = options.jobId ?? `seg-${randomUUID()}`;
    if (!isValidJobId(id)) throw new TypeError(`Expected a job id (letters, digits, _ and -, not all digits) for jobId but received ${JSON.stringify(id)}`);
    const priorityClass = options.priority ?? 'batch';
    if (!(priorityClass in PRIORITY)) throw new TypeError(`Expected "urgent" or "batch" for priority but received ${JSON.stringify(priorityClass)}`);
    const clientId = options.clientId ?? 'anonymous';
    if (typeof clientId !== 'string' || clientId === '' || clientId.length > 200) throw new TypeError('Expected a non-empty string for clientId');

    const client = await this.#redis();
    const slotKey = clientJobsKey(this.prefix, clientId);
    let taken: unknown;
    try {
      taken = await client.runCommand('spleenTrtReserveSlot', [slotKey, jobKey(this.prefix, ''), id, this.#maxQueuedPerClient, Date.now(), SLOT_GRACE_MS]);
    } catch (error) {
      throw unavailable(error);
    }
    if (taken === -1) {
      throw new SpleenTrtError('ERR_QUEUE_FULL', `Client ${JSON.stringify(clientId)} already has ${this.#maxQueuedPerClient} unfinished jobs`);
    }
    const release = async (): Promise<void> => {
      await client.runCommand('spleenTrtReleaseSlot', [slotKey, id]).catch(() => undefined);
      await this.storage.remove(id).catch(() => undefined);
    };
    let inputRef: string;
    try {
      inputRef = await this.storage.putInput(id, input);
    } catch (error) {
      await release();
      throw error;
    }
    const data: SegmentJobData = { v: JOB_DATA_VERSION, inputRef, clientId, submittedAt: Date.now() };
    if (options.reqId !== undefined) data.reqId = options.reqId;
    if (options.probability) data.probability = true;
    try {
      await this.queue.add(JOB_NAME, data, { ...this.#jobOptions, jobId: id, priority: PRIORITY[priorityClass] });
    } catch (error) {
      await release();
      throw unavailable(error);
    }
    return { id };
  }

  async #job(id: string): Promise<Job<SegmentJobData, SegmentJobResult> | undefined> {
    if (!isValidJobId(id)) return undefined;
    await this.#redis();
    try {
      return await this.queue.getJob(id);
    } catch (error) {
      throw unavailable(error);
    }
  }

  /** The job's state, progress, worker and result or failure; null for an unknown id. */
  async status(id: string): Promise<SegmentationJobStatus | null> {
    if (!isValidJobId(id)) return null;
    await this.#redis();
    let state: string;
    try {
      // The state first, the job's fields after: a job read before it finished and a state read
      // after would say 'failed' without its reason.
      state = await this.queue.getJobState(id);
    } catch (error) {
      throw unavailable(error);
    }
    const job = await this.#job(id);
    if (!job || state === 'unknown') return null;
    const status: SegmentationJobStatus = {
      id,
      state: state as SegmentationJobState,
      progress: job.progress ?? null,
      attemptsMade: job.attemptsMade,
      attemptsStarted: job.attemptsStarted,
      createdAt: job.timestamp,
    };
    const worker = job.returnvalue?.worker ?? job.processedBy;
    if (worker) status.worker = worker;
    if (job.processedOn) status.startedAt = job.processedOn;
    if (job.finishedOn) status.finishedAt = job.finishedOn;
    if (state === 'completed' && job.returnvalue) status.result = job.returnvalue;
    if (state === 'failed') status.error = parseFailedReason(job.failedReason);
    return status;
  }

  /** A file of the job's committed result (mask.nii, summary.json), or null. */
  resultFile(id: string, name: string): Promise<Uint8Array | null> {
    if (!isValidJobId(id)) return Promise.resolve(null);
    return this.storage.getResultFile(id, name);
  }

  /**
   * Cancels a job: a queued one is removed with its input; a running one is asked to stop (its
   * worker checks about once a second, and the job then fails with ERR_ABORTED).
   */
  async cancel(id: string): Promise<CancelOutcome> {
    const job = await this.#job(id);
    if (!job) return 'not-found';
    try {
      const state = await job.getState();
      if (state === 'completed' || state === 'failed') return 'finished';
      if (state !== 'active') {
        try {
          await job.remove();
          await this.storage.remove(id);
          // Free the client's slot now rather than after the vanished-job grace time.
          const client = await this.#redis();
          await client.runCommand('spleenTrtReleaseSlot', [clientJobsKey(this.prefix, job.data.clientId), id]);
          return 'removed';
        } catch {
          // Taken by a worker between getState and remove: cancel it there.
        }
      }
      const client = await this.#redis();
      await client.set(cancelKey(this.prefix, id), '1', { EX: 86_400 });
      return 'cancelling';
    } catch (error) {
      if (error instanceof SpleenTrtError) throw error;
      throw unavailable(error);
    }
  }

  /** Deletes a finished (or never started) job from Redis and its files from storage. */
  async forget(id: string): Promise<void> {
    const job = await this.#job(id);
    if (job) {
      try {
        await job.remove();
      } catch (error) {
        throw unavailable(error);
      }
    }
    await this.storage.remove(id);
  }

  /** Jobs per state, for /metrics and health checks. */
  async counts(): Promise<Record<'waiting' | 'prioritized' | 'delayed' | 'active' | 'completed' | 'failed', number>> {
    await this.#redis();
    try {
      const counts = await this.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
      return {
        waiting: counts.waiting ?? 0,
        prioritized: counts.prioritized ?? 0,
        delayed: counts.delayed ?? 0,
        active: counts.active ?? 0,
        completed: counts.completed ?? 0,
        failed: counts.failed ?? 0,
      };
    } catch (error) {
      throw unavailable(error);
    }
  }

  /** Closes the Redis connection (jobs stay in Redis). */
  async close(): Promise<void> {
    await this.queue.close();
  }
}
