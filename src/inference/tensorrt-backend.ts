/**
 * The GPU backend: a TensorRT engine behind the InferenceBackend interface. The engine comes from
 * plan bytes, a plan file (checked against its sidecar), or the engine cache (built there on a
 * miss). Before anything is deserialized the plan header and sidecar are checked, so a plan from
 * another TensorRT or GPU is an ERR_ENGINE_INCOMPATIBLE naming each mismatch, never a crash.
 *
 * Batching: the first enqueue at a new input shape is slow (TensorRT re-selects kernels and a CUDA
 * graph is per shape), so a partial batch is zero-padded up to a stable size (the largest batch
 * run so far, or `stableBatch`) and the padding's outputs are dropped: windows are independent in
 * eval mode, so results are unchanged. Batches above the profile's max run in chunks.
 */
import { readFile } from 'node:fs/promises';
import { expectedRange, expectedType, SpleenTrtError } from '../errors.js';
import { loadModel, type LoadedModel } from '../model/load-model.js';
import type { Shape3 } from '../volume/volume.js';
import { checkBatchInput } from './check-batch-input.js';
import type { BatchResult, InferenceBackend } from './backend.js';
import { DEFAULT_DYNAMIC_BATCH, DEFAULT_OPT_LEVEL, fromNativeError, MAX_PROFILE_BATCH, type BuildEngineProgress } from './build-engine.js';
import { defaultEngineCacheDir, ensureCachedEngine } from './engine-cache.js';
import { checkSidecar, readSidecar, type EngineSidecar } from './engine-sidecar.js';
import { checkPlanHeader } from './plan-header.js';
import {
  resolveMachineInfo,
  requireTensorRt,
  selectGpu,
  type NativeEngine,
  type TensorRtDependencies,
  type TensorRtPrecision,
} from './tensorrt-native.js';

export interface TensorRtBackendOptions {
  /** A serialized engine in memory (header checked; no sidecar). */
  plan?: Uint8Array;
  /** A plan file; its sidecar `<planPath>.json`, when present, is checked against this machine. */
  planPath?: string;
  /** A model (directory, .onnx, 'default', or loaded) to build or fetch from the engine cache. */
  model?: string | LoadedModel;
  /** The engine cache (with `model`); default `$SPLEEN_TRT_CACHE_DIR` or ~/.cache/spleen-trt/engines. */
  engineCacheDir?: string;
  /** With `planPath`: the sha256 of the ONNX the plan must have been built from (checked against the sidecar). */
  onnxSha256?: string;
  /** With `model`: the engine's precision (default 'fp32'); with `planPath`: checked against the sidecar. */
  precision?: TensorRtPrecision;
  /** With `model`: the profile [min, opt, max] (default [1, 4, 8]). */
  dynamicBatch?: readonly [number, number, number];
  /** With `model`: builder settings for a cache miss. */
  build?: { workspaceBytes?: number; optLevel?: number; versionCompatible?: boolean; hardwareCompat?: 'none' | 'ampere+' };
  /** With `model`: rebuild a stale cache entry (default true); false makes it ERR_ENGINE_INCOMPATIBLE. */
  rebuild?: boolean;
  /** CUDA device index; default 0. */
  device?: number;
  /** Concurrent runs (execution contexts); default 1. */
  contexts?: number;
  /** Replay CUDA graphs per batch size; default true. */
  useCudaGraph?: boolean;
  /**
   * Let TensorRT run host code embedded in the plan (needed for version-compatible plans): that is
   * code from the plan file, so only for plans you trust. Default false for `plan`/`planPath`; for
   * the engine cache's own version-compatible builds, true.
   */
  allowEngineHostCode?: boolean;
  /** Pad every batch up to this size (clamped to the profile); default: the largest batch run so far. */
  stableBatch?: number;
  signal?: AbortSignal;
  /** Progress of an engine build on a cache miss. */
  onBuildProgress?: (progress: BuildEngineProgress) => void;
}

function checkPositiveInteger(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): void {
  if (value === undefined) return;
  if (typeof value !== 'number') throw expectedType('a positive integer', name, value);
  if (!Number.isInteger(value) || value < 1 || value > max) throw expectedRange(`an integer in 1..${max}`, name, value);
}

