/**
 * The job API: submit a volume, poll its status, fetch its artifacts, cancel it.
 */
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DicomSeries, Volume } from '../../index.js';
import { isFinished, type ArtifactName, type JobRecord } from '../job-record.js';
import type { JobRunner } from '../job-runner.js';
import type { JobStore } from '../job-store.js';
import type { ServiceMetrics } from '../metrics.js';
import { clientIdOf } from '../auth.js';
import { artifactSchema, cancelSchema, statusSchema, submitSchema } from '../schemas.js';
import type { ServiceLimits } from '../server-options.js';
import { ServiceError } from '../service-error.js';
import { readUploadedInput } from '../upload/read-upload.js';
import { receiveUpload, type ReceivedUpload } from '../upload/receive-upload.js';

export interface SegmentationRoutesOptions {
  runner: JobRunner;
  store: JobStore;
  limits: ServiceLimits;
  metrics: ServiceMetrics;
}

const ARTIFACT_ROUTES: { path: string; name: ArtifactName; type: string; suffix: string; summary: string }[] = [
  { path: 'mask', name: 'mask.nii.gz', type: 'application/gzip', suffix: 'mask.nii.gz', summary: 'The mask (.nii.gz, float32 {0, 1} on the input grid, as the bundle writes it)' },
  { path: 'preview.png', name: 'preview.png', type: 'image/png', suffix: 'preview.png', summary: 'Three slices through the mask, outlined' },
  { path: 'probability', name: 'probability.nii.gz', type: 'application/gzip', suffix: 'probability.nii.gz', summary: 'Foreground probability (.nii.gz), when asked for at submission' },
  {
    path: 'seg.dcm',
    name: 'seg.dcm',
    type: 'application/dicom',
    suffix: 'seg.dcm',
    summary: 'DICOM jobs: the mask as a DICOM Segmentation (binary, one segment: spleen) referencing the series read',
  },
  { path: 'mask.stl', name: 'mask.stl', type: 'model/stl', suffix: 'mask.stl', summary: 'DICOM jobs: the mask surface (binary STL, patient LPS mm)' },
  { path: 'ct.nii.gz', name: 'ct.nii.gz', type: 'application/gzip', suffix: 'ct.nii.gz', summary: 'DICOM jobs: the CT series read, as .nii.gz (int16), for viewers that read NIfTI' },
];

/** Job URL keys of the artifacts (the record's `urls`). */
const ARTIFACT_URLS: Record<ArtifactName, string> = {
  'mask.nii.gz': 'mask',
  'preview.png': 'preview',
  'probability.nii.gz': 'probability',
  'seg.dcm': 'seg',
  'mask.stl': 'stl',
  'ct.nii.gz': 'ct',
};

/** The record as clients see it: with its URLs and its place in the queue. */
export function jobView(record: JobRecord, base: string): object {
  const self = `${base}/v1/segmentations/${record.id}`;
  const urls: Record<string, string> = { self };
  for (const artifact of ARTIFACT_ROUTES) {
    if (record.artifacts.includes(artifact.name)) urls[ARTIFACT_URLS[artifact.name]] = `${self}/${artifact.path}`;
  }
  return { ...record, urls };
}

interface IdParams {
  id: string;
}

