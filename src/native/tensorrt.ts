/**
 * Typed access to the addon's TensorRT builder and runtime (native/tensorrt_js.h): validation of
 * every option before any native call, and native failures re-created here as SpleenTrtError so
 * their stack shows the awaiting caller.
 *
 * The addon answers ERR_TENSORRT_UNAVAILABLE (with the reason) wherever TensorRT cannot be used:
 * built without TensorRT headers, libnvinfer missing or of another version, parser missing.
 */
import { expectedRange, expectedType, SpleenTrtError, throwIfAborted, type ErrorCode } from '../errors.js';
import { addonBuildCommand, getNativeLoadError, loadAddon, type NativeAddon } from './addon.js';

/** fp32: TF32 off (torch-equivalent); tf32: TensorRT's default; fp16: half-precision compute. */
export type TensorRtPrecision = 'fp32' | 'tf32' | 'fp16';

/** What the native builder needs; the ONNX must already have a symbolic batch dimension. */
export interface NativeBuildOptions {
  onnx: Uint8Array;
  precision: TensorRtPrecision;
  inputName: string;
  /** Batch sizes of the one optimization profile. */
  profile: { min: number; opt: number; max: number };
  spatialShape: [number, number, number];
  /** Builder workspace limit; default: TensorRT's (the device's memory). */
  workspaceBytes?: number;
  /** Builder optimization level 0..5, default 3. */
  optLevel?: number;
  versionCompatible?: boolean;
  hardwareCompat?: 'none' | 'ampere+';
  device?: number;
  /** A serialized timing cache to start from (from an earlier build's `timingCache`). */
  timingCache?: Uint8Array;
  /**
   * Use a timing cache made for another GPU or TensorRT anyway. Default false: TensorRT's header
   * warns that may "lead to functional/performance bugs", so such a cache is replaced by a fresh one.
   */
  timingCacheIgnoreMismatch?: boolean;
  /** Aborting cancels the build at TensorRT's next step (ERR_ABORTED). */
  signal?: AbortSignal;
  onProgress?: (p: { phase: string; current: number; total: number }) => void;
}

/** A built plan, the timing cache after the build, and TensorRT's log of it. */
export interface NativeBuildResult {
  plan: Uint8Array;
  timingCache?: Uint8Array;
  tensorrtVersion: string;
  log: string[];
}

/** What a loaded engine takes and returns. */
export interface NativeEngineInfo {
  inputName: string;
  outputName: string;
  /** `[profile.max, C, d0, d1, d2]`. */
  inputShapeMax: number[];
  /** `[profile.max, outC, d0, d1, d2]`. */
  outputShapeMax: number[];
  outputChannels: number;
  profile: { min: number; opt: number; max: number };
  /** Activation memory and I/O buffers of all contexts (the weights are not counted). */
  deviceMemoryBytes: number;
  tensorrtVersion: string;
}

/** One batch's logits and trtexec-style timings (CUDA events on the context's stream). */
export interface NativeRunResult {
  output: Float32Array;
  h2dMs: number;
  computeMs: number;
  d2hMs: number;
  usedCudaGraph: boolean;
}

/** A deserialized engine with its execution contexts. */
export interface NativeEngine {
  readonly info: NativeEngineInfo;
  /**
   * Runs `batch` items (`input.length === batch * C * d0 * d1 * d2`). Runs queue in FIFO order
   * onto the engine's contexts; do not modify `input` until the promise settles.
   */
  run(input: Float32Array, batch: number): Promise<NativeRunResult>;
  /** Waits for accepted runs, then frees the GPU memory; idempotent. Later runs: ERR_CLOSED. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------- the addon's raw interface

interface RawBuildRequest {
  onnx: Uint8Array;
  precision: TensorRtPrecision;
  inputName: string;
  batchMin: number;
  batchOpt: number;
  batchMax: number;
  spatialShape: [number, number, number];
  /** 0: TensorRT's default. */
  workspaceBytes: number;
  optLevel: number;
  versionCompatible: boolean;
  hardwareCompat: 'none' | 'ampere+';
  device: number;
  timingCache?: Uint8Array;
  timingCacheIgnoreMismatch?: boolean;
}

/** @internal The engine description loadEngine resolves with, TensorRT's load log included. */
export interface RawEngineInfo extends NativeEngineInfo {
  log: string[];
}

/** An opaque engine handle (a tagged Napi::External). */
type EngineHandle = object;