function checkOptions(options: TensorRtBackendOptions): void {
  if (typeof options !== 'object' || options === null) throw expectedType('an options object', 'options', options);
  const sources = [options.plan, options.planPath, options.model].filter((v) => v !== undefined).length;
  if (sources !== 1) throw expectedType('exactly one of plan, planPath and model', 'options', options);
  if (options.plan !== undefined && !(options.plan instanceof Uint8Array)) throw expectedType('a Uint8Array', 'options.plan', options.plan);
  if (options.planPath !== undefined && (typeof options.planPath !== 'string' || options.planPath === '')) {
    throw expectedType('a file path', 'options.planPath', options.planPath);
  }
  if (options.model !== undefined && typeof options.model !== 'string' && (typeof options.model !== 'object' || options.model === null)) {
    throw expectedType('a model path or a LoadedModel', 'options.model', options.model);
  }
  if (options.engineCacheDir !== undefined && (typeof options.engineCacheDir !== 'string' || options.engineCacheDir === '')) {
    throw expectedType('a directory path', 'options.engineCacheDir', options.engineCacheDir);
  }
  if (options.onnxSha256 !== undefined && (typeof options.onnxSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(options.onnxSha256))) {
    throw expectedType('a sha256 hex digest', 'options.onnxSha256', options.onnxSha256);
  }
  const p = options.precision;
  if (p !== undefined && p !== 'fp32' && p !== 'tf32' && p !== 'fp16') throw expectedRange('"fp32", "tf32" or "fp16"', 'options.precision', p);
  if (options.dynamicBatch !== undefined) {
    const d = options.dynamicBatch;
    if (!Array.isArray(d) || d.length !== 3 || !d.every((v) => Number.isInteger(v) && v >= 1 && v <= MAX_PROFILE_BATCH) || !(d[0] <= d[1] && d[1] <= d[2])) {
      throw expectedRange(`[min, opt, max] integers, 1 <= min <= opt <= max <= ${MAX_PROFILE_BATCH}`, 'options.dynamicBatch', d);
    }
  }
  if (options.device !== undefined && (!Number.isInteger(options.device) || options.device < 0)) {
    throw expectedRange('a non-negative integer', 'options.device', options.device);
  }
  checkPositiveInteger(options.contexts, 'options.contexts', 64);
  checkPositiveInteger(options.stableBatch, 'options.stableBatch', MAX_PROFILE_BATCH);
  if (options.useCudaGraph !== undefined && typeof options.useCudaGraph !== 'boolean') throw expectedType('a boolean', 'options.useCudaGraph', options.useCudaGraph);
  if (options.rebuild !== undefined && typeof options.rebuild !== 'boolean') throw expectedType('a boolean', 'options.rebuild', options.rebuild);
  if (options.allowEngineHostCode !== undefined && typeof options.allowEngineHostCode !== 'boolean') {
    throw expectedType('a boolean', 'options.allowEngineHostCode', options.allowEngineHostCode);
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw expectedType('an AbortSignal', 'options.signal', options.signal);
}

async function readPlan(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `TensorRT plan not found: ${file}`, { cause: error });
    throw new SpleenTrtError('ERR_ENGINE_INCOMPATIBLE', `Cannot read TensorRT plan ${file}: ${(error as Error).message}`, { cause: error });
  }
}

function incompatible(source: string, reasons: string[]): SpleenTrtError {
  return new SpleenTrtError('ERR_ENGINE_INCOMPATIBLE', `${source} cannot run here: ${reasons.join('; ')}`, { details: reasons });
}

/**
 * An InferenceBackend on a TensorRT engine. Throws ERR_TENSORRT_UNAVAILABLE (with the reason)
 * where TensorRT cannot load, ERR_NO_GPU, ERR_FILE_NOT_FOUND, ERR_ENGINE_INCOMPATIBLE (plan header
 * or sidecar mismatch, or a plan TensorRT refuses), and the builder's errors on a cache miss.
 * @example
 * const backend = await createTensorRtBackend({ model: 'default', precision: 'fp16' });
 * const { logits, timings } = await backend.run(windows, 4, [96, 96, 96]);
 * await backend.close();
 */
