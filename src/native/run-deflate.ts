/**
 * The addon's DEFLATE encoder for label maps (native/core/run_deflate.cc): a segmentation mask is
 * long runs of a few stored words, which it encodes as 258-byte matches at the word's distance
 * straight from the C-order labels, several times faster than zlib at level 1 and smaller, on the
 * libuv thread pool. It needs no optional library; without the addon the writer keeps zlib.
 * `SPLEEN_TRT_JS_KERNELS=1`, which makes the pipeline run its TS loops, switches it off too, so
 * the `unit-ts-kernels` tests cover the writer's zlib-only path.
 */
import { loadAddon } from './addon.js';

/** A raw DEFLATE segment (ending in a sync flush, or final) with the CRC-32 (from 0) and length of what it inflates to. */
export interface DeflatedSegment {
  deflated: Uint8Array;
  crc: number;
  length: number;
}

export interface RunDeflate {
  /**
   * File-order planes [planeBegin, planeEnd) of C-order `labels` (plane p: slice p % dims[2] of
   * channel p / dims[2]), each label v stored as words[v * wordBytes ..], as one DEFLATE segment;
   * null once it would be longer than maxOutput. `labels` must not change before it settles.
   */
  deflateLabelPlanes(
    labels: Uint8Array, dims: readonly [number, number, number], channels: number, planeBegin: number, planeEnd: number,
    words: Uint8Array, wordBytes: number, final: boolean, maxOutput: number,
  ): Promise<DeflatedSegment | null>;
  /** zlib's crc32_combine: the CRC-32 of A then B. */
  crc32Combine(crc1: number, crc2: number, length2: number): number;
}

let enabled = process.env.SPLEEN_TRT_JS_KERNELS !== '1';
let loaded: RunDeflate | null | undefined;

function isRunDeflate(value: unknown): value is RunDeflate {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return typeof record.deflateLabelPlanes === 'function' && typeof record.crc32Combine === 'function';
}

/** The encoder, or null where the addon is missing, predates it, or it is switched off. */
export function runDeflate(): RunDeflate | null {
  if (!enabled) return null;
  if (loaded === undefined) {
    const exported = (loadAddon() as { runDeflate?: unknown } | null)?.runDeflate;
    loaded = isRunDeflate(exported) ? exported : null;
  }
  return loaded;
}

/** Turns the encoder off (zlib compresses everything) or back on; for tests and A/B benches. */
export function setRunDeflateEnabled(on: boolean): void {
  enabled = on;
}