/** @internal The addon's TensorRT exports (native/tensorrt_js.h); exported for tests. */
export interface TensorRtAddon extends NativeAddon {
  getTensorRtStatusAsync(): Promise<{ available: boolean; version?: string; reason?: string }>;
  buildEngine(
    request: RawBuildRequest,
    onProgress: ((phase: string, current: number, total: number) => void) | null,
  ): { promise: Promise<NativeBuildResult>; cancel(): void };
  loadEngine(
    plan: Uint8Array,
    device: number,
    contexts: number,
    useCudaGraph: boolean,
    allowHostCode?: boolean,
  ): Promise<{ handle: EngineHandle; info: RawEngineInfo }>;
  engineRun(handle: EngineHandle, input: Float32Array, batch: number): Promise<NativeRunResult>;
  engineClose(handle: EngineHandle): Promise<void>;
}

const TENSORRT_EXPORTS = ['getTensorRtStatusAsync', 'buildEngine', 'loadEngine', 'engineRun', 'engineClose'] as const;

/** Why the TensorRT part of the addon cannot be used, or null when it can. */
function addonProblem(addon: NativeAddon | null): string | null {
  if (addon === null) return getNativeLoadError()?.message ?? 'The spleen-trt native addon is not loaded';
  const missing = TENSORRT_EXPORTS.filter((name) => typeof (addon as unknown as Record<string, unknown>)[name] !== 'function');
  if (missing.length > 0) {
    return `The loaded spleen-trt native addon predates TensorRT support (missing ${missing.join(', ')}); rebuild it with \`${addonBuildCommand()}\``;
  }
  return null;
}

function requireAddon(): TensorRtAddon {
  const addon = loadAddon();
  const problem = addonProblem(addon);
  if (problem !== null) throw new SpleenTrtError('ERR_NATIVE_UNAVAILABLE', problem);
  return addon as TensorRtAddon;
}

// The codes native code produces (native/core/native_error.h).
const NATIVE_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'ERR_TENSORRT_UNAVAILABLE',
  'ERR_NO_GPU',
  'ERR_ONNX_PARSE',
  'ERR_BUILD_FAILED',
  'ERR_ENGINE_INCOMPATIBLE',
  'ERR_OUT_OF_MEMORY',
  'ERR_GPU_FAULT',
  'ERR_INFERENCE_FAILED',
  'ERR_ABORTED',
  'ERR_CLOSED',
]);

/**
 * A native rejection as the package's error, created here (in the awaiting function) so its stack
 * shows the caller rather than the addon's promise machinery. The native error stays as `cause`.
 */
function fromNative(error: unknown, fallback: ErrorCode): Error {
  if (error instanceof SpleenTrtError) return error;
  if (error instanceof Error) {
    const { code, details } = error as Error & { code?: unknown; details?: unknown };
    const lines = Array.isArray(details) ? details.map(String) : [];
    if (typeof code === 'string' && NATIVE_CODES.has(code)) {
      return new SpleenTrtError(code as ErrorCode, error.message, { details: lines, cause: error });
    }
    // The addon's own argument checks (TypeError/RangeError) are caller mistakes, kept as they are.
    if (error instanceof TypeError || error instanceof RangeError) return error;
    return new SpleenTrtError(fallback, error.message, { details: lines, cause: error });
  }
  return new SpleenTrtError(fallback, String(error), { cause: error });
}

// ---------------------------------------------------------------- validation

const MAX_INT32 = 0x7fffffff;
const MAX_CONTEXTS = 64;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw expectedType('an integer', name, value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw expectedRange(`an integer in [${min}, ${max}]`, name, value);
  }
  return value;
}

function checkBytes(value: unknown, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw expectedType('a Uint8Array', name, value);
  return value;
}

function checkOneOf<T extends string>(value: unknown, allowed: readonly T[], name: string): T {
  if (typeof value !== 'string') throw expectedType(`a string (${allowed.map((item) => JSON.stringify(item)).join(' | ')})`, name, value);
  if (!(allowed as readonly string[]).includes(value)) {
    throw expectedRange(allowed.map((item) => JSON.stringify(item)).join(' or '), name, value);
  }
  return value as T;
}

function checkOptionalBoolean(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw expectedType('a boolean', name, value);
  return value;
}

