/**
 * libdeflate's whole-buffer gzip inflation, from the addon (native/gzip_js.cc), which opens the
 * system's libdeflate.so.0 at run time like TensorRT: no build-time dependency, and where either
 * the addon or the library is missing, .nii.gz is inflated by Node's zlib as before (same bytes,
 * only slower). It runs on the libuv thread pool. Writing does not use it (gzip-pieces.ts): on
 * masks libdeflate compressed 3-5x slower than zlib here (they go to the addon's run encoder,
 * run-deflate.ts, everything else to zlib); only the zlib pieces' CRC-32 comes from libdeflate,
 * off the JS thread.
 *
 * `SPLEEN_TRT_NO_LIBDEFLATE=1` (read by the addon when it loads) or setGzipCodecEnabled(false)
 * (for tests that compare the two paths in one process) forces zlib.
 *
 * Ahead of both, where the system has Intel's ISA-L (libisal.so.2, also opened at run time) and
 * the addon's kernels are on, a .nii.gz whose voxels the addon can decode is inflated by ISA-L a
 * megabyte at a time while another thread decodes the slices already inflated
 * (native/core/inflate_decode.h, src/nifti/streamed-decode.ts): the decode then costs almost no
 * time after the inflation. Anything it refuses goes through libdeflate / zlib as before.
 * `SPLEEN_TRT_NO_ISAL=1` (read by the addon) or setIsalEnabled(false) switches it off; with both
 * switches the reader can be forced onto each of the three inflaters (tests, A/B benches).
 */
import { loadAddon } from './addon.js';
import { volumeKernels } from './volume-kernels.js';

export interface GzipCodec {
  available: boolean;
  /** The file the loader mapped, when available. */
  library: string | null;
  /** Why it is unavailable. */
  reason: string | null;
  /** Inflates one whole gzip member that decodes to exactly `size` bytes; rejects otherwise (wrong size, second member, trailing bytes, corrupt). */
  gunzip(input: Uint8Array, size: number): Promise<Uint8Array>;
  /** zlib.crc32(input, crc)'s value, computed on the thread pool; `input` must not change before it settles. */
  crc32(crc: number, input: Uint8Array): Promise<number>;
  /** ISA-L's streaming inflate with the overlapped decode; absent in an addon built before it. */
  isal?: IsalInflater;
}

/** A NIfTI datatype the streamed decode takes (in host byte order). */
export type StreamedVoxelType = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

export interface IsalInflater {
  available: boolean;
  /** The file the loader mapped, when available. */
  library: string | null;
  /** Why it is unavailable. */
  reason: string | null;
  /**
   * Inflates `input` (gzip members back to back, nothing after them) and decodes the voxels at
   * `voxOffset` of the inflated stream into `out` (float32 C order, nibabel's scaling) as the
   * slices arrive. Rejects for anything but a clean stream of at most `maxInflated` bytes that
   * holds all the voxels; `out` is then garbage. Neither array may be touched before it settles.
   */
  inflateDecode(
    input: Uint8Array, maxInflated: number, voxOffset: number, type: StreamedVoxelType,
    dims: readonly [number, number, number], channels: number, slope: number, inter: number, out: Float32Array,
  ): Promise<void>;
}

let enabled = true;
let isalEnabled = true;
let loaded: GzipCodec | null | undefined;

function isGzipCodec(value: unknown): value is GzipCodec {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return typeof record.available === 'boolean' && typeof record.gunzip === 'function' && typeof record.crc32 === 'function';
}

function exported(): GzipCodec | null {
  if (loaded === undefined) {
    const codec = (loadAddon() as { gzipCodec?: unknown } | null)?.gzipCodec;
    loaded = isGzipCodec(codec) ? codec : null;
  }
  return loaded;
}

/** libdeflate's codec, or null where the addon or the library is missing or it is switched off. */
export function gzipCodec(): GzipCodec | null {
  if (!enabled) return null;
  const codec = exported();
  return codec?.available ? codec : null;
}

function isIsalInflater(value: unknown): value is IsalInflater {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return typeof record.available === 'boolean' && typeof record.inflateDecode === 'function';
}

/** Why ISA-L's streamed read is not used, or null when it is. */
function isalUnusedBecause(): string | null {
  if (!isalEnabled) return 'switched off';
  if (loadAddon() === null) return 'the native addon is not loaded';
  const isal = exported()?.isal;
  if (!isIsalInflater(isal)) return 'the loaded addon predates ISA-L support: rebuild it';
  if (!isal.available) return `unavailable: ${isal.reason}`;
  // The decode half is the addon's transpose: with the TS loops forced, the TS loops decode.
  if (volumeKernels() === null) return "the addon's CPU kernels are off";
  return null;
}

/**
 * ISA-L's streaming inflate with the overlapped decode, or null where the addon, the library or
 * the addon's kernels are missing or it is switched off.
 */
export function isalInflater(): IsalInflater | null {
  return isalUnusedBecause() === null ? (exported()?.isal ?? null) : null;
}

function oneShotStatus(): { libdeflate: boolean; reason: string } {
  if (gzipCodec() !== null) return { libdeflate: true, reason: `libdeflate (${exported()?.library})` };
  if (!enabled) return { libdeflate: false, reason: 'zlib (libdeflate switched off)' };
  const codec = exported();
  if (codec === null) return { libdeflate: false, reason: `zlib (${loadAddon() === null ? 'the native addon is not loaded' : 'the loaded addon predates libdeflate support: rebuild it'})` };
  return { libdeflate: false, reason: `zlib (libdeflate unavailable: ${codec.reason})` };
}

/** Which inflater .nii.gz goes through, and why. */
export interface GzipCodecStatus {
  /** The first one a .nii.gz tries: ISA-L streaming into the decode, else libdeflate, else zlib. */
  inflater: 'isa-l' | 'libdeflate' | 'zlib';
  libdeflate: boolean;
  isal: boolean;
  reason: string;
}

/** Which gzip implementation .nii.gz goes through, and why, for `spleen-trt info` and the bench's stamp. */
export function gzipCodecStatus(): GzipCodecStatus {
  const oneShot = oneShotStatus();
  const why = isalUnusedBecause();
  if (why === null) {
    return {
      inflater: 'isa-l',
      libdeflate: oneShot.libdeflate,
      isal: true,
      reason: `ISA-L (${exported()?.isal?.library}), the voxels decoded while it inflates; for the rest ${oneShot.reason}`,
    };
  }
  return { inflater: oneShot.libdeflate ? 'libdeflate' : 'zlib', libdeflate: oneShot.libdeflate, isal: false, reason: `${oneShot.reason}; ISA-L not used (${why})` };
}

/** Turns libdeflate off (zlib runs) or back on; for tests that compare the two. */
export function setGzipCodecEnabled(on: boolean): void {
  enabled = on;
}

/** Turns ISA-L's streamed read off (libdeflate or zlib, then the decode, as before) or back on; for tests and A/Bs. */
export function setIsalEnabled(on: boolean): void {
  isalEnabled = on;
}
