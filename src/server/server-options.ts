/**
 * Options of the segmentation service, their safe defaults and their checks. Every limit is an
 * option; the defaults suit one CPU or GPU process serving abdominal CTs.
 */
import { expectedRange, expectedType } from '../errors.js';
import type { Registry } from 'prom-client';
import type { SegModelInfo, SegmenterInfo, SegmentOptions, SegmentResult, Volume } from '../index.js';
import type { JobRunner, RunnerObserver } from './job-runner.js';
import type { JobStore } from './job-store.js';

/** What the service needs of a Segmenter (a real one, or a test double with the same contract). */
export interface SegmenterLike {
  /** What /readyz and the metrics name; with `serve --queue` the workers' backend is not known here. */
  readonly info: { readonly backend: SegmenterInfo['backend'] | 'queue'; readonly model: Pick<SegmenterInfo['model'], 'name'> };
  /** The model's name, version and warning, named as the algorithm of a DICOM SEG (a Segmenter's manifest). */
  readonly manifest?: SegModelInfo;
  segment(volume: Volume, options?: SegmentOptions): Promise<SegmentResult>;
  close(): Promise<void>;
}

export interface ServiceLimits {
  /** Largest upload in bytes (compressed size as sent); default 512 MiB. */
  maxUploadBytes: number;
  /** Most voxels a volume may have (from its header, before decompression); default 512^2 x 1024. */
  maxVoxels: number;
  /** Largest size of any one axis; default 2048. */
  maxDim: number;
  /** Most jobs accepted and not yet started, uploads in progress included; default 16. */
  maxQueue: number;
  /** Most uploads received and validated at once; default 4. */
  maxConcurrentUploads: number;
  /** Time limit of one job from start to result; default 10 min. */
  jobTimeoutMs: number;
  /** An upload that sends nothing for this long is dropped (408); default 30 s. */
  uploadIdleTimeoutMs: number;
  /** Longest `?wait=` in seconds; default 120. */
  maxWaitS: number;
}

export interface RetentionOptions {
  /** Finished jobs are deleted this long after they finish; default 24 h. */
  maxAgeMs: number;
  /** The data dir's jobs are kept under this many bytes (oldest finished deleted first); default 10 GiB. */
  maxBytes: number;
}

export type AuthOptions =
  /** Accepted bearer tokens, or a function returning the current ones (re-read on SIGHUP by the CLI). */
  | { tokens: readonly string[] | (() => readonly string[]) }
  /** No auth: only honoured for requests that arrive on a loopback address. */
  | false;

export interface SegmentationServiceOptions {
  /** One Segmenter per process, created before the server listens (model loading can take minutes). */
  segmenter: SegmenterLike;
  /** Where jobs and results live; created if missing. */
  dataDir: string;
  auth: AuthOptions;
  limits?: Partial<ServiceLimits>;
  retention?: Partial<RetentionOptions>;
  /** How long close() lets a running job finish before cancelling it; default 20 s. */
  shutdownGraceMs?: number;
  /** Origins allowed by CORS; CORS is off unless given. */
  corsOrigins?: readonly string[];
  /**
   * Runs the jobs somewhere else (queue workers: `spleen-trt serve --queue`); default an
   * in-process runner on `segmenter`.
   */
  createRunner?: (context: RunnerContext) => Promise<JobRunner>;
}

/** What the service hands a custom runner. */
export interface RunnerContext {
  store: JobStore;
  retention: RetentionOptions;
  observer: RunnerObserver;
  registry: Registry;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export const DEFAULT_LIMITS: ServiceLimits = {
  maxUploadBytes: 512 * 1024 * 1024,
  maxVoxels: 512 * 512 * 1024,
  maxDim: 2048,
  maxQueue: 16,
  maxConcurrentUploads: 4,
  jobTimeoutMs: 10 * 60_000,
  uploadIdleTimeoutMs: 30_000,
  maxWaitS: 120,
};

export const DEFAULT_RETENTION: RetentionOptions = { maxAgeMs: 24 * 3600_000, maxBytes: 10 * 1024 ** 3 };
export const DEFAULT_SHUTDOWN_GRACE_MS = 20_000;

function positiveInteger(value: unknown, name: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw expectedRange('a positive integer', name, value);
  return value as number;
}

export function resolveLimits(limits: Partial<ServiceLimits> | undefined): ServiceLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(limits ?? {})) {
    if (!(key in DEFAULT_LIMITS)) throw expectedType(`one of ${Object.keys(DEFAULT_LIMITS).join(', ')}`, 'limits key', key);
    if (value !== undefined) out[key as keyof ServiceLimits] = positiveInteger(value, `limits.${key}`);
  }
  return out;
}

export function resolveRetention(retention: Partial<RetentionOptions> | undefined): RetentionOptions {
  return {
    maxAgeMs: positiveInteger(retention?.maxAgeMs ?? DEFAULT_RETENTION.maxAgeMs, 'retention.maxAgeMs'),
    maxBytes: positiveInteger(retention?.maxBytes ?? DEFAULT_RETENTION.maxBytes, 'retention.maxBytes'),
  };
}
