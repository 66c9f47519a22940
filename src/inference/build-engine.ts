/**
 * `buildEngine()`: ONNX -> TensorRT plan + sidecar, the library side of `spleen-trt export`.
 *
 * Everything around the builder happens here, in TS: reading and checking the ONNX, making a
 * static batch dynamic (a 1/4/8 profile needs d[0] == -1), deriving the fp16 ONNX on TensorRT >= 11
 * (strongly typed: no kFP16 flag), the sidecar, and the atomic writes. The native layer only
 * builds, on its own thread, and reports progress.
 */
import { readFile, rm } from 'node:fs/promises';
import { expectedRange, expectedType, isSpleenTrtError, SpleenTrtError, throwIfAborted, type ErrorCode } from '../errors.js';
import { makeBatchDynamic } from '../model/dynamic-batch.js';
import { convertOnnxToFp16 } from '../model/fp16-onnx.js';
import { inspectOnnx } from '../model/inspect-onnx.js';
import { sha256Hex } from '../model/load-model.js';
import { TensorDataType } from '../model/onnx-proto.js';
import { packageVersion, serializeSidecar, sidecarPathFor, type EngineSidecar } from './engine-sidecar.js';
import { parsePlanHeader, parseTensorRtVersion } from './plan-header.js';
import {
  resolveMachineInfo,
  requireTensorRt,
  selectGpu,
  type BatchProfile,
  type NativeBuildResult,
  type TensorRtDependencies,
  type TensorRtPrecision,
} from './tensorrt-native.js';
import { commitTemporary, writeFileAtomic, writeTemporary } from '../write-file-atomic.js';

/** The bundle's trt_export profile: batch 1/4/8. */
export const DEFAULT_DYNAMIC_BATCH: readonly [number, number, number] = Object.freeze([1, 4, 8]) as readonly [number, number, number];
/** The bundle's window, used when the ONNX leaves the spatial dims symbolic. */
export const DEFAULT_SPATIAL_SHAPE: readonly [number, number, number] = Object.freeze([96, 96, 96]) as readonly [number, number, number];
/** TensorRT's default builder optimization level. */
export const DEFAULT_OPT_LEVEL = 3;
/** Largest batch a profile may ask for (8 x 96^3 windows already take 85 MB of I/O buffers). */
export const MAX_PROFILE_BATCH = 256;

export interface BuildEngineProgress {
  /** 'prepare' (ONNX checks and rewrites), the native builder's phases, then 'write'. */
  phase: string;
  current: number;
  total: number;
}

export interface BuildEngineOptions {
  /** The ONNX bytes; or `onnxPath`. */
  onnx?: Uint8Array;
  onnxPath?: string;
  /** Where the plan goes; its sidecar is `<output>.json`. */
  output: string;
  /** 'fp32' (TF32 off: torch-equivalent, the default), 'tf32', or 'fp16'. */
  precision?: TensorRtPrecision;
  /** Profile batch sizes [min, opt, max]; default [1, 4, 8]. */
  dynamicBatch?: readonly [number, number, number];
  /** Window size d0 x d1 x d2 for symbolic spatial dims; default: the ONNX's fixed dims, else 96^3. */
  spatialShape?: readonly [number, number, number];
  /** Timing cache file: read if present, written back (atomically) after the build. */
  timingCache?: string;
  /** Workspace memory-pool limit in bytes; default: TensorRT's (the device's memory). */
  workspaceBytes?: number;
  /** Builder optimization level 0..5; default 3. */
  optLevel?: number;
  versionCompatible?: boolean;
  hardwareCompat?: 'none' | 'ampere+';
  /** CUDA device index; default 0. */
  device?: number;
  signal?: AbortSignal;
  onProgress?: (progress: BuildEngineProgress) => void;
}

export interface BuildEngineResult {
  planPath: string;
  sidecarPath: string;
  plan: Uint8Array;
  sidecar: EngineSidecar;
  /** The builder's log lines (warnings and above). */
  log: string[];
  /** Set when a timing cache file was written. */
  timingCachePath?: string;
}

interface CheckedOptions {
  precision: TensorRtPrecision;
  profile: BatchProfile;
  spatialShape?: [number, number, number];
  workspaceBytes?: number;
  optLevel: number;
  versionCompatible: boolean;
  hardwareCompat: 'none' | 'ampere+';
  device: number;
}

