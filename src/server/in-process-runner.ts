/**
 * The job runner for one process: one Segmenter, one volume in the backend at a time, a bounded
 * FIFO queue in front of it, a time limit per job, results in the JobStore. Uploads are received
 * and validated by the routes concurrently; only the segmentation is serialised here.
 *
 * Restart rule: jobs found queued or running in the data dir were interrupted by a crash or a
 * kill. They are reported failed with ERR_INTERRUPTED rather than re-run: a job that brought the
 * process down (out of memory, a native fault) would bring it down again at every start, and the
 * client, who still has the file, gets a definite answer and can resubmit it.
 */
import { rm } from 'node:fs/promises';
import { isSpleenTrtError, PREDICTION_COLOR, writeNifti, writePreviewPng, type SegmentResult } from '../index.js';
import { ARTIFACT_NAMES, isFinished, type ArtifactName, type JobRecord, type JobState } from './job-record.js';
import { newJobRecord, type JobRunner, type RunnerObserver, type RunnerStats, type SubmitInput } from './job-runner.js';
import type { JobStore } from './job-store.js';
import { newJobId } from './job-id.js';
import type { RetentionOptions, SegmenterLike } from './server-options.js';
import { describeFailure, ServiceError } from './service-error.js';
import { readUploadedInput, type ReadUploadLimits, type UploadedInput } from './upload/read-upload.js';
import { readAheadWanted } from '../io/read-ahead.js';
import type { UploadKind } from './upload/inspect-upload.js';
import { inputFileKind } from './job-store.js';
import { encodeDicomArtifacts, segModelInfo } from './dicom-artifacts.js';

interface Entry {
  record: JobRecord;
  kind: UploadKind;
  inputPath?: string;
  /** The decoded input, kept only for the job that runs next. */
  input?: UploadedInput;
  /** The input read ahead, while the job before this one was in the network (read-ahead.ts's rule). */
  prefetched?: Promise<{ ok: true; value: UploadedInput } | { ok: false; error: unknown }>;
  controller?: AbortController;
  /** Settles when the run of this job has ended (written or failed). */
  run?: Promise<void>;
  waiters: Set<() => void>;
  /** Bytes on disk once finished (retention). */
  bytes?: number;
  submittedAt: number;
}

export interface InProcessRunnerOptions {
  segmenter: SegmenterLike;
  store: JobStore;
  maxQueue: number;
  maxVoxels: number;
  jobTimeoutMs: number;
  retention: RetentionOptions;
  observer?: RunnerObserver;
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /**
   * Read the next queued job's input while the current job is in the network; default as `infer`
   * (read-ahead.ts): on with TensorRT, where the CPU is idle meanwhile, off with the CPU backends
   * (it only competes with them there), SPLEEN_TRT_READ_AHEAD=1/0 forcing it.
   */
  readAhead?: boolean;
  /** Reads a stored input (default readUploadedInput); for tests. */
  readInput?: (file: string, kind: UploadKind, limits: ReadUploadLimits) => Promise<UploadedInput>;
}

/** Why a run was aborted, carried as the AbortSignal's reason. */
type AbortReason = 'cancel' | 'timeout' | 'shutdown';

export class InProcessRunner implements JobRunner {
  readonly #options: InProcessRunnerOptions;
  readonly #readAhead: boolean;
  readonly #jobs = new Map<string, Entry>();
  readonly #queue: string[] = [];
  #running: Entry | undefined;
  #accepting = true;
  #sweepTimer: NodeJS.Timeout | undefined;
  /** Moving mean of job run times, for Retry-After (seconds). */
  #meanRunS = 30;

  private constructor(options: InProcessRunnerOptions) {
    this.#options = options;
    const { backend } = options.segmenter.info;
    this.#readAhead = options.readAhead ?? (backend !== 'queue' && readAheadWanted(backend));
  }

