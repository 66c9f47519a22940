/**
 * Segmenter: the library's main object. Owns one inference backend and runs the pipeline on
 * volumes, one at a time in FIFO order (a backend session is not shared between concurrent runs;
 * on the CPU, running two volumes at once would only split the same cores).
 */
import os from 'node:os';
import { expectedRange, expectedType, isSpleenTrtError, SpleenTrtError, throwIfAborted } from './errors.js';
import { warnFallbackOnce } from './fallback-warning.js';
import type { BackendName, InferenceBackend } from './inference/backend.js';
import { autoCpuBackend } from './inference/cpu-backend-choice.js';
import { createOnednnBackend } from './inference/onednn-backend.js';
import { createOnnxRuntimeBackend } from './inference/onnxruntime-backend.js';
import { createTensorRtBackend } from './inference/tensorrt-backend.js';
import type { TensorRtDependencies, TensorRtPrecision } from './inference/tensorrt-native.js';
import { loadModel, onnxRuntimeGraph, tensorRtModel, type LoadedModel } from './model/load-model.js';
import type { ModelManifest, PipelineParameters } from './model/manifest.js';
import { getTensorRtStatus } from './runtime-info.js';
import { segmentVolume, type PipelineRunOptions, type SegmentResult } from './segment-volume.js';
import type { Volume } from './volume/volume.js';
import { geometryProblem, resolveVolumeLimits, type VolumeLimits } from './volume/volume-limits.js';

function resolveLimits(limits: VolumeLimits | undefined): Required<VolumeLimits> {
  if (limits !== undefined && (typeof limits !== 'object' || limits === null)) throw expectedType('a limits object', 'options.limits', limits);
  return resolveVolumeLimits(limits, (name, value) => {
    throw expectedRange('a positive finite number', `options.limits.${name}`, value);
  });
}

export interface SegmenterOptions {
  /** A model directory (model.json + ONNX), an .onnx file, or a LoadedModel; default: the embedded model. */
  model?: string | LoadedModel;
  /**
   * 'auto' (default) uses TensorRT where it is usable, else on the CPU oneDNN where libdnnl 2.x is
   * present and the CPU has AVX-512 (measured faster there), else onnxruntime. 'onednn' runs the
   * network with oneDNN 2.x's CPU primitives (libdnnl.so.2 opened at run time) wherever it loads.
   */
  backend?: 'auto' | BackendName;
  /** CPU threads for onnxruntime (or oneDNN); default: all cores. */
  threads?: number;
  /** TensorRT engine precision when one is built from the model: 'fp32' (default, TF32 off), 'tf32', 'fp16'. */
  precision?: TensorRtPrecision;
  /** Where built TensorRT engines are cached; default `$SPLEEN_TRT_CACHE_DIR` or ~/.cache/spleen-trt/engines. */
  engineCacheDir?: string;
  /** A prebuilt TensorRT plan (`spleen-trt export`) to run instead of building one from the model. */
  plan?: string;
  /** CUDA device index for TensorRT; default 0. */
  device?: number;
  /**
   * Let TensorRT run host code embedded in the plan (version-compatible plans need it). That is
   * code from the plan file: only for plans you trust. Default false.
   */
  allowEngineHostCode?: boolean;
  /** Overrides of the model's pipeline parameters (sliding window settings). */
  overlap?: number;
  swBatchSize?: number;
  mode?: 'constant' | 'gaussian';
  /**
   * Most runs that may wait behind the running one; a segment() beyond it rejects at once with
   * ERR_QUEUE_FULL. Default: unbounded (Infinity).
   */
  maxQueue?: number;
  /** Default for SegmentOptions.timeoutMs. */
  timeoutMs?: number;
  /** Size and geometry limits checked before a run allocates (ERR_INPUT_TOO_LARGE past them). */
  limits?: VolumeLimits;
}

export interface SegmentOptions extends PipelineRunOptions {
  /**
   * A run that has not finished this many ms after it started (queue time not counted) rejects with
   * ERR_TIMEOUT; its computation stops at the next batch boundary. Default: none.
   */
  timeoutMs?: number;
}

/** Largest sliding-window overlap accepted as an option: at 0.9 the step is 9 voxels of a 96 ROI. */
export const MAX_OVERLAP = 0.9;

interface QueuedRun {
  volume: Volume;
  options: SegmentOptions;
  resolve: (result: SegmentResult) => void;
  reject: (error: unknown) => void;
  /** Removes the abort listener that rejects the run while it waits. */
  unlisten: () => void;
}

export interface SegmenterInfo {
  backend: BackendName;
  backendDescription: string;
  /** Why 'auto' did not pick TensorRT, when it did not. */
  fallbackReason?: string;
  model: { name: string; source: string; sha256: string; warning?: string };
  pipeline: PipelineParameters;
}