function checkIntegerTriple(value: unknown, name: string, min: number, max: number): [number, number, number] {
  if (!Array.isArray(value) || value.length !== 3) throw expectedType('an array of 3 integers', name, value);
  if (!value.every((v) => Number.isInteger(v) && v >= min && v <= max)) throw expectedRange(`3 integers in ${min}..${max}`, name, value);
  return [value[0], value[1], value[2]];
}

function checkOptions(options: BuildEngineOptions): CheckedOptions {
  if (typeof options !== 'object' || options === null) throw expectedType('an options object', 'options', options);
  const hasBytes = options.onnx !== undefined;
  const hasPath = options.onnxPath !== undefined;
  if (hasBytes === hasPath) throw expectedType('exactly one of onnx (bytes) and onnxPath', 'options', options);
  if (hasBytes && !(options.onnx instanceof Uint8Array)) throw expectedType('a Uint8Array', 'options.onnx', options.onnx);
  if (hasPath && (typeof options.onnxPath !== 'string' || options.onnxPath === '')) throw expectedType('a file path', 'options.onnxPath', options.onnxPath);
  if (typeof options.output !== 'string' || options.output === '') throw expectedType('a file path', 'options.output', options.output);
  const precision = options.precision ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'tf32' && precision !== 'fp16') throw expectedRange('"fp32", "tf32" or "fp16"', 'options.precision', precision);
  const [min, opt, max] = checkIntegerTriple(options.dynamicBatch ?? DEFAULT_DYNAMIC_BATCH, 'options.dynamicBatch', 1, MAX_PROFILE_BATCH);
  if (!(min <= opt && opt <= max)) throw expectedRange('min <= opt <= max', 'options.dynamicBatch', options.dynamicBatch);
  const spatialShape = options.spatialShape === undefined ? undefined : checkIntegerTriple(options.spatialShape, 'options.spatialShape', 1, 4096);
  if (options.timingCache !== undefined && (typeof options.timingCache !== 'string' || options.timingCache === '')) {
    throw expectedType('a file path', 'options.timingCache', options.timingCache);
  }
  const workspace = options.workspaceBytes;
  if (workspace !== undefined && (!Number.isSafeInteger(workspace) || workspace < 1)) {
    throw expectedRange('a positive integer number of bytes', 'options.workspaceBytes', workspace);
  }
  const optLevel = options.optLevel ?? DEFAULT_OPT_LEVEL;
  if (!Number.isInteger(optLevel) || optLevel < 0 || optLevel > 5) throw expectedRange('an integer in 0..5', 'options.optLevel', optLevel);
  const versionCompatible = options.versionCompatible ?? false;
  if (typeof versionCompatible !== 'boolean') throw expectedType('a boolean', 'options.versionCompatible', versionCompatible);
  const hardwareCompat = options.hardwareCompat ?? 'none';
  if (hardwareCompat !== 'none' && hardwareCompat !== 'ampere+') throw expectedRange('"none" or "ampere+"', 'options.hardwareCompat', hardwareCompat);
  const device = options.device ?? 0;
  if (!Number.isInteger(device) || device < 0) throw expectedRange('a non-negative integer', 'options.device', device);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw expectedType('an AbortSignal', 'options.signal', options.signal);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw expectedType('a function', 'options.onProgress', options.onProgress);
  return { precision, profile: { min, opt, max }, spatialShape, workspaceBytes: workspace, optLevel, versionCompatible, hardwareCompat, device };
}

async function readOnnx(options: BuildEngineOptions): Promise<Uint8Array> {
  if (options.onnx) return options.onnx;
  const file = options.onnxPath as string;
  try {
    return new Uint8Array(await readFile(file));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `ONNX model not found: ${file}`, { cause: error });
    throw new SpleenTrtError('ERR_MODEL_INVALID', `Cannot read ONNX model ${file}: ${(error as Error).message}`, { cause: error });
  }
}

