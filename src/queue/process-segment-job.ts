/**
 * One segmentation job, without Redis: read the input from shared storage, segment it, commit the
 * mask and its summary. The worker wraps it; anything else that runs jobs (an in-process runner,
 * a test) can call it as it is.
 *
 * Failures are sorted once, here, by the package's error codes (design table "one error-code
 * table for HTTP and the queue"): a bad input fails the same way on every try, so it must fail
 * once (BullMQ's UnrecoverableError); everything else may pass on another try or another worker.
 */
import { UnrecoverableError } from 'bullmq';
import { encodeNifti, isSpleenTrtError, readNifti, type SegmentProgress, type Segmenter } from '../index.js';
import { checkJobData, JOB_DATA_VERSION, type SegmentJobResult } from './contract.js';
import { RESULT_FILES, type JobStorage } from './shared-storage.js';

/** What a job needs of a Segmenter (tests pass a stand-in). */
export type QueueSegmenter = Pick<Segmenter, 'segment'>;

export interface ProcessSegmentJobOptions {
  /** The worker's name, recorded in the result. */
  worker: string;
  signal?: AbortSignal;
  onProgress?: (progress: SegmentProgress) => void;
}

/** Runs job `jobId` with `data` (unchecked: it comes from Redis) and commits its result. */
export async function processSegmentJob(
  segmenter: QueueSegmenter,
  storage: JobStorage,
  jobId: string,
  data: unknown,
  options: ProcessSegmentJobOptions,
): Promise<SegmentJobResult> {
  const checked = checkJobData(data);
  if (!checked.ok) throw new TypeError(`Invalid job data: ${checked.reason}`);
  const bytes = await storage.getInput(checked.data.inputRef);
  const { volume } = await readNifti(bytes);
  const result = await segmenter.segment(volume, { signal: options.signal, onProgress: options.onProgress });
  // uint8 {0, 1}: a quarter of the bundle's float32 and the same voxels.
  const mask = encodeNifti(result.mask, { datatype: 'uint8', description: 'spleen-trt mask' });
  const summary = { summary: result.summary, windowCount: result.windowCount, worker: options.worker, timings: result.timings };
  // summary.json last in the listing only for readability: the directory is committed at once.
  const { ref, stored } = await storage.putResult(jobId, {
    [RESULT_FILES.mask]: mask,
    [RESULT_FILES.summary]: `${JSON.stringify(summary, null, 2)}\n`,
  });
  return {
    v: JOB_DATA_VERSION,
    resultRef: ref,
    summary: result.summary,
    windowCount: result.windowCount,
    worker: options.worker,
    segmentMs: result.timings.totalMs,
    stored,
  };
}

/** 'permanent': the same input fails the same way on every try; 'transient': another try may pass. */
export type FailureKind = 'permanent' | 'transient';

const PERMANENT_CODES: ReadonlySet<string> = new Set(['ERR_NIFTI_INVALID', 'ERR_FILE_NOT_FOUND']);

/** Sorts a job failure (ERR_ABORTED is the worker's to judge: a cancel or a shutdown). */
export function classifyJobFailure(error: unknown): FailureKind {
  if (isSpleenTrtError(error)) return PERMANENT_CODES.has(error.code) ? 'permanent' : 'transient';
  // Caller mistakes: invalid job data, a volume the Segmenter rejects.
  if (error instanceof TypeError || error instanceof RangeError) return 'permanent';
  return 'transient';
}

/** The failure's code for the job's failedReason: the package's code, or ERR_UNEXPECTED. */
export function failureCode(error: unknown): string {
  if (isSpleenTrtError(error)) return error.code;
  if (error instanceof TypeError || error instanceof RangeError) return 'ERR_INVALID_JOB';
  return 'ERR_UNEXPECTED';
}

/**
 * The error to throw to BullMQ: `<code>: <message>` (the job's failedReason, which producers parse
 * back into a code), as UnrecoverableError when a retry cannot help.
 */
export function toQueueError(error: unknown): Error {
  const message = `${failureCode(error)}: ${error instanceof Error ? error.message : String(error)}`;
  return classifyJobFailure(error) === 'permanent' ? new UnrecoverableError(message) : new Error(message, { cause: error });
}

/** Splits a failedReason made by toQueueError back into its code and message. */
export function parseFailedReason(reason: string | undefined): { code: string; message: string } | undefined {
  if (!reason) return undefined;
  const match = /^(ERR_[A-Z0-9_]+): ([\s\S]*)$/.exec(reason);
  return match ? { code: match[1], message: match[2] } : { code: 'ERR_UNEXPECTED', message: reason };
}