export async function segmentationRoutes(app: FastifyInstance, options: SegmentationRoutesOptions): Promise<void> {
  const { runner, store, limits, metrics } = options;
  const base = app.prefix;
  let uploadsInFlight = 0;

  const refuse = (code: 'ERR_QUEUE_FULL' | 'ERR_SHUTTING_DOWN', message: string, retryAfterS: number): never => {
    metrics.rejected.inc({ code });
    throw new ServiceError(code, message, { retryAfterS });
  };

  /** Capacity is checked before a byte is read: uploads in progress count as queued jobs. */
  const admit = (request: FastifyRequest): void => {
    const stats = runner.stats();
    if (!stats.accepting) refuse('ERR_SHUTTING_DOWN', 'The server is shutting down', 5);
    if (uploadsInFlight >= limits.maxConcurrentUploads) {
      refuse('ERR_QUEUE_FULL', `${limits.maxConcurrentUploads} uploads are already being received`, 1);
    }
    if (stats.queued + uploadsInFlight >= limits.maxQueue) refuse('ERR_QUEUE_FULL', `The queue is full (${limits.maxQueue} jobs)`, runner.retryAfterS());
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > limits.maxUploadBytes) {
      throw new ServiceError('ERR_PAYLOAD_TOO_LARGE', `The upload (${declared} bytes) exceeds the limit of ${limits.maxUploadBytes} bytes`);
    }
  };

  /** The body's bytes, and whether they were cut at the size limit (multipart only says so afterwards). */
  const bodySource = async (request: FastifyRequest): Promise<{ stream: Readable; truncated: () => boolean }> => {
    if (!request.isMultipart()) return { stream: request.raw, truncated: () => false };
    const part = await request.file({ limits: { files: 1, parts: 4, fileSize: limits.maxUploadBytes } });
    if (!part) throw new ServiceError('ERR_BAD_REQUEST', 'The multipart body has no file part');
    return { stream: part.file, truncated: () => part.file.truncated };
  };

  const receive = async (request: FastifyRequest): Promise<{ upload: ReceivedUpload; volume: Volume; series?: DicomSeries; validateMs: number }> => {
    const source = await bodySource(request);
    const upload = await receiveUpload(source.stream, store.uploadPath(), limits);
    metrics.bytesIn.inc(upload.bytes);
    const t = performance.now();
    try {
      if (source.truncated()) throw new ServiceError('ERR_PAYLOAD_TOO_LARGE', `The upload exceeds the limit of ${limits.maxUploadBytes} bytes`);
      const { volume, series } = await readUploadedInput(upload.path, upload.kind, limits);
      const validateMs = performance.now() - t;
      metrics.observer.stage?.('validate' , validateMs / 1000);
      return { upload, volume, series, validateMs };
    } catch (error) {
      await rm(upload.path, { force: true });
      throw error;
    }
  };

  app.post<{ Querystring: { wait?: number; probability?: boolean; priority?: 'urgent' | 'batch' } }>('/v1/segmentations', { schema: submitSchema }, async (request, reply) => {
    admit(request);
    uploadsInFlight++;
    let record: JobRecord;
    try {
      const { upload, volume, series, validateMs } = await receive(request);
      metrics.observer.stage?.('upload' , upload.receiveMs / 1000);
      try {
        record = await runner.submit({
          upload,
          volume,
          series,
          probability: request.query.probability === true,
          reqId: String(request.id),
          validateMs,
          clientId: clientIdOf(request.headers.authorization),
          priority: request.query.priority,
        });
      } catch (error) {
        await rm(upload.path, { force: true });
        if (error instanceof ServiceError && error.code === 'ERR_QUEUE_FULL') metrics.rejected.inc({ code: error.code });
        throw error;
      }
    } finally {
      uploadsInFlight--;
    }
    request.log.info({ jobId: record.id }, 'job accepted');
    const waitS = Math.min(request.query.wait ?? 0, limits.maxWaitS);
    if (waitS > 0) record = (await runner.wait(record.id, waitS * 1000)) ?? record;
    const view = jobView(record, base);
    reply.header('Location', `${base}/v1/segmentations/${record.id}`);
    return reply.code(isFinished(record.state) ? 200 : 202).send(view);
  });

  const known = async (id: string): Promise<JobRecord> => {
    const record = await runner.status(id);
    if (!record) throw new ServiceError('ERR_NOT_FOUND', 'No such job (it may have been deleted or expired)');
    return record;
  };

  app.get<{ Params: IdParams }>('/v1/segmentations/:id', { schema: statusSchema }, async (request) => jobView(await known(request.params.id), base));

  for (const artifact of ARTIFACT_ROUTES) {
    app.get<{ Params: IdParams }>(
      `/v1/segmentations/:id/${artifact.path}`,
      { schema: artifactSchema(artifact.summary, artifact.type) },
      async (request: FastifyRequest<{ Params: IdParams }>, reply: FastifyReply) => {
        const record = await known(request.params.id);
        if (!isFinished(record.state)) throw new ServiceError('ERR_NOT_READY', `The job is ${record.state}; its results are not ready`);
        const file = await runner.artifact(record.id, artifact.name);
        if (!file) {
          throw new ServiceError('ERR_NOT_FOUND', record.state === 'done' ? `This job has no ${artifact.path} (ask for it at submission)` : `The job ${record.state}; it has no results`);
        }
        const { size } = await stat(file);
        metrics.bytesOut.inc(size);
        return reply
          .type(artifact.type)
          .header('Content-Length', String(size))
          .header('Content-Disposition', `attachment; filename="${record.id}-${artifact.suffix}"`)
          .send(createReadStream(file));
      },
    );
  }

  app.delete<{ Params: IdParams }>('/v1/segmentations/:id', { schema: cancelSchema }, async (request) => {
    const record = await runner.cancel(request.params.id);
    if (!record) throw new ServiceError('ERR_NOT_FOUND', 'No such job (it may have been deleted or expired)');
    request.log.info({ jobId: record.id, state: record.state }, 'job deleted');
    return jobView({ ...record, artifacts: [] }, base);
  });
}
