/**
 * spleen-trt/queue: scale-out on Redis with BullMQ (producer, worker, shared storage). A separate
 * entry point so that `import 'spleen-trt'` never loads BullMQ. Re-exports only.
 */
export {
  QUEUE_NAME,
  JOB_NAME,
  JOB_DATA_VERSION,
  PRIORITY,
  isValidJobId,
  checkJobData,
  type PriorityClass,
  type SegmentJobData,
  type SegmentJobResult,
} from './contract.js';
export { parseRedisUrl, workerConnection, producerConnection, type RedisAddress, type RedisTarget } from './connection.js';
export { DirectoryStorage, RESULT_FILES, type JobStorage } from './shared-storage.js';
export {
  processSegmentJob,
  classifyJobFailure,
  failureCode,
  toQueueError,
  parseFailedReason,
  type QueueSegmenter,
  type ProcessSegmentJobOptions,
  type FailureKind,
} from './process-segment-job.js';
export {
  createSegmentationQueue,
  SegmentationQueue,
  type SegmentationQueueOptions,
  type AddSegmentationOptions,
  type SegmentationJobStatus,
  type SegmentationJobState,
  type CancelOutcome,
} from './segmentation-queue.js';
export { createSegmentationWorker, type SegmentationWorker, type SegmentationWorkerOptions } from './segmentation-worker.js';
export { WorkerMetrics, serveMetrics, type JobOutcome } from './worker-metrics.js';