function validateBuildOptions(options: unknown): RawBuildRequest {
  if (!isPlainObject(options)) throw expectedType('an options object', 'options', options);
  const onnx = checkBytes(options.onnx, 'options.onnx');
  if (onnx.length === 0) throw expectedRange('non-empty ONNX bytes', 'options.onnx', onnx);
  const precision = checkOneOf(options.precision, ['fp32', 'tf32', 'fp16'] as const, 'options.precision');
  if (typeof options.inputName !== 'string') throw expectedType('a string', 'options.inputName', options.inputName);
  if (options.inputName.length === 0) throw expectedRange('a non-empty tensor name', 'options.inputName', options.inputName);
  const profile = options.profile;
  if (!isPlainObject(profile)) throw expectedType('an object { min, opt, max }', 'options.profile', profile);
  const batchMin = checkInteger(profile.min, 'options.profile.min', 1, MAX_INT32);
  const batchOpt = checkInteger(profile.opt, 'options.profile.opt', batchMin, MAX_INT32);
  const batchMax = checkInteger(profile.max, 'options.profile.max', batchOpt, MAX_INT32);
  const spatial = options.spatialShape;
  if (!Array.isArray(spatial)) throw expectedType('an array of 3 integers', 'options.spatialShape', spatial);
  if (spatial.length !== 3) throw expectedRange('an array of 3 integers', 'options.spatialShape', spatial);
  const spatialShape = spatial.map((value: unknown, k) => checkInteger(value, `options.spatialShape[${k}]`, 1, MAX_INT32)) as [
    number,
    number,
    number,
  ];
  const workspaceBytes =
    options.workspaceBytes === undefined ? 0 : checkInteger(options.workspaceBytes, 'options.workspaceBytes', 1, Number.MAX_SAFE_INTEGER);
  const optLevel = options.optLevel === undefined ? 3 : checkInteger(options.optLevel, 'options.optLevel', 0, 5);
  const versionCompatible = checkOptionalBoolean(options.versionCompatible, 'options.versionCompatible');
  const hardwareCompat =
    options.hardwareCompat === undefined ? 'none' : checkOneOf(options.hardwareCompat, ['none', 'ampere+'] as const, 'options.hardwareCompat');
  const device = options.device === undefined ? 0 : checkInteger(options.device, 'options.device', 0, MAX_INT32);
  const timingCache = options.timingCache === undefined ? undefined : checkBytes(options.timingCache, 'options.timingCache');
  const timingCacheIgnoreMismatch = checkOptionalBoolean(options.timingCacheIgnoreMismatch, 'options.timingCacheIgnoreMismatch');
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw expectedType('an AbortSignal', 'options.signal', options.signal);
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw expectedType('a function', 'options.onProgress', options.onProgress);
  }
  return {
    onnx,
    precision,
    inputName: options.inputName,
    batchMin,
    batchOpt,
    batchMax,
    spatialShape,
    workspaceBytes,
    optLevel,
    versionCompatible,
    hardwareCompat,
    device,
    ...(timingCache === undefined ? {} : { timingCache }),
    ...(timingCacheIgnoreMismatch ? { timingCacheIgnoreMismatch } : {}),
  };
}

// ---------------------------------------------------------------- public API

/**
 * Builds a TensorRT plan from ONNX bytes on a native thread of its own (minutes; the event loop
 * stays free). Rejects with ERR_NATIVE_UNAVAILABLE, ERR_TENSORRT_UNAVAILABLE, ERR_NO_GPU,
 * ERR_ONNX_PARSE (details: one line per parser error), ERR_BUILD_FAILED (details: TensorRT's
 * log), ERR_OUT_OF_MEMORY or ERR_ABORTED; TypeError/RangeError for invalid options.
 * @example
 * const { plan } = await buildEngineNative({ onnx, precision: 'fp16', inputName: 'input_0',
 *   profile: { min: 1, opt: 4, max: 8 }, spatialShape: [96, 96, 96] });
 */
