// Shared by the tests that hold the addon's CPU kernels against their TS twins.
import { afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { setVolumeKernelsEnabled, volumeKernels, type VolumeKernels } from '../../src/native/volume-kernels.js';
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

/** The addon's kernels; a test that needs them fails here when the addon has none. */
export function kernels(): VolumeKernels {
  const loaded = volumeKernels();
  if (loaded === null) throw new Error('the addon has no volume kernels');
  return loaded;
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

/** A spleen-like ellipsoid of foreground logits (channel 1; channel 0 zero) on a grid of `shape`, with a noisy shell. */
export function shellLogits(shape: readonly [number, number, number], seed: number): Float32Array {
  const [n0, n1, n2] = shape;
  const n = n0 * n1 * n2;
  const logits = new Float32Array(2 * n);
  const random = mulberry32(seed);
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1; j++) {
      for (let k = 0; k < n2; k++) {
        const r = ((i - n0 / 2) / 7) ** 2 + ((j - n1 / 2) / 6) ** 2 + ((k - n2 / 2) / 5) ** 2;
        logits[n + (i * n1 + j) * n2 + k] = (1 - r) * 4 + (random() - 0.5) * 0.3;
      }
    }
  }
  return logits;
}