/** The model's one input/output, checked for `[N, 1, d0, d1, d2] -> [N, C, d0, d1, d2]` float32. */
function inspectSegmentationOnnx(onnx: Uint8Array, requested: [number, number, number] | undefined) {
  const summary = inspectOnnx(onnx);
  const fail = (what: string): never => {
    throw new SpleenTrtError('ERR_MODEL_INVALID', `The ONNX model is not a volumetric segmentation network: ${what}`);
  };
  if (summary.inputs.length !== 1) fail(`expected 1 input, found ${summary.inputs.length}`);
  if (summary.outputs.length !== 1) fail(`expected 1 output, found ${summary.outputs.length}`);
  const [input] = summary.inputs;
  const [output] = summary.outputs;
  for (const [role, v] of [
    ['input', input],
    ['output', output],
  ] as const) {
    if (v.elemType !== TensorDataType.FLOAT) fail(`${role} ${v.name} has data type ${v.elemType}, expected float32 (1)`);
    if (v.dims === null || v.dims.length !== 5) fail(`${role} ${v.name} is not 5-D [N, C, d0, d1, d2]`);
  }
  const dims = input.dims as Array<number | string | null>;
  if (typeof dims[1] === 'number' && dims[1] !== 1) fail(`input ${input.name} has ${dims[1]} channels, expected 1`);
  const fixed = dims.slice(2).map((d) => (typeof d === 'number' && d > 0 ? d : null));
  let spatialShape: [number, number, number];
  if (fixed.every((d) => d !== null)) {
    spatialShape = fixed as [number, number, number];
    if (requested && requested.some((v, i) => v !== spatialShape[i])) {
      fail(`input ${input.name} is fixed at ${spatialShape.join('x')}, not the requested ${requested.join('x')}`);
    }
  } else {
    spatialShape = requested ?? [...DEFAULT_SPATIAL_SHAPE];
    fixed.forEach((d, i) => {
      if (d !== null && d !== spatialShape[i]) fail(`input ${input.name} has spatial dim ${i} fixed at ${d}, not ${spatialShape[i]}`);
    });
  }
  return { inputName: input.name, outputName: output.name, spatialShape };
}

async function readTimingCache(file: string): Promise<Uint8Array | undefined> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SpleenTrtError('ERR_BUILD_FAILED', `Cannot read the timing cache ${file}: ${(error as Error).message}`, { cause: error });
  }
}

const NATIVE_CODES = new Set<ErrorCode>([
  'ERR_TENSORRT_UNAVAILABLE',
  'ERR_NO_GPU',
  'ERR_ONNX_PARSE',
  'ERR_BUILD_FAILED',
  'ERR_ENGINE_INCOMPATIBLE',
  'ERR_OUT_OF_MEMORY',
  'ERR_GPU_FAULT',
  'ERR_ABORTED',
  'ERR_CLOSED',
  'ERR_NATIVE_UNAVAILABLE',
  'ERR_INFERENCE_FAILED',
]);

/**
 * A native failure as a SpleenTrtError: src/native/tensorrt.ts already re-creates them in the
 * awaiting function, so those (and caller-mistake TypeError/RangeError) pass through; anything
 * else (a fake, a future native layer) keeps a known `code` or becomes `fallback`.
 */
export function fromNativeError(error: unknown, fallback: ErrorCode, what: string): Error {
  if (isSpleenTrtError(error) || error instanceof TypeError || error instanceof RangeError) return error;
  const e = error as { code?: unknown; message?: unknown; details?: unknown } | null;
  const code = typeof e?.code === 'string' && NATIVE_CODES.has(e.code as ErrorCode) ? (e.code as ErrorCode) : fallback;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const details = Array.isArray(e?.details) ? e.details.filter((d): d is string => typeof d === 'string') : [];
  return new SpleenTrtError(code, code === fallback ? `${what}: ${message}` : message, { cause: error, details });
}

/**
 * Builds a TensorRT plan from an ONNX model and writes it with its sidecar (`<output>.json`),
 * atomically: a failed or aborted build leaves no file. Throws ERR_TENSORRT_UNAVAILABLE (with the
 * reason) where TensorRT cannot be loaded, ERR_NO_GPU, ERR_MODEL_INVALID for an unusable ONNX,
 * ERR_ONNX_PARSE / ERR_BUILD_FAILED / ERR_OUT_OF_MEMORY from the builder, ERR_ABORTED.
 * @example
 * await buildEngine({ onnxPath: 'model.onnx', output: 'spleen.plan', precision: 'fp16', dynamicBatch: [1, 4, 8] });
 */
