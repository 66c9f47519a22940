/**
 * What the service knows about a job: the document GET /v1/segmentations/{id} returns and
 * job.json stores. No patient data: no file names, no header text, only geometry and numbers.
 */
import type { ResponseErrorCode } from './service-error.js';

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export const FINISHED_STATES: readonly JobState[] = ['done', 'failed', 'cancelled'];

export interface JobProgress {
  stage: 'preprocess' | 'network' | 'postprocess' | 'done';
  windowsDone: number;
  windowsTotal: number;
}

export interface JobSummary {
  volumeMl: number;
  voxelCount: number;
  boundingBox: { min: [number, number, number]; max: [number, number, number] } | null;
  centroidMm: [number, number, number] | null;
  empty: boolean;
}

/** Milliseconds per stage; those not reached yet are absent. */
export interface JobTimings {
  uploadMs?: number;
  validateMs?: number;
  queueMs?: number;
  readMs?: number;
  preprocessMs?: number;
  networkMs?: number;
  computeMs?: number;
  postprocessMs?: number;
  writeMs?: number;
  /** Submission to result. */
  totalMs?: number;
}

/**
 * Artifact files a job can have besides its input. A DICOM job also has its SEG, the mask's
 * surface (STL) and the CT it read as NIfTI (for the viewer, which reads NIfTI).
 */
export type ArtifactName = 'mask.nii.gz' | 'preview.png' | 'probability.nii.gz' | 'seg.dcm' | 'mask.stl' | 'ct.nii.gz';
export const ARTIFACT_NAMES: readonly ArtifactName[] = ['mask.nii.gz', 'preview.png', 'probability.nii.gz', 'seg.dcm', 'mask.stl', 'ct.nii.gz'];

export interface JobRecord {
  id: string;
  state: JobState;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /**
   * The input's format and geometry (from its header, or the DICOM series read). For DICOM the
   * series chosen is named by its SeriesInstanceUID only: nothing about the patient.
   */
  input: {
    format: 'nifti' | 'dicom';
    bytes: number;
    shape: [number, number, number];
    spacingMm: [number, number, number];
    seriesInstanceUid?: string;
  };
  /** Whether the probability map was asked for at submission. */
  probability: boolean;
  progress?: JobProgress;
  error?: { code: ResponseErrorCode; message: string };
  summary?: JobSummary;
  timings: JobTimings;
  /** The artifacts written so far; a name is added only once its file is complete. */
  artifacts: ArtifactName[];
  /** Jobs ahead of this one while it is queued (not stored). */
  queuePosition?: number;
  /** The request id of the submission, to find its logs. */
  reqId?: string;
  /** The queue worker that ran (or runs) the job, with `serve --queue`. */
  worker?: string;
}

export function isFinished(state: JobState): boolean {
  return FINISHED_STATES.includes(state);
}
