/**
 * What the routes need of whoever runs the jobs. The in-process runner (one Segmenter in this
 * process) implements it now; a runner that hands jobs to queue workers (Redis/BullMQ) can
 * replace it without touching a route.
 */
import type { DicomSeries, Volume } from '../index.js';
import type { ArtifactName, JobRecord, JobState } from './job-record.js';
import type { ReceivedUpload } from './upload/receive-upload.js';

export interface SubmitInput {
  upload: ReceivedUpload;
  /** The decoded volume when the caller already has it (spares a second read). */
  volume?: Volume;
  /** DICOM uploads: the series read (its UID goes in the record; the SEG references it). */
  series?: DicomSeries;
  /** Also write the foreground probability map. */
  probability: boolean;
  reqId?: string;
  validateMs: number;
  /** Who submits (a digest of the bearer token): queue runners cap unfinished jobs per client. */
  clientId?: string;
  /** 'urgent' runs ahead of waiting 'batch' jobs (queue runners; the in-process runner is FIFO). */
  priority?: 'urgent' | 'batch';
}

/** The record of a job just submitted (both runners start from it). */
export function newJobRecord(id: string, input: SubmitInput): JobRecord {
  const { upload } = input;
  const geometry =
    upload.kind === 'nifti'
      ? { shape: upload.shape, spacingMm: [upload.header.pixdim[1], upload.header.pixdim[2], upload.header.pixdim[3]].map(Math.abs) as [number, number, number] }
      : { shape: [...(input.volume?.shape ?? [0, 0, 0])] as [number, number, number], spacingMm: [...(input.volume?.spacingMm ?? [0, 0, 0])] as [number, number, number] };
  return {
    id,
    state: 'queued',
    createdAt: new Date().toISOString(),
    input: {
      format: upload.kind,
      bytes: upload.bytes,
      ...geometry,
      ...(input.series ? { seriesInstanceUid: input.series.seriesInstanceUid } : {}),
    },
    probability: input.probability,
    timings: { uploadMs: upload.receiveMs, validateMs: input.validateMs },
    artifacts: [],
    reqId: input.reqId,
  };
}

export interface RunnerStats {
  queued: number;
  running: number;
  accepting: boolean;
}

/** Hooks for metrics: stage durations in seconds, job totals in milliseconds. */
export interface RunnerObserver {
  stage?(stage: 'upload' | 'validate' | 'queue' | 'read' | 'preprocess' | 'network' | 'postprocess' | 'write', seconds: number): void;
  finished?(state: JobState, totalMs: number, errorCode?: string): void;
}

export interface JobRunner {
  /** Accepts a validated upload as a queued job; ERR_QUEUE_FULL (429) when the queue is full. */
  submit(input: SubmitInput): Promise<JobRecord>;
  status(id: string): Promise<JobRecord | undefined>;
  /** Resolves with the record once the job is finished, or as it is after `ms`. */
  wait(id: string, ms: number): Promise<JobRecord | undefined>;
  /** The file of a finished job's artifact, undefined when absent. */
  artifact(id: string, name: ArtifactName): Promise<string | undefined>;
  /** Cancels a queued or running job and deletes the job and its files; undefined when unknown. */
  cancel(id: string): Promise<JobRecord | undefined>;
  stats(): RunnerStats;
  /** Seconds a new job would wait, for Retry-After. */
  retryAfterS(): number;
  /** Stops accepting; lets the running job finish within `graceMs`, then cancels it and the queue. */
  close(graceMs: number): Promise<void>;
}
