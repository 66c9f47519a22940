/**
 * Bounded gzip inflation for .nii.gz: the header is inflated first from a prefix of the stream, so
 * the full inflation can be capped at the size that header declares. A gzip bomb or an absurd
 * header then fails with ERR_NIFTI_INVALID instead of exhausting memory.
 */
import { constants as bufferConstants } from 'node:buffer';
import zlib from 'node:zlib';
import { SpleenTrtError } from '../errors.js';
import { gzipCodec } from '../native/gzip-codec.js';
import { invalid } from './nifti-header.js';

/** True for the gzip magic 1f 8b (detected by content, never by file name). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Output cap of one prefix-inflation attempt. */
const PREFIX_OUTPUT_LIMIT = 1 << 16;

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : undefined;
}

function gzipError(error: unknown, maxBytes: number, wanted = maxBytes): Error {
  const code = errorCode(error);
  if (code === 'ERR_BUFFER_TOO_LARGE') {
    if (wanted > maxBytes) {
      return new SpleenTrtError('ERR_OUT_OF_MEMORY', `The image needs ${wanted} bytes inflated, more than one buffer can hold (${maxBytes})`, { cause: error });
    }
    return invalid(`gzip stream inflates to more than ${maxBytes} bytes, more than the header's image needs`, error);
  }
  if (code === 'Z_BUF_ERROR') return invalid('truncated gzip stream (unexpected end of file)', error);
  const message = error instanceof Error ? error.message : String(error);
  return invalid(`corrupt gzip stream (${message})`, error);
}

/**
 * At least `want` leading bytes of the inflated stream (fewer only when the whole stream is
 * shorter). Inflates growing prefixes of the compressed input with Z_SYNC_FLUSH (no error for a
 * cut-off stream), each attempt capped at 64 KiB of output; when a prefix overshoots the cap,
 * bisects between the last too-short and the overshooting prefix length.
 */
export function gunzipPrefix(gz: Uint8Array, want: number): Uint8Array {
  let lo = 0;
  let hi = Number.POSITIVE_INFINITY;
  let n = Math.min(gz.length, 1024);
  for (let attempt = 0; attempt < 200; attempt++) {
    let out: Buffer;
    try {
      out = zlib.gunzipSync(gz.subarray(0, n), {
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
        maxOutputLength: PREFIX_OUTPUT_LIMIT,
      });
    } catch (error) {
      if (errorCode(error) !== 'ERR_BUFFER_TOO_LARGE') throw gzipError(error, PREFIX_OUTPUT_LIMIT);
      hi = n;
      n = Math.floor((lo + hi) / 2);
      if (n <= lo) break;
      continue;
    }
    if (out.length >= want || n >= gz.length) return out;
    lo = n;
    n = hi === Number.POSITIVE_INFINITY ? Math.min(gz.length, n * 4) : Math.floor((lo + hi) / 2);
    if (n <= lo) break;
  }
  throw invalid('could not inflate the start of the gzip stream');
}

/** The most a stream capped at `maxBytes` may inflate to here: the cap, or what one Buffer can hold. */
export function capFor(maxBytes: number): number {
  return Math.min(maxBytes, bufferConstants.MAX_LENGTH);
}

/**
 * Output chunk size for inflating up to `cap` bytes: the whole image in one chunk up to 64 MiB.
 * zlib's default 16 KiB chunks cost a thread-pool round trip each: on a 7.5 MiB CT, 70 ms instead
 * of 35 ms (measured on the project's 2-core VM).
 */
function chunkSizeFor(cap: number): number {
  return Math.max(zlib.constants.Z_DEFAULT_CHUNK, Math.min(cap, 64 << 20));
}

/** Inflates the whole stream, refusing to produce more than `maxBytes`. */
export function gunzipCapped(gz: Uint8Array, maxBytes: number): Uint8Array {
  const cap = capFor(maxBytes);
  try {
    return zlib.gunzipSync(gz, { maxOutputLength: cap, chunkSize: chunkSizeFor(cap) });
  } catch (error) {
    throw gzipError(error, cap, maxBytes);
  }
}

/**
 * The size the gzip trailer declares (ISIZE, the length modulo 2^32), when it can be trusted as
 * the exact size: a cap below 4 GiB makes the modulo unambiguous, and a size over the cap is left
 * to zlib, which fails it with the coded error.
 */
function trailerSize(gz: Uint8Array, cap: number): number | undefined {
  if (gz.length < 20 || cap >= 2 ** 32) return undefined;
  const size = new DataView(gz.buffer, gz.byteOffset + gz.length - 4, 4).getUint32(0, true);
  return size <= cap ? size : undefined;
}

/**
 * As gunzipCapped, off the JS thread (the event loop stays free): libdeflate's one-shot inflate
 * into a buffer of the trailer's size when the addon has it (several times faster than zlib),
 * else zlib on the thread pool. Anything libdeflate does not take exactly (a wrong ISIZE, several
 * members, trailing bytes, a corrupt stream) goes through zlib, so errors and results are zlib's.
 */
export async function gunzipCappedAsync(gz: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  const codec = gzipCodec();
  const size = codec === null ? undefined : trailerSize(gz, capFor(maxBytes));
  if (codec !== null && size !== undefined) {
    try {
      return await codec.gunzip(gz, size);
    } catch {
      // Falls through to zlib, which either reads it or says what is wrong with it.
    }
  }
  return zlibGunzipCappedAsync(gz, maxBytes);
}

/** gunzipCappedAsync through zlib only. */
export function zlibGunzipCappedAsync(gz: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  const cap = capFor(maxBytes);
  return new Promise((resolve, reject) => {
    zlib.gunzip(gz, { maxOutputLength: cap, chunkSize: chunkSizeFor(cap) }, (error, result) => {
      if (error) reject(gzipError(error, cap, maxBytes));
      else resolve(result);
    });
  });
}

/** gzip-compresses synchronously. */
export function gzipSync(bytes: Uint8Array, level: number): Uint8Array {
  return zlib.gzipSync(bytes, { level });
}