export async function createTensorRtBackend(options: TensorRtBackendOptions, deps: TensorRtDependencies = {}): Promise<InferenceBackend> {
  checkOptions(options);
  const { native, version: loadedVersion } = await requireTensorRt(deps);
  const device = options.device ?? 0;
  const gpu = selectGpu(await resolveMachineInfo(deps), device);
  const loadOptions = {
    device,
    contexts: options.contexts ?? 1,
    useCudaGraph: options.useCudaGraph ?? true,
    allowHostCode: options.allowEngineHostCode ?? false,
  };

  // `trustedHostCode`: a version-compatible plan this package built into its own engine cache
  // carries TensorRT's lean runtime (host code), which only runs when allowed; a plan handed in
  // from elsewhere runs host code only with allowEngineHostCode.
  const load = async (plan: Uint8Array, source: string, trustedHostCode = false): Promise<NativeEngine> => {
    try {
      return await native.loadEngineNative(plan, { ...loadOptions, allowHostCode: options.allowEngineHostCode ?? trustedHostCode });
    } catch (error) {
      throw fromNativeError(error, 'ERR_ENGINE_INCOMPATIBLE', `TensorRT could not load ${source}`);
    }
  };

  let engine: NativeEngine;
  let sidecar: EngineSidecar | null = null;
  let source: string;
  if (options.plan !== undefined) {
    source = `the plan (${options.plan.length} bytes)`;
    checkPlanHeader(options.plan, loadedVersion, { source });
    engine = await load(options.plan, source);
  } else if (options.planPath !== undefined) {
    source = options.planPath;
    const plan = await readPlan(options.planPath);
    sidecar = await readSidecar(options.planPath);
    if (sidecar) {
      const reasons = checkSidecar(sidecar, { tensorrtVersion: loadedVersion, gpu, precision: options.precision, onnxSha256: options.onnxSha256, plan });
      if (reasons.length > 0) throw incompatible(source, reasons);
    }
    checkPlanHeader(plan, loadedVersion, { source, versionCompatible: sidecar?.build.versionCompatible });
    engine = await load(plan, source);
  } else {
    const model = typeof options.model === 'object' ? options.model : await loadModel(options.model);
    const [min, opt, max] = options.dynamicBatch ?? DEFAULT_DYNAMIC_BATCH;
    const build = options.build ?? {};
    const ensureOptions = {
      dir: options.engineCacheDir ?? defaultEngineCacheDir(),
      onnx: model.onnx,
      onnxSha256: model.sha256,
      precision: options.precision ?? 'fp32',
      profile: { min, opt, max },
      spatialShape: model.manifest.pipeline.roiSize,
      tensorrtVersion: loadedVersion,
      gpu,
      build: {
        workspaceBytes: build.workspaceBytes ?? null,
        optLevel: build.optLevel ?? DEFAULT_OPT_LEVEL,
        versionCompatible: build.versionCompatible ?? false,
        hardwareCompat: build.hardwareCompat ?? 'none',
      },
      allowBuild: options.rebuild !== false,
      signal: options.signal,
      onProgress: options.onBuildProgress,
    } as const;
    let cached = await ensureCachedEngine(ensureOptions, deps);
    source = cached.planPath;
    const ownHostCode = ensureOptions.build.versionCompatible;
    try {
      engine = await load(cached.plan, source, ownHostCode);
    } catch (error) {
      // The sidecar checked out but TensorRT still refused the plan (deserializeCudaEngine null):
      // rebuild once where allowed.
      if (cached.built || options.rebuild === false || (error as SpleenTrtError).code !== 'ERR_ENGINE_INCOMPATIBLE') throw error;
      cached = await ensureCachedEngine({ ...ensureOptions, force: true }, deps);
      engine = await load(cached.plan, source, ownHostCode);
    }
    sidecar = cached.sidecar;
  }

  try {
    return new TensorRtBackend(engine, options.stableBatch, loadOptions.contexts, describe(engine, gpu.name, sidecar, loadOptions));
  } catch (error) {
    await engine.close().catch(() => undefined);
    throw error;
  }
}

function describe(engine: NativeEngine, gpuName: string, sidecar: EngineSidecar | null, load: { contexts: number; useCudaGraph: boolean }): string {
  const { info } = engine;
  const precision = sidecar ? `${sidecar.precision}, ` : '';
  const p = info.profile;
  return (
    `TensorRT ${info.tensorrtVersion} on ${gpuName}, ${precision}batch ${p.min}/${p.opt}/${p.max}, ` +
    `${load.contexts} context${load.contexts > 1 ? 's' : ''}${load.useCudaGraph ? ', CUDA graphs' : ''}, ` +
    `${info.inputName} [${info.inputShapeMax.join(', ')}] -> ${info.outputName} [${info.outputShapeMax.join(', ')}]`
  );
}

/** A FIFO of `size` slots: runs beyond the number of execution contexts wait in call order. */
class Slots {
  #free: number;
  readonly #waiting: Array<() => void> = [];

