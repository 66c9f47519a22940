/** spleen-trt/server: the segmentation service (fastify). Re-exports only. */
export { createSegmentationServer, type CreateSegmentationServerOptions } from './create-segmentation-server.js';
export { segmentationPlugin, type SegmentationPluginOptions, type SegmentationServiceHandle } from './segmentation-plugin.js';
export {
  DEFAULT_LIMITS,
  DEFAULT_RETENTION,
  type SegmentationServiceOptions,
  type ServiceLimits,
  type RetentionOptions,
  type AuthOptions,
  type SegmenterLike,
} from './server-options.js';
export type { JobRunner, SubmitInput, RunnerStats } from './job-runner.js';
export type { JobRecord, JobState, JobSummary, JobTimings, JobProgress } from './job-record.js';
export { ServiceError, type ServiceErrorCode, type ResponseErrorCode } from './service-error.js';
export { parseTokens, readTokenFile } from './auth.js';
