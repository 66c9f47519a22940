/**
 * The package's one runtime error class and the caller-mistake helpers.
 *
 * Caller mistakes (wrong argument types or ranges) are `TypeError` / `RangeError` with one message
 * shape; everything that goes wrong at run time is a `SpleenTrtError` whose `code` a caller can
 * branch on.
 */

/** The closed set of runtime error codes. Add one only when a caller would branch on it. */
export type ErrorCode =
  | 'ERR_NIFTI_INVALID'
  | 'ERR_MODEL_INVALID'
  | 'ERR_FILE_NOT_FOUND'
  | 'ERR_BACKEND_UNAVAILABLE'
  | 'ERR_NATIVE_UNAVAILABLE'
  | 'ERR_TENSORRT_UNAVAILABLE'
  | 'ERR_NO_GPU'
  | 'ERR_ENGINE_INCOMPATIBLE'
  | 'ERR_ONNX_PARSE'
  | 'ERR_BUILD_FAILED'
  | 'ERR_INFERENCE_FAILED'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_ABORTED'
  | 'ERR_CLOSED'
  /** The job queue (Redis) cannot be reached: retry later (HTTP 503). */
  | 'ERR_QUEUE_UNAVAILABLE'
  /** A client already has its cap of queued jobs (HTTP 429). */
  | 'ERR_QUEUE_FULL';

export interface SpleenTrtErrorOptions {
  /** Extra lines for diagnosis (e.g. TensorRT log lines of the failing call). */
  details?: readonly string[];
  cause?: unknown;
}

/** A runtime failure with a stable `code`. */
export class SpleenTrtError extends Error {
  readonly code: ErrorCode;
  readonly details: readonly string[];

  constructor(code: ErrorCode, message: string, options: SpleenTrtErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SpleenTrtError';
    this.code = code;
    this.details = options.details ?? [];
  }
}

/** True when `error` is a SpleenTrtError, optionally with the given code. */
export function isSpleenTrtError(error: unknown, code?: ErrorCode): error is SpleenTrtError {
  return error instanceof SpleenTrtError && (code === undefined || error.code === code);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return `an instance of ${value.constructor?.name ?? 'Object'}`;
}

/** `TypeError: Expected <what> for <name> but received <value>`. */
export function expectedType(what: string, name: string, value: unknown): TypeError {
  return new TypeError(`Expected ${what} for ${name} but received ${describe(value)}`);
}

/** `RangeError: Expected <what> for <name> but received <value>`. */
export function expectedRange(what: string, name: string, value: unknown): RangeError {
  return new RangeError(`Expected ${what} for ${name} but received ${describe(value)}`);
}

/** Converts an AbortSignal's state into the package's error. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new SpleenTrtError('ERR_ABORTED', 'The operation was aborted', { cause: signal.reason });
  }
}