function validatePipelineOverrides(options: SegmenterOptions, base: PipelineParameters): PipelineParameters {
  const params = { ...base };
  if (options.overlap !== undefined) {
    if (typeof options.overlap !== 'number' || !(options.overlap >= 0 && options.overlap <= MAX_OVERLAP)) {
      throw expectedRange(`a number in [0, ${MAX_OVERLAP}]`, 'options.overlap', options.overlap);
    }
    params.overlap = options.overlap;
  }
  if (options.swBatchSize !== undefined) {
    if (!Number.isInteger(options.swBatchSize) || options.swBatchSize < 1 || options.swBatchSize > 64) {
      throw expectedRange('an integer in 1..64', 'options.swBatchSize', options.swBatchSize);
    }
    params.swBatchSize = options.swBatchSize;
  }
  if (options.mode !== undefined) {
    if (options.mode !== 'constant' && options.mode !== 'gaussian') {
      throw expectedType('"constant" or "gaussian"', 'options.mode', options.mode);
    }
    params.mode = options.mode;
  }
  return params;
}

function checkTensorRtOptions(options: SegmenterOptions): void {
  const p = options.precision;
  if (p !== undefined && p !== 'fp32' && p !== 'tf32' && p !== 'fp16') throw expectedRange('"fp32", "tf32" or "fp16"', 'options.precision', p);
  for (const key of ['engineCacheDir', 'plan'] as const) {
    const v = options[key];
    if (v !== undefined && (typeof v !== 'string' || v === '')) throw expectedType('a path', `options.${key}`, v);
  }
  if (options.allowEngineHostCode !== undefined && typeof options.allowEngineHostCode !== 'boolean') {
    throw expectedType('a boolean', 'options.allowEngineHostCode', options.allowEngineHostCode);
  }
  if (options.device !== undefined && (!Number.isInteger(options.device) || options.device < 0)) {
    throw expectedRange('a non-negative integer', 'options.device', options.device);
  }
  if (options.plan !== undefined && options.backend === 'onnxruntime') {
    throw expectedType('backend "tensorrt" or "auto" with a plan', 'options.backend', options.backend);
  }
}

function checkTimeout(value: unknown, name: string): void {
  if (value !== undefined && (typeof value !== 'number' || !(value > 0))) throw expectedRange('a positive number of ms', name, value);
}

function checkQueueOptions(options: SegmenterOptions): void {
  const q = options.maxQueue;
  if (q !== undefined && (typeof q !== 'number' || !(q >= 0) || (q !== Infinity && !Number.isInteger(q)))) {
    throw expectedRange('a non-negative integer or Infinity', 'options.maxQueue', q);
  }
  checkTimeout(options.timeoutMs, 'options.timeoutMs');
}

function validateSegmentOptions(options: unknown): asserts options is SegmentOptions {
  if (typeof options !== 'object' || options === null) throw expectedType('an options object', 'options', options);
  const o = options as SegmentOptions;
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw expectedType('an AbortSignal', 'options.signal', o.signal);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw expectedType('a function', 'options.onProgress', o.onProgress);
  checkTimeout(o.timeoutMs, 'options.timeoutMs');
}

function validateVolume(volume: unknown, limits: Required<VolumeLimits>): asserts volume is Volume {
  const v = volume as Volume;
  if (typeof v !== 'object' || v === null) throw expectedType('a Volume', 'volume', volume);
  if (!(v.data instanceof Float32Array)) throw expectedType('a Float32Array', 'volume.data', v.data);
  if (!Array.isArray(v.shape) || v.shape.length !== 3 || !v.shape.every((n) => Number.isInteger(n) && n > 0)) {
    throw expectedType('3 positive integers', 'volume.shape', v.shape);
  }
  if (v.data.length !== v.shape[0] * v.shape[1] * v.shape[2]) {
    throw expectedRange(`${v.shape.join('x')} = ${v.shape[0] * v.shape[1] * v.shape[2]} elements`, 'volume.data', v.data);
  }
  if (!(v.affine instanceof Float64Array) || v.affine.length !== 16 || !v.affine.every(Number.isFinite)) {
    throw expectedType('a finite Float64Array(16)', 'volume.affine', v.affine);
  }
  const problem = geometryProblem(v.affine, limits);
  if (problem) throw expectedRange(`a scanner's affine (${problem})`, 'volume.affine', `[${Array.from(v.affine.subarray(0, 12)).join(', ')}, ...]`);
}

/**
 * @example
 * const segmenter = await Segmenter.create({ backend: 'auto' });
 * const { mask, summary } = await segmenter.segment((await readNifti('ct.nii.gz')).volume);
 * await segmenter.close();
 */