  /** Opens the store, reports interrupted jobs failed, and starts the retention sweep. */
  static async open(options: InProcessRunnerOptions): Promise<InProcessRunner> {
    const runner = new InProcessRunner(options);
    await options.store.open();
    for (const record of await options.store.list()) {
      const entry: Entry = { record, kind: 'nifti', waiters: new Set(), submittedAt: Date.parse(record.createdAt) };
      if (!isFinished(record.state)) {
        record.state = 'failed';
        record.error = {
          code: 'ERR_INTERRUPTED',
          message: 'The server stopped while this job was queued or running; submit the volume again',
        };
        record.finishedAt = new Date().toISOString();
        delete record.progress;
        await options.store.save(record);
        await options.store.removeInput(record.id);
      }
      entry.bytes = await options.store.size(record.id);
      runner.#jobs.set(record.id, entry);
    }
    await runner.sweep();
    const every = Math.min(60_000, Math.max(1000, Math.floor(options.retention.maxAgeMs / 4)));
    runner.#sweepTimer = setInterval(() => void runner.sweep().catch(() => undefined), every);
    runner.#sweepTimer.unref();
    return runner;
  }

  stats(): RunnerStats {
    return { queued: this.#queue.length, running: this.#running ? 1 : 0, accepting: this.#accepting };
  }

  retryAfterS(): number {
    return Math.min(3600, Math.max(1, Math.ceil(this.#meanRunS * (this.#queue.length + 1))));
  }

  async submit(input: SubmitInput): Promise<JobRecord> {
    if (!this.#accepting) throw new ServiceError('ERR_SHUTTING_DOWN', 'The server is shutting down', { retryAfterS: 5 });
    if (this.#queue.length >= this.#options.maxQueue) {
      throw new ServiceError('ERR_QUEUE_FULL', `The queue is full (${this.#options.maxQueue} jobs)`, { retryAfterS: this.retryAfterS() });
    }
    const { upload } = input;
    const record = newJobRecord(newJobId(), input);
    const inputPath = await this.#options.store.create(record, upload.path, inputFileKind(upload));
    // Keep the decoded volume only for a job that starts next: at most one waits in memory.
    const decoded = this.#queue.length === 0 && input.volume ? { volume: input.volume, series: input.series } : undefined;
    this.#jobs.set(record.id, { record, kind: upload.kind, inputPath, input: decoded, waiters: new Set(), submittedAt: performance.now() });
    this.#queue.push(record.id);
    this.#pump();
    this.#prefetchNext();
    return (await this.status(record.id))!;
  }

  async status(id: string): Promise<JobRecord | undefined> {
    const entry = this.#jobs.get(id);
    if (!entry) return undefined;
    const record = structuredClone(entry.record);
    if (record.state === 'queued') record.queuePosition = this.#queue.indexOf(id);
    return record;
  }

  async wait(id: string, ms: number): Promise<JobRecord | undefined> {
    const entry = this.#jobs.get(id);
    if (!entry) return undefined;
    if (!isFinished(entry.record.state) && ms > 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          entry.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        entry.waiters.add(done);
      });
    }
    return this.status(id);
  }

  async artifact(id: string, name: ArtifactName): Promise<string | undefined> {
    const entry = this.#jobs.get(id);
    if (!entry || !entry.record.artifacts.includes(name)) return undefined;
    return this.#options.store.artifactPath(id, name);
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    const entry = this.#jobs.get(id);
    if (!entry) return undefined;
    const queuedAt = this.#queue.indexOf(id);
    if (queuedAt >= 0) {
      this.#queue.splice(queuedAt, 1);
      this.#finish(entry, 'cancelled', { code: 'ERR_ABORTED', message: 'Cancelled by the client' });
    } else if (entry.record.state === 'running') {
      entry.controller?.abort('cancel' satisfies AbortReason);
      await entry.run;
    }
    // Gone from the map first: from now on the job is unknown, even while its folder is removed.
    this.#jobs.delete(id);
    await this.#options.store.remove(id);
    return structuredClone(entry.record);
  }

  async close(graceMs: number): Promise<void> {
    this.#accepting = false;
    clearInterval(this.#sweepTimer);
    for (const id of this.#queue.splice(0)) {
      const entry = this.#jobs.get(id);
      if (!entry) continue;
      this.#finish(entry, 'cancelled', { code: 'ERR_SHUTTING_DOWN', message: 'The server shut down before the job started' });
      await this.#persist(entry);
      await this.#options.store.removeInput(id);
    }
    const running = this.#running;
    if (running?.run) {
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([running.run, graceOver]);
      clearTimeout(timer);
      running.controller?.abort('shutdown' satisfies AbortReason);
      await running.run;
    }
  }

  /** Deletes finished jobs past their age, then the oldest finished ones while over the size cap. */
  async sweep(): Promise<void> {
    const { maxAgeMs, maxBytes } = this.#options.retention;
    const now = Date.now();
    const finished = [...this.#jobs.values()]
      .filter((e) => isFinished(e.record.state))
      .sort((a, b) => Date.parse(a.record.finishedAt ?? a.record.createdAt) - Date.parse(b.record.finishedAt ?? b.record.createdAt));
    let total = 0;
    for (const entry of this.#jobs.values()) total += entry.bytes ?? entry.record.input.bytes;
    for (const entry of finished) {
      const age = now - Date.parse(entry.record.finishedAt ?? entry.record.createdAt);
      if (age <= maxAgeMs && total <= maxBytes) continue;
      total -= entry.bytes ?? 0;
      // The record last: a client that gets 404 finds no files left.
      await this.#options.store.remove(entry.record.id);
      this.#jobs.delete(entry.record.id);
    }
  }

  #pump(): void {
    if (this.#running || !this.#accepting) return;
    const id = this.#queue.shift();
    if (id === undefined) return;
    const entry = this.#jobs.get(id);
    if (!entry) {
      this.#pump();
      return;
    }
    this.#running = entry;
    entry.run = this.#run(entry).finally(() => {
      this.#running = undefined;
      entry.input = undefined;
      entry.prefetched = undefined;
      this.#pump();
    });
  }

  #readInput(entry: Entry): Promise<UploadedInput> {
    const read = this.#options.readInput ?? readUploadedInput;
    return read(entry.inputPath!, entry.kind, { maxVoxels: this.#options.maxVoxels });
  }

  /**
   * Starts reading the input of the job that runs next while one runs, where read-ahead is on.
   * One volume ahead at most (only the head of the queue, and only when it has none yet); a failed
   * read is settled at once and reported at its job's turn, never as an unhandled rejection.
   */
  #prefetchNext(): void {
    if (!this.#readAhead || !this.#running) return;
    const next = this.#jobs.get(this.#queue[0] ?? '');
    if (!next || next.input || next.prefetched || !next.inputPath) return;
    next.prefetched = this.#readInput(next).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
  }

  async #run(entry: Entry): Promise<void> {
    const { store, segmenter, observer } = this.#options;
    const record = entry.record;
    const started = performance.now();
    record.state = 'running';
    record.startedAt = new Date().toISOString();
    record.timings.queueMs = started - entry.submittedAt;
    observer?.stage?.('queue', record.timings.queueMs / 1000);
    const controller = new AbortController();
    entry.controller = controller;
    const timer = setTimeout(() => controller.abort('timeout' satisfies AbortReason), this.#options.jobTimeoutMs);
    try {
      await store.save(record);
      let input = entry.input;
      const prefetched = entry.prefetched;
      entry.input = undefined;
      entry.prefetched = undefined;
      if (!input) {
        // What is left of a read started ahead, or the whole read.
        const t = performance.now();
        const settled = prefetched ? await prefetched : undefined;
        if (settled && !settled.ok) throw settled.error;
        input = settled ? settled.value : await this.#readInput(entry);
        record.timings.readMs = performance.now() - t;
        observer?.stage?.('read', record.timings.readMs / 1000);
      }
      const { volume } = input;
      // The next job's input is read while this one is in the network (where that pays).
      this.#prefetchNext();
      if (controller.signal.aborted) throw new Error('aborted before start');
      const result = await segmenter.segment(volume, {
        signal: controller.signal,
        keepStages: record.probability,
        onProgress: (p) => {
          record.progress = { stage: p.stage, windowsDone: p.windowsDone, windowsTotal: p.windowsTotal };
        },
      });
      const t = result.timings;
      Object.assign(record.timings, { preprocessMs: t.preprocessMs, networkMs: t.networkMs, computeMs: t.computeMs, postprocessMs: t.postprocessMs });
      observer?.stage?.('preprocess', t.preprocessMs / 1000);
      observer?.stage?.('network', t.networkMs / 1000);
      observer?.stage?.('postprocess', t.postprocessMs / 1000);
      const w = performance.now();
      await this.#writeArtifacts(entry, input, result);
      record.timings.writeMs = performance.now() - w;
      observer?.stage?.('write', record.timings.writeMs / 1000);
      const s = result.summary;
      record.summary = { volumeMl: s.volumeMl, voxelCount: s.voxelCount, boundingBox: s.boundingBox, centroidMm: s.centroidMm, empty: s.empty };
      this.#meanRunS = 0.7 * this.#meanRunS + 0.3 * ((performance.now() - started) / 1000);
      this.#finish(entry, 'done');
    } catch (error) {
      const reason = controller.signal.aborted ? (controller.signal.reason as AbortReason) : undefined;
      // Nothing half-made stays: a failed job keeps its record only.
      record.artifacts = [];
      for (const name of ARTIFACT_NAMES) await rm(store.artifactPath(record.id, name), { force: true });
      if (reason === 'cancel') this.#finish(entry, 'cancelled', { code: 'ERR_ABORTED', message: 'Cancelled by the client' });
      else if (reason === 'shutdown') this.#finish(entry, 'cancelled', { code: 'ERR_SHUTTING_DOWN', message: 'The server shut down while the job ran' });
      else if (reason === 'timeout') {
        this.#finish(entry, 'failed', { code: 'ERR_JOB_TIMEOUT', message: `The job ran longer than the limit of ${this.#options.jobTimeoutMs} ms` });
      } else {
        const failure = describeFailure(error);
        if (!isSpleenTrtError(error)) this.#options.log?.warn({ jobId: record.id, err: error }, 'job failed unexpectedly');
        this.#finish(entry, 'failed', { code: failure.code, message: failure.message });
      }
    } finally {
      clearTimeout(timer);
      entry.controller = undefined;
    }
    if (this.#jobs.has(record.id)) {
      await this.#persist(entry);
      await store.removeInput(record.id).catch(() => undefined);
      entry.bytes = await store.size(record.id);
      await this.sweep().catch(() => undefined);
    }
  }

  async #writeArtifacts(entry: Entry, input: UploadedInput, result: SegmentResult): Promise<void> {
    const { volume, series } = input;
    const { store } = this.#options;
    const id = entry.record.id;
    await writeNifti(store.artifactPath(id, 'mask.nii.gz'), result.mask);
    entry.record.artifacts.push('mask.nii.gz');
    await writePreviewPng(store.artifactPath(id, 'preview.png'), volume, [{ mask: result.mask.data, color: PREDICTION_COLOR }]);
    entry.record.artifacts.push('preview.png');
    if (entry.record.probability && result.stages) {
      await writeNifti(store.artifactPath(id, 'probability.nii.gz'), result.stages.probability);
      entry.record.artifacts.push('probability.nii.gz');
    }
    if (series) {
      const files = await encodeDicomArtifacts(series, result.mask, segModelInfo(this.#options.segmenter.manifest, this.#options.segmenter.info.model.name));
      for (const [name, bytes] of Object.entries(files) as [keyof typeof files, Uint8Array][]) {
        await store.writeArtifact(id, name, bytes);
        entry.record.artifacts.push(name);
      }
    }
  }

  #finish(entry: Entry, state: JobState, error?: JobRecord['error']): void {
    const record = entry.record;
    record.state = state;
    record.finishedAt = new Date().toISOString();
    record.timings.totalMs = performance.now() - entry.submittedAt;
    if (error) record.error = error;
    if (state !== 'done') delete record.progress;
    this.#options.observer?.finished?.(state, record.timings.totalMs, error?.code);
    for (const wake of entry.waiters) wake();
  }

  async #persist(entry: Entry): Promise<void> {
    if (!this.#jobs.has(entry.record.id)) return;
    try {
      await this.#options.store.save(entry.record);
    } catch (error) {
      this.#options.log?.warn({ jobId: entry.record.id, err: error }, 'could not save the job record');
    }
  }
}
