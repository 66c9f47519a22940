/**
 * The service's own failures (auth, limits, unknown jobs...) and the one table that turns any
 * failure into an HTTP status. Runtime failures of the pipeline keep the package's
 * SpleenTrtError codes; these are the codes only an HTTP client can meet. A client branches on
 * `code`, never on the message.
 */
import { isSpleenTrtError, type ErrorCode } from '../index.js';

export type ServiceErrorCode =
  | 'ERR_BAD_REQUEST'
  | 'ERR_UNAUTHORIZED'
  | 'ERR_FORBIDDEN'
  | 'ERR_NOT_FOUND'
  | 'ERR_NOT_READY'
  | 'ERR_UNSUPPORTED_MEDIA_TYPE'
  | 'ERR_PAYLOAD_TOO_LARGE'
  | 'ERR_VOLUME_TOO_LARGE'
  | 'ERR_UPLOAD_INCOMPLETE'
  | 'ERR_UPLOAD_TIMEOUT'
  | 'ERR_QUEUE_FULL'
  | 'ERR_JOB_TIMEOUT'
  | 'ERR_INTERRUPTED'
  | 'ERR_SHUTTING_DOWN'
  | 'ERR_INTERNAL';

/** Every code a response body can carry. */
export type ResponseErrorCode = ServiceErrorCode | ErrorCode;

const SERVICE_STATUS: Record<ServiceErrorCode, number> = {
  ERR_BAD_REQUEST: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_NOT_READY: 409,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_PAYLOAD_TOO_LARGE: 413,
  ERR_VOLUME_TOO_LARGE: 413,
  ERR_UPLOAD_INCOMPLETE: 400,
  ERR_UPLOAD_TIMEOUT: 408,
  ERR_QUEUE_FULL: 429,
  ERR_JOB_TIMEOUT: 504,
  ERR_INTERRUPTED: 500,
  ERR_SHUTTING_DOWN: 503,
  ERR_INTERNAL: 500,
};

/** The package's codes as HTTP statuses (services-and-dicom.md section 0). */
const PACKAGE_STATUS: Partial<Record<ErrorCode, number>> = {
  ERR_NIFTI_INVALID: 422,
  ERR_DICOM_INVALID: 422,
  ERR_DICOM_UNSUPPORTED: 422,
  ERR_INPUT_TOO_LARGE: 413,
  ERR_QUEUE_FULL: 429,
  ERR_TIMEOUT: 504,
  ERR_FILE_NOT_FOUND: 422,
  ERR_OUT_OF_MEMORY: 503,
  ERR_INFERENCE_FAILED: 503,
  // The backend was recreated after a sticky CUDA error: the job can be retried.
  ERR_GPU_FAULT: 503,
  ERR_ABORTED: 409,
  ERR_CLOSED: 503,
  ERR_QUEUE_UNAVAILABLE: 503,
};

/** A failure the service reports with a status and a code; `retryAfterS` sets Retry-After. */
export class ServiceError extends Error {
  readonly code: ServiceErrorCode;
  readonly statusCode: number;
  readonly retryAfterS: number | undefined;

  constructor(code: ServiceErrorCode, message: string, options: { retryAfterS?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ServiceError';
    this.code = code;
    this.statusCode = SERVICE_STATUS[code];
    this.retryAfterS = options.retryAfterS;
  }
}

export function isServiceError(error: unknown, code?: ServiceErrorCode): error is ServiceError {
  return error instanceof ServiceError && (code === undefined || error.code === code);
}

/** Status, code and client-safe message of any error; unknown errors say nothing about themselves. */
export function describeFailure(error: unknown): { statusCode: number; code: ResponseErrorCode; message: string; retryAfterS?: number } {
  if (isServiceError(error)) return { statusCode: error.statusCode, code: error.code, message: scrubPaths(error.message), retryAfterS: error.retryAfterS };
  if (isSpleenTrtError(error)) {
    const statusCode = PACKAGE_STATUS[error.code] ?? 500;
    return { statusCode, code: error.code, message: scrubPaths(error.message), retryAfterS: statusCode === 503 ? 5 : undefined };
  }
  return { statusCode: 500, code: 'ERR_INTERNAL', message: 'Internal error' };
}

/**
 * Messages from the reader name the file they read; on the server that is a path inside the data
 * directory, which a client must never see.
 */
export function scrubPaths(message: string): string {
  return message.replace(/(?:[A-Za-z]:)?(?:[\\/][^\s\\/:'"]+){2,}/g, '<upload>');
}
