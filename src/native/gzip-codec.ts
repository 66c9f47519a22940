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
 */
import { loadAddon } from './addon.js';

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
}

let enabled = true;
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

/** Which gzip implementation .nii.gz goes through, and why, for `spleen-trt info` and the bench's stamp. */
export function gzipCodecStatus(): { libdeflate: boolean; reason: string } {
  if (gzipCodec() !== null) return { libdeflate: true, reason: `libdeflate (${exported()?.library})` };
  if (!enabled) return { libdeflate: false, reason: 'zlib (libdeflate switched off)' };
  const codec = exported();
  if (codec === null) return { libdeflate: false, reason: `zlib (${loadAddon() === null ? 'the native addon is not loaded' : 'the loaded addon predates libdeflate support: rebuild it'})` };
  return { libdeflate: false, reason: `zlib (libdeflate unavailable: ${codec.reason})` };
}

/** Turns libdeflate off (zlib runs) or back on; for tests that compare the two. */
export function setGzipCodecEnabled(on: boolean): void {
  enabled = on;
}