export async function buildEngine(options: BuildEngineOptions, deps: TensorRtDependencies = {}): Promise<BuildEngineResult> {
  const checked = checkOptions(options);
  const { signal, onProgress } = options;
  throwIfAborted(signal);
  onProgress?.({ phase: 'prepare', current: 0, total: 1 });

  const original = await readOnnx(options);
  const onnxSha256 = sha256Hex(original);
  const io = inspectSegmentationOnnx(original, checked.spatialShape);

  const { native, version: tensorrtVersion } = await requireTensorRt(deps);
  const gpu = selectGpu(await resolveMachineInfo(deps), checked.device);

  const dynamic = makeBatchDynamic(original);
  // TensorRT 11 networks are strongly typed: fp16 must be in the ONNX itself.
  const fp16Converted = checked.precision === 'fp16' && parseTensorRtVersion(tensorrtVersion, 'TensorRT version')[0] >= 11;
  const onnx = fp16Converted ? convertOnnxToFp16(dynamic.onnx) : dynamic.onnx;
  const timingCache = options.timingCache === undefined ? undefined : await readTimingCache(options.timingCache);
  throwIfAborted(signal);
  onProgress?.({ phase: 'prepare', current: 1, total: 1 });

  let result: NativeBuildResult;
  try {
    result = await native.buildEngineNative({
      onnx,
      precision: checked.precision,
      inputName: io.inputName,
      profile: checked.profile,
      spatialShape: io.spatialShape,
      workspaceBytes: checked.workspaceBytes,
      optLevel: checked.optLevel,
      versionCompatible: checked.versionCompatible,
      hardwareCompat: checked.hardwareCompat,
      device: checked.device,
      timingCache,
      signal,
      onProgress: onProgress ? (p) => onProgress({ phase: p.phase, current: p.current, total: p.total }) : undefined,
    });
  } catch (error) {
    throw fromNativeError(error, 'ERR_BUILD_FAILED', 'TensorRT engine build failed');
  }
  // An abort that lands after the builder finished still means "do not write".
  throwIfAborted(signal);
  if (!(result?.plan instanceof Uint8Array) || result.plan.length === 0) {
    throw new SpleenTrtError('ERR_BUILD_FAILED', 'The TensorRT builder returned no plan', { details: result?.log ?? [] });
  }
  let header;
  try {
    header = parsePlanHeader(result.plan, 'the built plan');
  } catch (error) {
    throw new SpleenTrtError('ERR_BUILD_FAILED', (error as Error).message, { cause: error, details: result.log });
  }

  const sidecar: EngineSidecar = {
    format: 'spleen-trt-engine',
    formatVersion: 1,
    // The header names its builder only in serialization version 0; the library that just built it is the same.
    plan: { sha256: sha256Hex(result.plan), bytes: result.plan.length, tensorrtVersion: header.tensorrtVersion ?? (result.tensorrtVersion || tensorrtVersion) },
    onnx: {
      sha256: onnxSha256,
      builtSha256: sha256Hex(onnx),
      inputName: io.inputName,
      outputName: io.outputName,
      dynamicBatchRewritten: dynamic.changed,
      fp16Converted,
    },
    tensorrtVersion: result.tensorrtVersion || tensorrtVersion,
    gpu: { index: gpu.index, name: gpu.name, computeCapability: gpu.computeCapability },
    cuda: { driverVersion: gpu.driverVersion ?? null, toolkit: gpu.cudaToolkit ?? null },
    precision: checked.precision,
    profile: checked.profile,
    spatialShape: io.spatialShape,
    build: {
      workspaceBytes: checked.workspaceBytes ?? null,
      optLevel: checked.optLevel,
      versionCompatible: checked.versionCompatible,
      hardwareCompat: checked.hardwareCompat,
    },
    packageVersion: packageVersion(),
    createdAt: new Date().toISOString(),
  };

  onProgress?.({ phase: 'write', current: 0, total: 1 });
  const planPath = options.output;
  const sidecarPath = sidecarPathFor(planPath);
  // Both files complete on disk before either is renamed into place; the sidecar's plan sha256
  // exposes a mixed pair should the process die between the two renames.
  const planTemporary = await writeTemporary(planPath, result.plan);
  let sidecarTemporary: string;
  try {
    sidecarTemporary = await writeTemporary(sidecarPath, serializeSidecar(sidecar));
  } catch (error) {
    await rm(planTemporary, { force: true });
    throw error;
  }
  try {
    await commitTemporary(planTemporary, planPath);
  } catch (error) {
    await rm(sidecarTemporary, { force: true });
    throw error;
  }
  try {
    await commitTemporary(sidecarTemporary, sidecarPath);
  } catch (error) {
    // A plan whose sidecar could not be written would be loaded unchecked: take it back.
    await rm(planPath, { force: true });
    throw error;
  }

  let timingCachePath: string | undefined;
  if (options.timingCache !== undefined && result.timingCache instanceof Uint8Array && result.timingCache.length > 0) {
    // The native builder loaded the file's content before building and returns the combined cache.
    await writeFileAtomic(options.timingCache, result.timingCache);
    timingCachePath = options.timingCache;
  }
  onProgress?.({ phase: 'write', current: 1, total: 1 });
  return { planPath, sidecarPath, plan: result.plan, sidecar, log: result.log ?? [], timingCachePath };
}
