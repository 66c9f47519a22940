// Shared by the tests that hold the addon's CPU kernels against their TS twins.
import { afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { setVolumeKernelsEnabled, volumeKernels } from '../../src/native/volume-kernels.js';
import { mulberry32 } from '../../src/phantom/make-phantom.js';
import { ensureAddonBuilt } from './native-test-helpers.js';

/** The addon built, and the kernels on for every test whatever SPLEEN_TRT_JS_KERNELS says (tests switch them themselves). */
export function useNativeKernels(): void {
  beforeAll(() => {
    ensureAddonBuilt();
  });
  beforeEach(() => {
    setVolumeKernelsEnabled(true);
  });
  afterEach(() => {
    setVolumeKernelsEnabled(true);
  });
}

/** Runs `compute` with the native kernels, then with the TS loops. */
export async function bothWays<T>(compute: () => T | Promise<T>): Promise<{ native: T; typescript: T }> {
  setVolumeKernelsEnabled(true);
  expect(volumeKernels()).not.toBeNull();
  const native = await compute();
  setVolumeKernelsEnabled(false);
  expect(volumeKernels()).toBeNull();
  const typescript = await compute();
  setVolumeKernelsEnabled(true);
  return { native, typescript };
}

/** The bytes of a typed array, for bit-for-bit comparison (NaN payloads and -0 included). */
export function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

export function randomFloats(count: number, seed: number, scale: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: count }, () => (random() - 0.5) * scale);
}