export class Segmenter {
  readonly info: SegmenterInfo;
  readonly manifest: ModelManifest;
  #backend: InferenceBackend | undefined;
  /** Opens a fresh TensorRT backend, after a GPU fault made the current one unusable. */
  #reopen: (() => Promise<InferenceBackend>) | undefined;
  #params: PipelineParameters;
  #limits: Required<VolumeLimits>;
  #maxQueue: number;
  #timeoutMs: number | undefined;
  #waiting: QueuedRun[] = [];
  #running = 0;
  #idle: (() => void) | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(
    backend: InferenceBackend,
    model: LoadedModel,
    params: PipelineParameters,
    options: SegmenterOptions,
    fallbackReason?: string,
    reopen?: () => Promise<InferenceBackend>,
  ) {
    this.#backend = backend;
    this.#reopen = reopen;
    this.#params = params;
    this.#limits = resolveLimits(options.limits);
    this.#maxQueue = options.maxQueue ?? Infinity;
    this.#timeoutMs = options.timeoutMs;
    this.manifest = model.manifest;
    this.info = {
      backend: backend.name,
      backendDescription: backend.description,
      fallbackReason,
      model: { name: model.manifest.name, source: model.source, sha256: model.sha256, warning: model.manifest.warning },
      pipeline: params,
    };
  }

  /**
   * Loads the model and opens a backend: 'tensorrt' loads `plan` or a cached engine (built on a
   * miss) and fails with the TensorRT layer's error; 'auto' does the same where TensorRT and a GPU
   * are available and otherwise (or when that fails) runs the CPU backend `autoCpuBackend` picks
   * (oneDNN with AVX-512, else onnxruntime; onnxruntime too when oneDNN cannot run the model),
   * recording why not TensorRT in `info.fallbackReason`. `deps` replaces the native TensorRT layer (tests).
   */
  static async create(options: SegmenterOptions = {}, deps: TensorRtDependencies = {}): Promise<Segmenter> {
    if (typeof options !== 'object' || options === null) throw expectedType('an options object', 'options', options);
    const backendChoice = options.backend ?? 'auto';
    if (!['auto', 'onnxruntime', 'onednn', 'tensorrt'].includes(backendChoice)) {
      throw expectedType('"auto", "onnxruntime", "onednn" or "tensorrt"', 'options.backend', backendChoice);
    }
    if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > 1024)) {
      throw expectedRange('an integer in 1..1024', 'options.threads', options.threads);
    }
    if (options.model !== undefined && typeof options.model !== 'string' && typeof options.model !== 'object') {
      throw expectedType('a path or a LoadedModel', 'options.model', options.model);
    }
    checkTensorRtOptions(options);
    checkQueueOptions(options);
    resolveLimits(options.limits);
    const model = typeof options.model === 'object' ? options.model : await loadModel(options.model);
    const params = validatePipelineOverrides(options, model.manifest.pipeline);

    const openTensorRt = (): Promise<InferenceBackend> => {
      // A builtin model's weights as the graph TensorRT runs best (its CPU graph differs).
      const trtModel = tensorRtModel(model);
      return createTensorRtBackend(
        {
          ...(options.plan !== undefined
            ? { planPath: options.plan, onnxSha256: trtModel.sha256 }
            : { model: trtModel, engineCacheDir: options.engineCacheDir }),
          precision: options.precision,
          device: options.device,
          allowEngineHostCode: options.allowEngineHostCode,
          // The sliding window's full batch: a partial last batch is padded to it (stable shapes).
          stableBatch: Math.min(params.swBatchSize, 256),
        },
        deps,
      );
    };

    // oneDNN runs the torch-export-like graph (plain ConvTranspose and PRelu): the same weights.
    const openOnednn = (): InferenceBackend => {
      const { input, output } = model.manifest;
      return createOnednnBackend(tensorRtModel(model).onnx, { inputName: input.name, outputName: output.name }, { threads: options.threads });
    };

    let backend: InferenceBackend | undefined;
    let fallbackReason: string | undefined;
    if (backendChoice === 'tensorrt') {
      backend = await openTensorRt();
    } else if (backendChoice === 'onednn') {
      backend = openOnednn();
    } else if (backendChoice === 'auto') {
      const trt = await getTensorRtStatus(undefined, deps);
      if (trt.usable) {
        try {
          backend = await openTensorRt();
        } catch (error) {
          if (!isSpleenTrtError(error)) throw error;
          fallbackReason = `TensorRT backend failed (${error.code}): ${error.message}`;
        }
      } else {
        fallbackReason = trt.reason;
      }
    }
    if (fallbackReason !== undefined) warnFallbackOnce(fallbackReason);
    if (backendChoice === 'auto' && !backend && autoCpuBackend().name === 'onednn') {
      try {
        backend = openOnednn();
      } catch (error) {
        // A model with an operation the oneDNN plan lacks (ERR_BACKEND_UNAVAILABLE): onnxruntime.
        if (!isSpleenTrtError(error)) throw error;
      }
    }
    const reopen = backend?.name === 'tensorrt' ? openTensorRt : undefined;
    backend ??= await createOnnxRuntimeBackend(onnxRuntimeGraph(model), { intraOpThreads: options.threads ?? os.availableParallelism() });
    return new Segmenter(backend, model, params, options, fallbackReason, reopen);
  }

  /** Runs waiting behind the running one. */
  get pending(): number {
    return this.#waiting.length;
  }

  /** Runs in progress (0 or 1: runs on one Segmenter take turns). */
  get running(): number {
    return this.#running;
  }

  /**
   * Segments one volume; runs queue in call order. Every failure is a rejection, caller mistakes
   * included (TypeError / RangeError with a code): ERR_CLOSED after close(), ERR_QUEUE_FULL past
   * `maxQueue`, ERR_ABORTED as soon as `signal` fires (a waiting run never starts), ERR_TIMEOUT past
   * `timeoutMs`, ERR_INPUT_TOO_LARGE past `limits`.
   */
  segment(volume: Volume, options: SegmentOptions = {}): Promise<SegmentResult> {
    if (this.#closed) return Promise.reject(new SpleenTrtError('ERR_CLOSED', 'Segmenter is closed'));
    try {
      validateVolume(volume, this.#limits);
      validateSegmentOptions(options);
      throwIfAborted(options.signal);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#waiting.length >= this.#maxQueue && (this.#running > 0 || this.#waiting.length > 0)) {
      return Promise.reject(new SpleenTrtError('ERR_QUEUE_FULL', `Segmenter queue is full (${this.#waiting.length} waiting, options.maxQueue ${this.#maxQueue})`));
    }
    return new Promise<SegmentResult>((resolve, reject) => {
      const { signal } = options;
      const run: QueuedRun = { volume, options, resolve, reject, unlisten: () => undefined };
      if (signal) {
        const onAbort = (): void => {
          const at = this.#waiting.indexOf(run);
          if (at < 0) return; // started: the pipeline sees the signal itself
          this.#waiting.splice(at, 1);
          reject(new SpleenTrtError('ERR_ABORTED', 'The operation was aborted while queued', { cause: signal.reason }));
          this.#settleIdle();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        run.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      this.#waiting.push(run);
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#running > 0) return;
    const run = this.#waiting.shift();
    if (!run) {
      this.#settleIdle();
      return;
    }
    run.unlisten();
    this.#running = 1;
    const timeoutMs = run.options.timeoutMs ?? this.#timeoutMs;
    const { promise, done } = this.#start(run.volume, run.options, timeoutMs);
    promise.then(run.resolve, run.reject);
    // The next run starts when this one's computation has really stopped (a timed-out run keeps
    // the backend until its current batch ends).
    void done.then(() => {
      this.#running = 0;
      this.#pump();
    });
  }

  #start(volume: Volume, options: SegmentOptions, timeoutMs: number | undefined): { promise: Promise<SegmentResult>; done: Promise<unknown> } {
    if (timeoutMs === undefined) {
      const promise = this.#segmentNow(volume, options);
      return { promise, done: promise.catch(() => undefined) };
    }
    const controller = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
    const work = this.#segmentNow(volume, { ...options, signal });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new SpleenTrtError('ERR_TIMEOUT', `segment() did not finish within ${timeoutMs} ms`);
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    const promise = Promise.race([work, timeout]).finally(() => clearTimeout(timer));
    return { promise, done: work.catch(() => undefined).finally(() => clearTimeout(timer)) };
  }

  async #segmentNow(volume: Volume, options: SegmentOptions): Promise<SegmentResult> {
    // A GPU fault left no backend: open a fresh one (a new engine and CUDA state) for this run.
    this.#backend ??= await this.#reopen!();
    const backend = this.#backend;
    try {
      return await segmentVolume(volume, backend, this.#params, options, this.#limits);
    } catch (error) {
      // ERR_GPU_FAULT: a sticky CUDA error made this engine unusable for good. This run fails
      // with it; the next one recreates the backend (if the fault persists, so does the error).
      if (isSpleenTrtError(error, 'ERR_GPU_FAULT') && this.#reopen !== undefined) {
        this.#backend = undefined;
        await backend.close().catch(() => undefined);
      }
      throw error;
    }
  }

  #settleIdle(): void {
    if (this.#running === 0 && this.#waiting.length === 0) {
      this.#idle?.();
      this.#idle = undefined;
    }
  }

  /** Waits for queued and running runs, then frees the backend. Idempotent. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      const drained =
        this.#running === 0 && this.#waiting.length === 0
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              this.#idle = resolve;
            });
      this.#closing = drained.then(() => this.#backend?.close());
    }
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
