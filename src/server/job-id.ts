/**
 * Job ids: 128 random bits as 32 lowercase hex digits. They name directories in the data dir, so
 * every id that comes from outside is checked against this exact shape before it touches a path.
 */
import { randomBytes } from 'node:crypto';

const JOB_ID = /^[0-9a-f]{32}$/;

/** The JSON-schema pattern of a job id (route params). */
export const JOB_ID_PATTERN = '^[0-9a-f]{32}$';

export function newJobId(): string {
  return randomBytes(16).toString('hex');
}

export function isJobId(value: unknown): value is string {
  return typeof value === 'string' && JOB_ID.test(value);
}
