/**
 * The addon's oneDNN CPU network (native/onednn_js.cc): whether libdnnl (2.x) could be opened at
 * run time, and a network built from an operation list (src/inference/onednn-plan.ts).
 * `SPLEEN_TRT_ONEDNN_LIBRARY` names another library file to open (tests point it at a missing
 * one); it is read once per process, at the first call.
 */
import { SpleenTrtError, type ErrorCode } from '../errors.js';
import type { OnednnNetworkSpec } from '../inference/onednn-plan.js';
import { loadAddon } from './addon.js';

export interface OnednnInfo {
  available: boolean;
  /** "2.6.3" when the library opened. */
  version: string | null;
  path: string | null;
  /** Why it is unavailable ("oneDNN not found: ..."). */
  reason: string | null;
  /** "avx512_core" (16-channel blocks) or "below avx512_core" (8-channel blocks). */
  isa: string | null;
}

export interface OnednnRunResult {
  logits: Float32Array;
  dims: [number, number, number];
  /** The network's own time for this batch (measured on the pool thread, queueing excluded). */
  computeMs: number;
}

export interface OnednnNetworkHandle {
  readonly outputChannels: number;
  /** `[batch][inputChannels][d0][d1][d2]` in; runs on the libuv pool, one run at a time. */
  run(input: Float32Array, batch: number, dims: readonly [number, number, number]): Promise<OnednnRunResult>;
  close(): void;
}

interface OnednnAddon {
  onednnInfo(): OnednnInfo;
  createOnednnNetwork(spec: OnednnNetworkSpec): OnednnNetworkHandle;
}

function addon(): OnednnAddon | null {
  const loaded = loadAddon() as unknown as Partial<OnednnAddon> | null;
  return loaded && typeof loaded.onednnInfo === 'function' ? (loaded as OnednnAddon) : null;
}

/** The oneDNN library's state; unavailable with the reason when the addon itself is missing. */
export function onednnInfo(): OnednnInfo {
  const native = addon();
  if (!native) return { available: false, version: null, path: null, reason: 'the native addon is not loaded', isa: null };
  return native.onednnInfo();
}

/** The addon's coded Error as a SpleenTrtError (its stack then shows the caller). */
export function toSpleenError(error: unknown): unknown {
  const code = (error as { code?: unknown })?.code;
  if (error instanceof Error && typeof code === 'string' && code.startsWith('ERR_')) {
    return new SpleenTrtError(code as ErrorCode, error.message, { cause: error });
  }
  return error;
}

/** Builds the network (ERR_BACKEND_UNAVAILABLE without the addon or oneDNN). */
export function createOnednnNetwork(spec: OnednnNetworkSpec): OnednnNetworkHandle {
  const native = addon();
  if (!native) throw new SpleenTrtError('ERR_BACKEND_UNAVAILABLE', 'oneDNN backend: the native addon is not loaded');
  try {
    return native.createOnednnNetwork(spec);
  } catch (error) {
    throw toSpleenError(error);
  }
}
