/**
 * The fixed header of a serialized TensorRT engine ("plan"): a little-endian uint32 0x74727466
 * ("ftrt" as bytes) at offset 0, the serialization version as a uint32 at offset 4, and, when that
 * is 0, the TensorRT major.minor.patch.build that built it as four bytes at offset 24 (trtexec's
 * samples/common/sampleEngines.cpp reads them there only then: "Blob index to store the plan
 * version may depend on the serialization version"; design/tensorrt.md). Reading it before deserializing turns "wrong file" and
 * "wrong TensorRT" into a clear ERR_ENGINE_INCOMPATIBLE instead of a null engine and a log line.
 */
import { expectedType, SpleenTrtError } from '../errors.js';

/** The plan magic as a little-endian uint32 (the bytes "ftrt"). */
export const PLAN_MAGIC = 0x74727466;
/** Offset of the serialization version (uint32, little-endian). */
export const PLAN_SERIALIZATION_VERSION_OFFSET = 4;
/** Offset of the four version bytes (major, minor, patch, build) in serialization version 0. */
export const PLAN_VERSION_OFFSET = 24;
/** Bytes a plan needs for its header to be read. */
export const PLAN_HEADER_BYTES = PLAN_VERSION_OFFSET + 4;

export interface PlanHeader {
  /** The header layout's version; only 0 is known to keep the TensorRT version at bytes 24..27. */
  serializationVersion: number;
  /** "major.minor.patch.build" of the TensorRT that built the plan; null when the layout is unknown. */
  tensorrtVersion: string | null;
  major: number | null;
  minor: number | null;
  patch: number | null;
  build: number | null;
}

/**
 * Reads a plan's header. Throws ERR_ENGINE_INCOMPATIBLE ("not a TensorRT plan") for bytes that
 * are too short or lack the magic.
 */
export function parsePlanHeader(plan: Uint8Array, source = 'the plan'): PlanHeader {
  if (!(plan instanceof Uint8Array)) throw expectedType('a Uint8Array', 'plan', plan);
  if (plan.length < PLAN_HEADER_BYTES) {
    throw new SpleenTrtError(
      'ERR_ENGINE_INCOMPATIBLE',
      `${source} is not a TensorRT plan: ${plan.length} bytes, a plan header alone has ${PLAN_HEADER_BYTES}`,
    );
  }
  const view = new DataView(plan.buffer, plan.byteOffset, plan.byteLength);
  const magic = view.getUint32(0, true);
  if (magic !== PLAN_MAGIC) {
    const hex = `0x${magic.toString(16).padStart(8, '0')}`;
    throw new SpleenTrtError('ERR_ENGINE_INCOMPATIBLE', `${source} is not a TensorRT plan: magic ${hex}, expected 0x74727466 ("ftrt")`);
  }
  const serializationVersion = view.getUint32(PLAN_SERIALIZATION_VERSION_OFFSET, true);
  if (serializationVersion !== 0) {
    return { serializationVersion, tensorrtVersion: null, major: null, minor: null, patch: null, build: null };
  }
  const [major, minor, patch, build] = plan.subarray(PLAN_VERSION_OFFSET, PLAN_HEADER_BYTES);
  return { serializationVersion, tensorrtVersion: `${major}.${minor}.${patch}.${build}`, major, minor, patch, build };
}

/** "10.3.0" or "10.3.0.26" as numbers; throws a TypeError for anything else. */
export function parseTensorRtVersion(version: string, name = 'version'): number[] {
  if (typeof version !== 'string' || !/^\d+(\.\d+){1,3}$/.test(version)) {
    throw expectedType('a TensorRT version "major.minor[.patch[.build]]"', name, version);
  }
  return version.split('.').map(Number);
}

/** Negative, zero or positive as `a` is below, equal to or above `b` over their first `parts` numbers. */
function compareVersions(a: number[], b: number[], parts: number): number {
  for (let i = 0; i < parts; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export interface PlanCompatibilityOptions {
  /**
   * The plan was built version-compatible (kVERSION_COMPATIBLE): it runs on the same major
   * version, at the building version or later.
   */
  versionCompatible?: boolean;
}

/**
 * Why a plan built by `header` cannot be deserialized by the loaded TensorRT `loadedVersion`, or
 * null when it can. A plan only works with the TensorRT version that built it (major.minor.patch),
 * unless it was built version-compatible. A header of an unknown layout (serialization version
 * other than 0) gives no version to compare: null, and TensorRT's deserialization decides.
 */
export function planVersionMismatch(header: PlanHeader, loadedVersion: string, options: PlanCompatibilityOptions = {}): string | null {
  const loaded = parseTensorRtVersion(loadedVersion, 'loadedVersion');
  if (header.tensorrtVersion === null) return null;
  const built = [header.major ?? 0, header.minor ?? 0, header.patch ?? 0, header.build ?? 0];
  if (options.versionCompatible) {
    if (built[0] === loaded[0] && compareVersions(built, loaded, 3) <= 0) return null;
    return `built version-compatible by TensorRT ${header.tensorrtVersion}, which runs on ${header.major}.x from ${header.major}.${header.minor}.${header.patch} on; loaded ${loadedVersion}`;
  }
  if (compareVersions(built, loaded, 3) === 0) return null;
  return `built by TensorRT ${header.tensorrtVersion}, loaded ${loadedVersion}`;
}

/**
 * Parses the header and checks it against the loaded TensorRT; returns the header or throws
 * ERR_ENGINE_INCOMPATIBLE ("not a TensorRT plan", "built by TensorRT X, loaded Y").
 * @example
 * checkPlanHeader(readFileSync('spleen.plan'), '10.3.0'); // throws unless built by 10.3.0
 */
export function checkPlanHeader(plan: Uint8Array, loadedVersion: string, options: PlanCompatibilityOptions & { source?: string } = {}): PlanHeader {
  const source = options.source ?? 'the plan';
  const header = parsePlanHeader(plan, source);
  const mismatch = planVersionMismatch(header, loadedVersion, options);
  if (mismatch) throw new SpleenTrtError('ERR_ENGINE_INCOMPATIBLE', `${source} was ${mismatch}`);
  return header;
}
