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
import {
  encodePng,
  DICOM_DEFAULT_MAX_VOXELS,
  isSpleenTrtError,
  PREDICTION_COLOR,
  readNifti,
  renderPreview,
  type SegmentProgress,
  type Segmenter,
  type Volume,
  type DicomSeries,
} from '../index.js';
import { gzipNiftiAsync } from '../nifti/index.js';
import { encodeDicomArtifacts, segModelInfo } from '../server/dicom-artifacts.js';
import { readDicomUpload } from '../server/upload/read-dicom-upload.js';
import { checkJobData, JOB_DATA_VERSION, type SegmentJobResult } from './contract.js';
import { isZipInput, RESULT_FILES, type JobStorage } from './shared-storage.js';

/** What a job needs of a Segmenter (tests pass a stand-in); the manifest names a DICOM SEG's algorithm. */
export type QueueSegmenter = Pick<Segmenter, 'segment'> & Partial<Pick<Segmenter, 'manifest'>>;

/**
 * The stored input as a volume: a NIfTI, or a zipped DICOM series read as the service read it
 * when it accepted the upload (same limits, same series chosen).
 */
async function readStoredInput(bytes: Uint8Array): Promise<{ volume: Volume; series?: DicomSeries }> {
  if (!isZipInput(bytes)) return { volume: (await readNifti(bytes)).volume };
  const series = await readDicomUpload(bytes, { maxVoxels: DICOM_DEFAULT_MAX_VOXELS });
  return { volume: series.volume, series };
}

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
  const probability = checked.data.probability === true;
  const bytes = await storage.getInput(checked.data.inputRef);
  const { volume, series } = await readStoredInput(bytes);
  const result = await segmenter.segment(volume, { signal: options.signal, onProgress: options.onProgress, keepStages: probability });
  // The service's artifacts, as its in-process runner writes them: the mask float32 {0, 1} as the
  // bundle writes it (the addon's run encoder where it loads, else zlib level 1: fast, and the mask
  // compresses well anyway), the preview PNG, and the foreground probability when asked for.
  const files: Record<string, Uint8Array | string> = {
    [RESULT_FILES.mask]: await gzipNiftiAsync(result.mask, { gzipLevel: 1 }),
    [RESULT_FILES.preview]: encodePng(renderPreview(volume, [{ mask: result.mask.data, color: PREDICTION_COLOR }])),
  };
  if (probability && result.stages) files[RESULT_FILES.probability] = await gzipNiftiAsync(result.stages.probability, { gzipLevel: 1 });
  if (series) {
    Object.assign(files, await encodeDicomArtifacts(series, result.mask, segModelInfo(segmenter.manifest, 'spleen-trt')));
  }
  const summary = { summary: result.summary, windowCount: result.windowCount, worker: options.worker, timings: result.timings };
  files[RESULT_FILES.summary] = `${JSON.stringify(summary, null, 2)}\n`;
  // The files are committed together: a reader sees all of them or none.
  const { ref, stored } = await storage.putResult(jobId, files);
  return {
    v: JOB_DATA_VERSION,
    resultRef: ref,
    summary: result.summary,
    windowCount: result.windowCount,
    worker: options.worker,
    segmentMs: result.timings.totalMs,
    timings: result.timings,
    files: Object.keys(files),
    stored,
  };
}

/** 'permanent': the same input fails the same way on every try; 'transient': another try may pass. */
export type FailureKind = 'permanent' | 'transient';

const PERMANENT_CODES: ReadonlySet<string> = new Set(['ERR_NIFTI_INVALID', 'ERR_DICOM_INVALID', 'ERR_DICOM_UNSUPPORTED', 'ERR_INPUT_TOO_LARGE', 'ERR_FILE_NOT_FOUND']);

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

/**
 * BullMQ's own reasons for failing a job whose worker kept dying under it (maxStalledCount,
 * maxStartedAttempts): one code, so a client can tell "the input killed the worker" from a
 * pipeline error.
 */
const WORKER_LOST = /^job (stalled|started) more than allowable limit$/;

/** Splits a failedReason made by toQueueError (or BullMQ) back into a code and a message. */
export function parseFailedReason(reason: string | undefined): { code: string; message: string } | undefined {
  if (!reason) return undefined;
  const match = /^(ERR_[A-Z0-9_]+): ([\s\S]*)$/.exec(reason);
  if (match) return { code: match[1], message: match[2] };
  if (WORKER_LOST.test(reason)) {
    return { code: 'ERR_WORKER_LOST', message: `The job's worker stopped while running it more often than allowed (${reason}); the input may crash the worker` };
  }
  return { code: 'ERR_UNEXPECTED', message: reason };
}
