/**
 * The package's own Redis keys beside BullMQ's, inside the queue's key space
 * (`<prefix>:<queue>:...`) so that one prefix still separates deployments.
 */
import { QUEUE_NAME } from './contract.js';

/** Set while a producer asks the worker running `jobId` to stop it. */
export function cancelKey(prefix: string, jobId: string): string {
  return `${prefix}:${QUEUE_NAME}:spleen:cancel:${jobId}`;
}

/** Sorted set of a client's unfinished job ids (score: when added, ms), for the per-client cap. */
export function clientJobsKey(prefix: string, clientId: string): string {
  return `${prefix}:${QUEUE_NAME}:spleen:client:${encodeURIComponent(clientId)}`;
}

/** Key of a BullMQ job's hash. */
export function jobKey(prefix: string, jobId: string): string {
  return `${prefix}:${QUEUE_NAME}:${jobId}`;
}