export async function buildEngineNative(options: NativeBuildOptions): Promise<NativeBuildResult> {
  const request = validateBuildOptions(options);
  const { signal, onProgress } = options;
  throwIfAborted(signal);
  const addon = requireAddon();
  const progress =
    onProgress === undefined
      ? null
      : (phase: string, current: number, total: number): void => {
          try {
            onProgress({ phase, current, total });
          } catch {
            // A failing progress callback must not cost the build (the build is what was asked for).
          }
        };
  const build = addon.buildEngine(request, progress);
  const onAbort = (): void => build.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const raw = await build.promise;
    return {
      plan: raw.plan,
      ...(raw.timingCache === undefined ? {} : { timingCache: raw.timingCache }),
      tensorrtVersion: raw.tensorrtVersion,
      log: raw.log,
    };
  } catch (error) {
    const converted = fromNative(error, 'ERR_BUILD_FAILED');
    if (converted instanceof SpleenTrtError && converted.code === 'ERR_ABORTED' && signal?.aborted) {
      throw new SpleenTrtError('ERR_ABORTED', converted.message, { details: converted.details, cause: signal.reason });
    }
    throw converted;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * @internal The NativeEngine over an addon engine handle; loadEngineNative is the way to get one
 * (exported so tests can drive it with a stand-in addon).
 */
export class TensorRtEngine implements NativeEngine {
  readonly info: NativeEngineInfo;
  private readonly itemFloats: number;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly addon: TensorRtAddon,
    private readonly handle: EngineHandle,
    raw: RawEngineInfo,
  ) {
    this.info = Object.freeze({
      inputName: raw.inputName,
      outputName: raw.outputName,
      inputShapeMax: [...raw.inputShapeMax],
      outputShapeMax: [...raw.outputShapeMax],
      outputChannels: raw.outputChannels,
      profile: Object.freeze({ ...raw.profile }),
      deviceMemoryBytes: raw.deviceMemoryBytes,
      tensorrtVersion: raw.tensorrtVersion,
    });
    this.itemFloats = raw.inputShapeMax.slice(1).reduce((product, dim) => product * dim, 1);
  }

  async run(input: Float32Array, batch: number): Promise<NativeRunResult> {
    if (!(input instanceof Float32Array)) throw expectedType('a Float32Array', 'input', input);
    const { min, max } = this.info.profile;
    checkInteger(batch, 'batch', min, max);
    if (input.length !== batch * this.itemFloats) {
      throw expectedRange(`a Float32Array of batch * ${this.itemFloats} = ${batch * this.itemFloats} floats`, 'input', input);
    }
    if (this.closing !== undefined) throw new SpleenTrtError('ERR_CLOSED', 'The TensorRT engine is closed');
    try {
      return await this.addon.engineRun(this.handle, input, batch);
    } catch (error) {
      throw fromNative(error, 'ERR_INFERENCE_FAILED');
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.addon.engineClose(this.handle);
      } catch (error) {
        throw fromNative(error, 'ERR_INFERENCE_FAILED');
      }
    })();
    return this.closing;
  }
}

/**
 * Deserializes a plan and creates `contexts` execution contexts (default 1), each with its own
 * stream, device buffers for the profile's maximum batch and pinned staging buffers. Rejects with
 * ERR_NATIVE_UNAVAILABLE, ERR_TENSORRT_UNAVAILABLE, ERR_ENGINE_INCOMPATIBLE (not a plan, another
 * TensorRT's plan, another GPU's), ERR_NO_GPU or ERR_OUT_OF_MEMORY.
 * @example
 * const engine = await loadEngineNative(plan, { contexts: 2 });
 * const { output, computeMs } = await engine.run(windows, 4);
 * await engine.close();
 */
export async function loadEngineNative(
  plan: Uint8Array,
  options: {
    device?: number;
    contexts?: number;
    useCudaGraph?: boolean;
    /**
     * Let TensorRT run host code embedded in the plan (the lean runtime of a version-compatible
     * plan). That is code from the plan file: only for plans from a trusted source. Default false.
     */
    allowHostCode?: boolean;
  } = {},
): Promise<NativeEngine> {
  checkBytes(plan, 'plan');
  if (plan.length === 0) throw expectedRange('non-empty plan bytes', 'plan', plan);
  if (!isPlainObject(options)) throw expectedType('an options object', 'options', options);
  const device = options.device === undefined ? 0 : checkInteger(options.device, 'options.device', 0, MAX_INT32);
  const contexts = options.contexts === undefined ? 1 : checkInteger(options.contexts, 'options.contexts', 1, MAX_CONTEXTS);
  if (options.useCudaGraph !== undefined && typeof options.useCudaGraph !== 'boolean') {
    throw expectedType('a boolean', 'options.useCudaGraph', options.useCudaGraph);
  }
  const useCudaGraph = options.useCudaGraph ?? true;
  if (options.allowHostCode !== undefined && typeof options.allowHostCode !== 'boolean') {
    throw expectedType('a boolean', 'options.allowHostCode', options.allowHostCode);
  }
  const addon = requireAddon();
  try {
    const { handle, info } = await addon.loadEngine(plan, device, contexts, useCudaGraph, options.allowHostCode ?? false);
    return new TensorRtEngine(addon, handle, info);
  } catch (error) {
    throw fromNative(error, 'ERR_ENGINE_INCOMPATIBLE');
  }
}

/**
 * Whether this process can build and run TensorRT engines, the loaded TensorRT's version, and
 * why not. Never rejects.
 */
export async function getTensorRtLibraryStatus(): Promise<{ available: boolean; version?: string; reason?: string }> {
  const addon = loadAddon();
  const problem = addonProblem(addon);
  if (problem !== null) return { available: false, reason: problem };
  try {
    return await (addon as TensorRtAddon).getTensorRtStatusAsync();
  } catch (error) {
    return { available: false, reason: `getTensorRtStatusAsync failed: ${(error as Error).message}` };
  }
}
