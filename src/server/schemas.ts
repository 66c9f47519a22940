/**
 * JSON schemas of every route: they validate requests, serialise responses (undeclared fields are
 * dropped, so nothing leaks by accident) and generate the OpenAPI document.
 */
import { JOB_ID_PATTERN } from './job-id.js';

const vec3 = { type: 'array', items: { type: 'number' }, minItems: 3, maxItems: 3 } as const;
const ivec3 = { type: 'array', items: { type: 'integer' }, minItems: 3, maxItems: 3 } as const;

/** RFC 9457 problem details with the package's error code. */
export const problemSchema = {
  $id: 'Problem',
  type: 'object',
  description: 'An error (RFC 9457 problem details); `code` is stable, branch on it',
  required: ['type', 'title', 'status', 'code', 'detail'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string', description: 'ERR_... from the package or the service' },
    detail: { type: 'string' },
    instance: { type: 'string', description: 'The request id (in the server log)' },
  },
} as const;

const problemRef = { $ref: 'Problem#' } as const;

/** Error responses of a route: the problem document for every 4xx and 5xx. */
export const problemResponses = { '4xx': problemRef, '5xx': problemRef } as const;

export const jobUrlsSchema = {
  type: 'object',
  properties: {
    self: { type: 'string' },
    mask: { type: 'string' },
    preview: { type: 'string' },
    probability: { type: 'string' },
    seg: { type: 'string', description: 'DICOM jobs: the DICOM SEG' },
    stl: { type: 'string', description: 'DICOM jobs: the mask surface (STL)' },
    ct: { type: 'string', description: 'DICOM jobs: the CT read, as NIfTI' },
  },
} as const;

export const jobSchema = {
  $id: 'Job',
  type: 'object',
  required: ['id', 'state', 'createdAt', 'input', 'probability', 'timings', 'urls'],
  properties: {
    id: { type: 'string', pattern: JOB_ID_PATTERN },
    state: { type: 'string', enum: ['queued', 'running', 'done', 'failed', 'cancelled'] },
    createdAt: { type: 'string', format: 'date-time' },
    startedAt: { type: 'string', format: 'date-time' },
    finishedAt: { type: 'string', format: 'date-time' },
    queuePosition: { type: 'integer', description: 'Jobs ahead of this one (queued only)' },
    worker: { type: 'string', description: 'The queue worker that ran the job (serve --queue)' },
    input: {
      type: 'object',
      description: 'The input: its format (nifti or dicom), size and grid; for DICOM the SeriesInstanceUID of the series read (no patient data)',
      properties: {
        format: { type: 'string', enum: ['nifti', 'dicom'] },
        bytes: { type: 'integer' },
        shape: ivec3,
        spacingMm: vec3,
        seriesInstanceUid: { type: 'string' },
      },
    },
    probability: { type: 'boolean', description: 'Whether the probability map was asked for' },
    progress: {
      type: 'object',
      description: 'Of a running job: the pipeline stage and the sliding-window windows done',
      properties: {
        stage: { type: 'string', enum: ['preprocess', 'network', 'postprocess', 'done'] },
        windowsDone: { type: 'integer' },
        windowsTotal: { type: 'integer' },
      },
    },
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
    summary: {
      type: 'object',
      description: 'The mask: foreground voxels, volume in mL, inclusive voxel bounding box, centroid in RAS+ mm',
      properties: {
        volumeMl: { type: 'number' },
        voxelCount: { type: 'integer' },
        boundingBox: { type: ['object', 'null'], properties: { min: ivec3, max: ivec3 } },
        centroidMm: { anyOf: [vec3, { type: 'null' }] },
        empty: { type: 'boolean' },
      },
    },
    timings: {
      type: 'object',
      description: 'Milliseconds per stage',
      properties: Object.fromEntries(
        ['uploadMs', 'validateMs', 'queueMs', 'readMs', 'preprocessMs', 'networkMs', 'computeMs', 'postprocessMs', 'writeMs', 'totalMs'].map((k) => [
          k,
          { type: 'number' },
        ]),
      ),
    },
    urls: jobUrlsSchema,
  },
} as const;

const jobRef = { $ref: 'Job#' } as const;

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: JOB_ID_PATTERN } },
} as const;

export const submitQuery = {
  type: 'object',
  properties: {
    wait: { type: 'number', minimum: 0, description: 'Seconds to wait for the result before answering 202' },
    probability: { type: 'boolean', default: false, description: 'Also keep the foreground probability map' },
    priority: {
      type: 'string',
      enum: ['urgent', 'batch'],
      description: "With serve --queue: 'urgent' runs ahead of waiting 'batch' jobs (default batch)",
    },
  },
  additionalProperties: false,
} as const;

export const submitSchema = {
  summary: 'Submit a CT volume (.nii / .nii.gz, or a zipped DICOM series) for segmentation',
  description:
    'The body is the file (application/octet-stream, application/gzip or application/zip), or one file in multipart/form-data. ' +
    'The format is told by content: a zip is read as a DICOM study folder (the CT series with the most slices, ' +
    'as `infer` chooses), and its job also offers the DICOM SEG (`seg.dcm`), the surface (`mask.stl`) and the CT as NIfTI (`ct.nii.gz`). ' +
    'Answers 202 with the job, or 200 with the finished job when `wait` is given and it finishes in time.',
  tags: ['segmentations'],
  querystring: submitQuery,
  consumes: ['application/octet-stream', 'application/gzip', 'application/zip', 'multipart/form-data'],
  response: { 200: jobRef, 202: jobRef, ...problemResponses },
} as const;

export const statusSchema = {
  summary: 'Status of a segmentation job',
  tags: ['segmentations'],
  params: idParams,
  response: { 200: jobRef, ...problemResponses },
} as const;

export function artifactSchema(summary: string, mediaType: string) {
  return {
    summary,
    tags: ['segmentations'],
    params: idParams,
    produces: [mediaType],
    response: { 200: { description: summary, content: { [mediaType]: { schema: { type: 'string', format: 'binary' } } } }, ...problemResponses },
  } as const;
}

export const cancelSchema = {
  summary: 'Cancel a job (queued or running) and delete it with its files',
  tags: ['segmentations'],
  params: idParams,
  response: { 200: jobRef, ...problemResponses },
} as const;

export const healthSchema = {
  summary: 'Liveness: the process is up',
  tags: ['health'],
  response: { 200: { type: 'object', properties: { status: { type: 'string' } } } },
} as const;

export const readySchema = {
  summary: 'Readiness: model loaded, accepting jobs, queue not full',
  tags: ['health'],
  response: {
    200: { $ref: 'Readiness#' },
    503: { $ref: 'Readiness#' },
  },
} as const;

export const readinessSchema = {
  $id: 'Readiness',
  type: 'object',
  properties: {
    ready: { type: 'boolean' },
    backend: { type: 'string' },
    model: { type: 'string' },
    queued: { type: 'integer' },
    running: { type: 'integer' },
    maxQueue: { type: 'integer' },
    reason: { type: 'string' },
  },
} as const;
