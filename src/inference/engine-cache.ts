/**
 * The engine cache: one plan (+ sidecar) per combination of everything that makes a plan valid,
 * under a directory (default `$SPLEEN_TRT_CACHE_DIR`, else `~/.cache/spleen-trt/engines`). The file
 * name carries a sha256 of those inputs, so a changed model, precision, profile, window, TensorRT
 * version, GPU or builder setting simply misses and builds a new entry; an entry whose plan or
 * sidecar no longer checks out (corrupted, replaced, copied from another machine) is rebuilt when
 * the caller allows it, else reported as ERR_ENGINE_INCOMPATIBLE with every reason.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SpleenTrtError } from '../errors.js';
import { buildEngine, type BuildEngineProgress } from './build-engine.js';
import { checkSidecar, readSidecar, type EngineBuildSettings, type EngineSidecar } from './engine-sidecar.js';
import { parsePlanHeader, parseTensorRtVersion, planVersionMismatch } from './plan-header.js';
import type { BatchProfile, TensorRtDependencies, TensorRtPrecision } from './tensorrt-native.js';

/**
 * Bump when the package changes what it feeds TensorRT for the same inputs (the fp16 conversion,
 * the batch rewrite): old entries then miss instead of being reused.
 */
export const ENGINE_CACHE_LAYOUT = 1;

/** Everything a cached plan's validity depends on. */
export interface EngineCacheKeyInput {
  onnxSha256: string;
  precision: TensorRtPrecision;
  profile: BatchProfile;
  spatialShape: readonly [number, number, number];
  /** The loaded TensorRT library's version; only major.minor.patch counts. */
  tensorrtVersion: string;
  gpu: { name: string; computeCapability: string };
  build: EngineBuildSettings;
}

/** The cache directory: `$SPLEEN_TRT_CACHE_DIR`, else `~/.cache/spleen-trt/engines`. */
export function defaultEngineCacheDir(env: NodeJS.ProcessEnv = process.env, home: string = os.homedir()): string {
  const fromEnv = env.SPLEEN_TRT_CACHE_DIR;
  if (fromEnv !== undefined && fromEnv !== '') return path.resolve(fromEnv);
  return path.join(home, '.cache', 'spleen-trt', 'engines');
}

/**
 * sha256 (hex) of the key inputs in a fixed order. A hardware-compatible ('ampere+') plan does
 * not depend on the GPU model, so the GPU is left out of its key.
 */
export function engineCacheKey(input: EngineCacheKeyInput): string {
  const [major, minor, patch] = parseTensorRtVersion(input.tensorrtVersion, 'tensorrtVersion');
  const parts = [
    ['layout', ENGINE_CACHE_LAYOUT],
    ['onnx', input.onnxSha256],
    ['precision', input.precision],
    ['profile', [input.profile.min, input.profile.opt, input.profile.max]],
    ['spatialShape', [...input.spatialShape]],
    ['tensorrt', `${major}.${minor}.${patch ?? 0}`],
    ['gpu', input.build.hardwareCompat === 'ampere+' ? 'ampere+' : [input.gpu.name, input.gpu.computeCapability]],
    ['workspaceBytes', input.build.workspaceBytes],
    ['optLevel', input.build.optLevel],
    ['versionCompatible', input.build.versionCompatible],
    ['hardwareCompat', input.build.hardwareCompat],
  ];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** `<dir>/<onnx sha256 prefix>-<precision>-<key prefix>.plan`: readable, and unique per key. */
export function engineCachePlanPath(dir: string, input: EngineCacheKeyInput): string {
  const key = engineCacheKey(input);
  return path.join(dir, `${input.onnxSha256.slice(0, 12)}-${input.precision}-${key.slice(0, 24)}.plan`);
}

/**
 * The timing cache shared by every build for one TensorRT version and GPU, in the cache dir.
 * Concurrent builds each write back what they started from plus their own timings (atomically):
 * the last one wins, which can drop the other's new entries but never corrupts the file.
 */
export function engineCacheTimingCachePath(dir: string, input: Pick<EngineCacheKeyInput, 'tensorrtVersion' | 'gpu'>): string {
  const id = createHash('sha256')
    .update(JSON.stringify([input.tensorrtVersion, input.gpu.name, input.gpu.computeCapability]))
    .digest('hex')
    .slice(0, 16);
  return path.join(dir, `timing-${id}.cache`);
}

export type EngineCacheLookup =
  | { status: 'hit'; planPath: string; plan: Uint8Array; sidecar: EngineSidecar }
  | { status: 'miss'; planPath: string }
  | { status: 'stale'; planPath: string; reasons: string[] };

/**
 * Looks an entry up and checks it: the plan exists, its sidecar is valid and matches the key's
 * inputs and the plan's bytes, and the plan's header names a loadable TensorRT version.
 */
export async function lookupCachedEngine(dir: string, input: EngineCacheKeyInput): Promise<EngineCacheLookup> {
  const planPath = engineCachePlanPath(dir, input);
  let plan: Uint8Array;
  try {
    plan = new Uint8Array(await readFile(planPath));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'miss', planPath };
    return { status: 'stale', planPath, reasons: [`cannot read the plan: ${(error as Error).message}`] };
  }
  let sidecar: EngineSidecar | null;
  try {
    sidecar = await readSidecar(planPath);
  } catch (error) {
    return { status: 'stale', planPath, reasons: [(error as Error).message] };
  }
  if (sidecar === null) return { status: 'stale', planPath, reasons: ['the plan has no sidecar'] };
  const reasons = checkSidecar(sidecar, {
    tensorrtVersion: input.tensorrtVersion,
    gpu: input.gpu,
    onnxSha256: input.onnxSha256,
    precision: input.precision,
    profile: input.profile,
    spatialShape: input.spatialShape,
    plan,
  });
  const b = input.build;
  const s = sidecar.build;
  if (s.workspaceBytes !== b.workspaceBytes || s.optLevel !== b.optLevel || s.versionCompatible !== b.versionCompatible || s.hardwareCompat !== b.hardwareCompat) {
    reasons.push(`build settings: built with ${JSON.stringify(s)}, requested ${JSON.stringify(b)}`);
  }
  try {
    const mismatch = planVersionMismatch(parsePlanHeader(plan, planPath), input.tensorrtVersion, { versionCompatible: s.versionCompatible });
    if (mismatch) reasons.push(`plan header: ${mismatch}`);
  } catch (error) {
    reasons.push((error as Error).message);
  }
  if (reasons.length > 0) return { status: 'stale', planPath, reasons };
  return { status: 'hit', planPath, plan, sidecar };
}