  constructor(size: number) {
    this.#free = size;
  }

  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

class TensorRtBackend implements InferenceBackend {
  readonly name = 'tensorrt' as const;
  readonly inputName: string;
  readonly outputName: string;
  readonly outputChannels: number;
  readonly description: string;
  readonly #engine: NativeEngine;
  readonly #roi: Shape3;
  readonly #profile: { min: number; opt: number; max: number };
  readonly #stableBatch: number | undefined;
  readonly #slots: Slots;
  readonly #inFlight = new Set<Promise<unknown>>();
  #largestBatch = 0;
  #closing: Promise<void> | undefined;

  constructor(engine: NativeEngine, stableBatch: number | undefined, contexts: number, description: string) {
    const { info } = engine;
    const fail = (what: string): never => {
      throw new SpleenTrtError('ERR_ENGINE_INCOMPATIBLE', `The TensorRT engine is not a segmentation network: ${what}`);
    };
    if (info.inputShapeMax.length !== 5 || info.inputShapeMax[1] !== 1) fail(`input shape [${info.inputShapeMax.join(', ')}], expected [N, 1, d0, d1, d2]`);
    if (!Number.isInteger(info.outputChannels) || info.outputChannels < 1) fail(`${info.outputChannels} output channels`);
    const p = info.profile;
    if (!(p.min >= 1 && p.min <= p.opt && p.opt <= p.max)) fail(`profile ${p.min}/${p.opt}/${p.max}`);
    this.#engine = engine;
    this.inputName = info.inputName;
    this.outputName = info.outputName;
    this.outputChannels = info.outputChannels;
    this.description = description;
    this.#roi = [info.inputShapeMax[2], info.inputShapeMax[3], info.inputShapeMax[4]];
    this.#profile = { ...p };
    this.#stableBatch = stableBatch;
    // One slot per execution context; the native engine gets at most that many runs at once.
    this.#slots = new Slots(contexts);
  }

  /** The batch size a chunk of `count` windows runs at: stable, and inside the profile. */
  #paddedBatch(count: number): number {
    const target = Math.max(count, this.#stableBatch ?? this.#largestBatch);
    return Math.min(this.#profile.max, Math.max(this.#profile.min, target));
  }

  async run(input: Float32Array, batch: number, roi: Shape3): Promise<BatchResult> {
    if (this.#closing) throw new SpleenTrtError('ERR_CLOSED', 'The TensorRT backend is closed');
    const windowSize = checkBatchInput(input, batch, roi);
    if (roi.some((v, i) => v !== this.#roi[i])) {
      throw new SpleenTrtError('ERR_MODEL_INVALID', `The TensorRT engine was built for ${this.#roi.join('x')} windows, not ${roi.join('x')}`);
    }
    this.#largestBatch = Math.max(this.#largestBatch, Math.min(batch, this.#profile.max));
    const task = this.#runChunks(input, batch, windowSize);
    this.#inFlight.add(task);
    try {
      return await task;
    } finally {
      this.#inFlight.delete(task);
    }
  }

  async #runChunks(input: Float32Array, batch: number, windowSize: number): Promise<BatchResult> {
    const outWindow = this.outputChannels * windowSize;
    const logits = new Float32Array(batch * outWindow);
    let h2dMs = 0;
    let computeMs = 0;
    let d2hMs = 0;
    for (let start = 0; start < batch; ) {
      const count = Math.min(this.#profile.max, batch - start);
      const sent = this.#paddedBatch(count);
      let chunk = input.subarray(start * windowSize, (start + count) * windowSize);
      if (sent > count) {
        const padded = new Float32Array(sent * windowSize);
        padded.set(chunk);
        chunk = padded;
      }
      await this.#slots.acquire();
      try {
        let out;
        try {
          out = await this.#engine.run(chunk, sent);
        } catch (error) {
          throw fromNativeError(error, 'ERR_INFERENCE_FAILED', `TensorRT inference failed on a batch of ${sent}`);
        }
        if (!(out.output instanceof Float32Array) || out.output.length !== sent * outWindow) {
          throw new SpleenTrtError(
            'ERR_INFERENCE_FAILED',
            `TensorRT returned ${out.output?.length ?? 0} output values for a batch of ${sent}, expected ${sent * outWindow}`,
          );
        }
        // Copied while the context is held: the output may view staging memory the next run reuses.
        logits.set(out.output.subarray(0, count * outWindow), start * outWindow);
        h2dMs += out.h2dMs;
        computeMs += out.computeMs;
        d2hMs += out.d2hMs;
      } finally {
        this.#slots.release();
      }
      start += count;
    }
    return { logits, timings: { h2dMs, computeMs, d2hMs } };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Runs already accepted finish (their failures belong to their callers), then the engine goes.
      await Promise.allSettled([...this.#inFlight]);
      await this.#engine.close();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
