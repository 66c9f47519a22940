/**
 * The JSON sidecar written next to every plan (`<plan>.json`): what the plan was built from, by
 * which TensorRT, for which GPU, and how. A plan only runs on the TensorRT version and GPU that
 * built it (unless built version- or hardware-compatible), and nothing in the plan says which ONNX
 * or precision it holds, so loading checks the sidecar first and names every mismatch.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { SpleenTrtError } from '../errors.js';
import { sha256Hex } from '../model/load-model.js';
import { parseTensorRtVersion } from './plan-header.js';
import type { BatchProfile, TensorRtPrecision } from './tensorrt-native.js';

export const SIDECAR_FORMAT = 'spleen-trt-engine';
export const SIDECAR_FORMAT_VERSION = 1;

/** Builder settings that change the plan. */
export interface EngineBuildSettings {
  /** Workspace memory-pool limit in bytes; null = TensorRT's default (the device's memory). */
  workspaceBytes: number | null;
  /** Builder optimization level 0..5. */
  optLevel: number;
  /** kVERSION_COMPATIBLE: runs on later TensorRT versions of the same major. */
  versionCompatible: boolean;
  /** Hardware compatibility level: 'ampere+' runs on any GPU of compute capability 8.0 or later. */
  hardwareCompat: 'none' | 'ampere+';
}

export interface EngineSidecar {
  format: typeof SIDECAR_FORMAT;
  formatVersion: typeof SIDECAR_FORMAT_VERSION;
  plan: {
    /** sha256 of the plan file: ties the sidecar to exactly one plan. */
    sha256: string;
    bytes: number;
    /** The version in the plan's header. */
    tensorrtVersion: string;
  };
  onnx: {
    /** sha256 of the ONNX the caller gave (before any rewrite). */
    sha256: string;
    /** sha256 of the ONNX TensorRT parsed (after batch rewrite and fp16 conversion). */
    builtSha256: string;
    inputName: string;
    outputName: string;
    dynamicBatchRewritten: boolean;
    fp16Converted: boolean;
  };
  /** The TensorRT library loaded when building. */
  tensorrtVersion: string;
  gpu: { index: number; name: string; computeCapability: string };
  cuda: { driverVersion: string | null; toolkit: string | null };
  precision: TensorRtPrecision;
  profile: BatchProfile;
  spatialShape: [number, number, number];
  build: EngineBuildSettings;
  packageVersion: string;
  /** ISO 8601 time of the build. */
  createdAt: string;
}

/** The machine a plan is about to be loaded on, plus what the caller expects the plan to be. */
export interface SidecarRuntime {
  /** The loaded TensorRT library's version. */
  tensorrtVersion: string;
  gpu: { name: string; computeCapability: string };
  onnxSha256?: string;
  precision?: TensorRtPrecision;
  profile?: BatchProfile;
  spatialShape?: readonly [number, number, number];
  /** The plan's bytes or their sha256: checked against `plan.sha256`. */
  plan?: Uint8Array | { sha256: string };
}

const require = createRequire(import.meta.url);