export interface EnsureCachedEngineOptions {
  dir: string;
  /** The model's ONNX bytes (built from on a miss) and their sha256. */
  onnx: Uint8Array;
  onnxSha256: string;
  precision: TensorRtPrecision;
  profile: BatchProfile;
  spatialShape: readonly [number, number, number];
  tensorrtVersion: string;
  gpu: { index: number; name: string; computeCapability: string };
  build: EngineBuildSettings;
  /** Build on a miss or a stale entry (default true); false makes those errors. */
  allowBuild?: boolean;
  /** Rebuild even when the entry checks out (after the runtime refused to deserialize it). */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: BuildEngineProgress) => void;
}

export interface EnsureCachedEngineResult {
  planPath: string;
  plan: Uint8Array;
  sidecar: EngineSidecar;
  /** True when this call built the plan. */
  built: boolean;
  /** Why an existing entry was rebuilt. */
  staleReasons?: string[];
}

// Builds in flight in this process, by plan path: a second caller waits for the first build.
const building = new Map<string, Promise<EnsureCachedEngineResult>>();

/**
 * The cached plan for these inputs, building (and caching) it on a miss or a stale entry. Throws
 * ERR_ENGINE_INCOMPATIBLE for a stale entry and ERR_FILE_NOT_FOUND for a miss when
 * `allowBuild` is false; build errors as buildEngine throws them.
 */
export async function ensureCachedEngine(options: EnsureCachedEngineOptions, deps: TensorRtDependencies = {}): Promise<EnsureCachedEngineResult> {
  const lookup: EngineCacheLookup = options.force
    ? { status: 'stale', planPath: engineCachePlanPath(options.dir, options), reasons: ['rebuild requested'] }
    : await lookupCachedEngine(options.dir, options);
  if (lookup.status === 'hit') return { planPath: lookup.planPath, plan: lookup.plan, sidecar: lookup.sidecar, built: false };
  if (options.allowBuild === false) {
    if (lookup.status === 'miss') throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `No cached engine at ${lookup.planPath} and building is not allowed`);
    throw new SpleenTrtError('ERR_ENGINE_INCOMPATIBLE', `The cached engine ${lookup.planPath} cannot be used: ${lookup.reasons.join('; ')}`, {
      details: lookup.reasons,
    });
  }
  const pending = building.get(lookup.planPath);
  if (pending) return pending;
  const task = (async (): Promise<EnsureCachedEngineResult> => {
    const result = await buildEngine(
      {
        onnx: options.onnx,
        output: lookup.planPath,
        precision: options.precision,
        dynamicBatch: [options.profile.min, options.profile.opt, options.profile.max],
        spatialShape: [...options.spatialShape],
        timingCache: engineCacheTimingCachePath(options.dir, options),
        workspaceBytes: options.build.workspaceBytes ?? undefined,
        optLevel: options.build.optLevel,
        versionCompatible: options.build.versionCompatible,
        hardwareCompat: options.build.hardwareCompat,
        device: options.gpu.index,
        signal: options.signal,
        onProgress: options.onProgress,
      },
      deps,
    );
    return {
      planPath: result.planPath,
      plan: result.plan,
      sidecar: result.sidecar,
      built: true,
      staleReasons: lookup.status === 'stale' ? lookup.reasons : undefined,
    };
  })();
  building.set(lookup.planPath, task);
  try {
    return await task;
  } finally {
    building.delete(lookup.planPath);
  }
}
