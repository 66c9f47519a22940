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
  /** An input, model or grid larger than a configured limit, decided from declared sizes before allocating. */
  | 'ERR_INPUT_TOO_LARGE'
  /** A file that exists but cannot be read as one: permissions, a symlink loop, a FIFO or device, a NUL in its path. */
  | 'ERR_FILE_UNREADABLE'
  /** An output that cannot be written: read-only or full disk, a parent that is a file, an output that would replace an input. */
  | 'ERR_WRITE_FAILED'
  /** Segmenter.segment refused: `maxQueue` runs are already waiting. */
  | 'ERR_QUEUE_FULL'
  /** A run exceeded its `timeoutMs`. */
  | 'ERR_TIMEOUT';

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

/**
 * Caller mistakes keep their built-in classes (TypeError / RangeError, so `instanceof` checks work)
 * and carry Node's own codes for the same mistakes, so every error leaving the API has a `code`:
 * `ERR_INVALID_ARG_TYPE` for a wrong type, `ERR_INVALID_ARG_VALUE` for a value out of range.
 */
export type ArgumentErrorCode = 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE';

function withCode<E extends Error>(error: E, code: ArgumentErrorCode): E & { code: ArgumentErrorCode } {
  return Object.assign(error, { code });
}

/** `TypeError: Expected <what> for <name> but received <value>`, code ERR_INVALID_ARG_TYPE. */
export function expectedType(what: string, name: string, value: unknown): TypeError & { code: ArgumentErrorCode } {
  return withCode(new TypeError(`Expected ${what} for ${name} but received ${describe(value)}`), 'ERR_INVALID_ARG_TYPE');
}

/** `RangeError: Expected <what> for <name> but received <value>`, code ERR_INVALID_ARG_VALUE. */
export function expectedRange(what: string, name: string, value: unknown): RangeError & { code: ArgumentErrorCode } {
  return withCode(new RangeError(`Expected ${what} for ${name} but received ${describe(value)}`), 'ERR_INVALID_ARG_VALUE');
}

/** The code an error leaving the package carries: its own, Node's argument codes, else ERR_UNEXPECTED. */
export function errorCode(error: unknown): string {
  if (error instanceof SpleenTrtError) return error.code;
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_') ? code : 'ERR_UNEXPECTED';
}

/** Converts an AbortSignal's state into the package's error. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new SpleenTrtError('ERR_ABORTED', 'The operation was aborted', { cause: signal.reason });
  }
}