/** This package's version (src/inference and dist/inference are both two levels below the root). */
export function packageVersion(): string {
  try {
    return (require('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Where the sidecar of `planPath` lives. */
export function sidecarPathFor(planPath: string): string {
  return `${planPath}.json`;
}

function computeCapabilityNumber(cc: string): number {
  const [major, minor] = cc.split('.').map(Number);
  return major * 10 + (minor ?? 0);
}

/** Compares versions on major.minor.patch. */
function versionOrder(a: string, b: string): number {
  const x = parseTensorRtVersion(a);
  const y = parseTensorRtVersion(b);
  for (let i = 0; i < 3; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const sameProfile = (a: BatchProfile, b: BatchProfile): boolean => a.min === b.min && a.opt === b.opt && a.max === b.max;
const describeProfile = (p: BatchProfile): string => `${p.min}/${p.opt}/${p.max}`;

/**
 * Every reason the plan described by `sidecar` cannot (or should not) be used on `runtime`; an
 * empty list when it can. TensorRT must match on major.minor.patch (version-compatible plans: the
 * same major, built at or below the loaded version); the GPU on name and compute capability
 * ('ampere+' plans: any GPU of compute capability 8.0 or later). A newer driver is no mismatch.
 */
export function checkSidecar(sidecar: EngineSidecar, runtime: SidecarRuntime): string[] {
  const reasons: string[] = [];
  const built = sidecar.tensorrtVersion;
  const loaded = runtime.tensorrtVersion;
  if (sidecar.build.versionCompatible) {
    const sameMajor = parseTensorRtVersion(built)[0] === parseTensorRtVersion(loaded)[0];
    if (!sameMajor || versionOrder(built, loaded) > 0) {
      reasons.push(`TensorRT: built version-compatible by ${built} (runs on ${built.split('.')[0]}.x from ${built} on), loaded ${loaded}`);
    }
  } else if (versionOrder(built, loaded) !== 0) {
    reasons.push(`TensorRT: built by ${built}, loaded ${loaded}`);
  }
  const gpu = runtime.gpu;
  if (sidecar.build.hardwareCompat === 'ampere+') {
    if (computeCapabilityNumber(gpu.computeCapability) < 80) {
      reasons.push(`GPU: built for Ampere or later (compute capability >= 8.0), this GPU is ${gpu.name} (compute ${gpu.computeCapability})`);
    }
  } else {
    if (sidecar.gpu.computeCapability !== gpu.computeCapability) {
      reasons.push(`GPU compute capability: built for ${sidecar.gpu.computeCapability}, this GPU has ${gpu.computeCapability}`);
    }
    if (sidecar.gpu.name !== gpu.name) reasons.push(`GPU: built on ${sidecar.gpu.name}, this GPU is ${gpu.name}`);
  }
  if (runtime.onnxSha256 !== undefined && runtime.onnxSha256 !== sidecar.onnx.sha256) {
    reasons.push(`ONNX: built from sha256 ${sidecar.onnx.sha256}, the model has ${runtime.onnxSha256}`);
  }
  if (runtime.precision !== undefined && runtime.precision !== sidecar.precision) {
    reasons.push(`precision: built ${sidecar.precision}, requested ${runtime.precision}`);
  }
  if (runtime.profile !== undefined && !sameProfile(runtime.profile, sidecar.profile)) {
    reasons.push(`batch profile: built ${describeProfile(sidecar.profile)}, requested ${describeProfile(runtime.profile)}`);
  }
  if (runtime.spatialShape !== undefined && runtime.spatialShape.some((v, i) => v !== sidecar.spatialShape[i])) {
    reasons.push(`window shape: built ${sidecar.spatialShape.join('x')}, requested ${runtime.spatialShape.join('x')}`);
  }
  if (runtime.plan !== undefined) {
    const sha = runtime.plan instanceof Uint8Array ? sha256Hex(runtime.plan) : runtime.plan.sha256;
    if (sha !== sidecar.plan.sha256) reasons.push(`plan file: sha256 ${sha}, the sidecar describes ${sidecar.plan.sha256} (plan replaced or corrupted)`);
  }
  return reasons;
}

// ---------------------------------------------------------------- parsing

type Json = Record<string, unknown>;

function fail(source: string, what: string): never {
  throw new SpleenTrtError('ERR_ENGINE_INCOMPATIBLE', `Engine sidecar ${source} is invalid: ${what}`);
}

function object(value: unknown, source: string, field: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(source, `${field} is not an object`);
  return value as Json;
}

function string(o: Json, key: string, source: string, prefix: string): string {
  const v = o[key];
  if (typeof v !== 'string') fail(source, `${prefix}${key} is not a string`);
  return v;
}

function integer(o: Json, key: string, source: string, prefix: string, min = 0): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) fail(source, `${prefix}${key} is not an integer >= ${min}`);
  return v;
}

function boolean(o: Json, key: string, source: string, prefix: string): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') fail(source, `${prefix}${key} is not a boolean`);
  return v;
}

function version(o: Json, key: string, source: string, prefix: string): string {
  const v = string(o, key, source, prefix);
  if (!/^\d+(\.\d+){1,3}$/.test(v)) fail(source, `${prefix}${key} "${v}" is not a TensorRT version`);
  return v;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** Validates parsed sidecar JSON; throws ERR_ENGINE_INCOMPATIBLE naming the first bad field. */
export function parseSidecar(json: unknown, source = 'sidecar'): EngineSidecar {
  const o = object(json, source, 'the document');
  if (o.format !== SIDECAR_FORMAT) fail(source, `format is ${JSON.stringify(o.format)}, expected "${SIDECAR_FORMAT}"`);
  if (o.formatVersion !== SIDECAR_FORMAT_VERSION) {
    fail(source, `formatVersion ${JSON.stringify(o.formatVersion)} is not ${SIDECAR_FORMAT_VERSION} (written by another spleen-trt version)`);
  }
  const plan = object(o.plan, source, 'plan');
  const onnx = object(o.onnx, source, 'onnx');
  const gpu = object(o.gpu, source, 'gpu');
  const cuda = object(o.cuda, source, 'cuda');
  const profile = object(o.profile, source, 'profile');
  const build = object(o.build, source, 'build');
  for (const [obj, key, prefix] of [
    [plan, 'sha256', 'plan.'],
    [onnx, 'sha256', 'onnx.'],
    [onnx, 'builtSha256', 'onnx.'],
  ] as const) {
    if (!SHA256.test(string(obj, key, source, prefix))) fail(source, `${prefix}${key} is not a sha256 hex digest`);
  }
  const precision = o.precision;
  if (precision !== 'fp32' && precision !== 'tf32' && precision !== 'fp16') fail(source, `precision ${JSON.stringify(precision)} is not fp32, tf32 or fp16`);
  const p = { min: integer(profile, 'min', source, 'profile.', 1), opt: integer(profile, 'opt', source, 'profile.', 1), max: integer(profile, 'max', source, 'profile.', 1) };
  if (!(p.min <= p.opt && p.opt <= p.max)) fail(source, `profile ${describeProfile(p)} is not min <= opt <= max`);
  const spatial = o.spatialShape;
  if (!Array.isArray(spatial) || spatial.length !== 3 || !spatial.every((v) => Number.isSafeInteger(v) && v > 0)) {
    fail(source, 'spatialShape is not 3 positive integers');
  }
  const workspace = build.workspaceBytes;
  if (workspace !== null && (typeof workspace !== 'number' || !Number.isSafeInteger(workspace) || workspace < 0)) {
    fail(source, 'build.workspaceBytes is not null or a byte count');
  }
  const hardwareCompat = build.hardwareCompat;
  if (hardwareCompat !== 'none' && hardwareCompat !== 'ampere+') fail(source, 'build.hardwareCompat is not "none" or "ampere+"');
  const nullableString = (obj: Json, key: string, prefix: string): string | null => {
    const v = obj[key];
    if (v !== null && typeof v !== 'string') fail(source, `${prefix}${key} is not a string or null`);
    return v;
  };
  const cc = string(gpu, 'computeCapability', source, 'gpu.');
  if (!/^\d+\.\d+$/.test(cc)) fail(source, `gpu.computeCapability "${cc}" is not "major.minor"`);
  return {
    format: SIDECAR_FORMAT,
    formatVersion: SIDECAR_FORMAT_VERSION,
    plan: { sha256: plan.sha256 as string, bytes: integer(plan, 'bytes', source, 'plan.'), tensorrtVersion: version(plan, 'tensorrtVersion', source, 'plan.') },
    onnx: {
      sha256: onnx.sha256 as string,
      builtSha256: onnx.builtSha256 as string,
      inputName: string(onnx, 'inputName', source, 'onnx.'),
      outputName: string(onnx, 'outputName', source, 'onnx.'),
      dynamicBatchRewritten: boolean(onnx, 'dynamicBatchRewritten', source, 'onnx.'),
      fp16Converted: boolean(onnx, 'fp16Converted', source, 'onnx.'),
    },
    tensorrtVersion: version(o, 'tensorrtVersion', source, ''),
    gpu: { index: integer(gpu, 'index', source, 'gpu.'), name: string(gpu, 'name', source, 'gpu.'), computeCapability: cc },
    cuda: { driverVersion: nullableString(cuda, 'driverVersion', 'cuda.'), toolkit: nullableString(cuda, 'toolkit', 'cuda.') },
    precision,
    profile: p,
    spatialShape: [spatial[0], spatial[1], spatial[2]],
    build: {
      workspaceBytes: workspace as number | null,
      optLevel: integer(build, 'optLevel', source, 'build.'),
      versionCompatible: boolean(build, 'versionCompatible', source, 'build.'),
      hardwareCompat,
    },
    packageVersion: string(o, 'packageVersion', source, ''),
    createdAt: string(o, 'createdAt', source, ''),
  };
}

/** The sidecar as written to disk: stable key order, two-space indent, trailing newline. */
export function serializeSidecar(sidecar: EngineSidecar): string {
  return `${JSON.stringify(sidecar, null, 2)}\n`;
}

/**
 * Reads and validates `<planPath>.json`; null when there is none (a plan from elsewhere, e.g.
 * trtexec). Throws ERR_ENGINE_INCOMPATIBLE for a sidecar that is not valid JSON or not a sidecar.
 */
export async function readSidecar(planPath: string): Promise<EngineSidecar | null> {
  const file = sidecarPathFor(planPath);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SpleenTrtError('ERR_ENGINE_INCOMPATIBLE', `Cannot read engine sidecar ${file}: ${(error as Error).message}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SpleenTrtError('ERR_ENGINE_INCOMPATIBLE', `Engine sidecar ${file} is not valid JSON`, { cause: error });
  }
  return parseSidecar(json, file);
}
