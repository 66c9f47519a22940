/**
 * What producers and workers agree on: the queue's name, the job's data and result. Job data is
 * stored in Redis in clear text, so it carries references only (a storage key, a request id, a
 * client id): never voxels, file names from the hospital, or anything else about a patient.
 * `v` is the contract version; a worker refuses data of a version it does not know (fails once,
 * not `attempts` times), so producers and workers can be upgraded one after the other.
 */
import type { MaskSummary, SegmentTimings } from '../index.js';

/** The BullMQ queue every producer and worker of this package uses (a prefix separates deployments). */
export const QUEUE_NAME = 'spleen-trt-segment';
/** The one job name on that queue. */
export const JOB_NAME = 'segment';
/** Version of SegmentJobData / SegmentJobResult. */
export const JOB_DATA_VERSION = 1;

/**
 * BullMQ priorities: lower runs first; 0 (none) would run ahead of every prioritized job, so both
 * classes are explicit. An urgent study overtakes every waiting batch job, never a running one.
 */
export const PRIORITY = { urgent: 1, batch: 10 } as const;
export type PriorityClass = keyof typeof PRIORITY;

/** The job's data in Redis. */
export interface SegmentJobData {
  v: typeof JOB_DATA_VERSION;
  /** The input NIfTI's key in shared storage. */
  inputRef: string;
  /** Who submitted it (token or client name; the per-client cap counts by it). */
  clientId: string;
  /** The HTTP request id or another correlation id, for logs. */
  reqId?: string;
  /** Also store the foreground probability map. */
  probability?: boolean;
  submittedAt: number;
}

/** A finished job's return value in Redis: where the result is, and its summary. */
export interface SegmentJobResult {
  v: typeof JOB_DATA_VERSION;
  /** The result directory's key in shared storage (mask.nii.gz, preview.png, summary.json...). */
  resultRef: string;
  summary: MaskSummary;
  windowCount: number;
  /** The worker that ran it (its BullMQ worker name). */
  worker: string;
  segmentMs: number;
  timings: SegmentTimings;
  /** The result's files in storage. */
  files: string[];
  /** False when another run of the same job had already stored its (equal) result first. */
  stored: boolean;
}

/** Job ids: BullMQ forbids ':' and all-digit ids; ours are 'seg-' + a UUID unless given. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** True when `id` can be a job id (and a storage key component). */
export function isValidJobId(id: unknown): id is string {
  return typeof id === 'string' && JOB_ID_PATTERN.test(id) && !/^\d+$/.test(id);
}

/** Narrows untrusted job data to the contract, or returns why not. */
export function checkJobData(data: unknown): { ok: true; data: SegmentJobData } | { ok: false; reason: string } {
  if (typeof data !== 'object' || data === null) return { ok: false, reason: 'job data is not an object' };
  const d = data as Partial<SegmentJobData>;
  if (d.v !== JOB_DATA_VERSION) return { ok: false, reason: `job data version ${String(d.v)} is not ${JOB_DATA_VERSION}` };
  if (typeof d.inputRef !== 'string' || d.inputRef === '') return { ok: false, reason: 'job data has no inputRef' };
  if (typeof d.clientId !== 'string') return { ok: false, reason: 'job data has no clientId' };
  return { ok: true, data: d as SegmentJobData };
}
