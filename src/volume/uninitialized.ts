import { volumeKernels } from '../native/volume-kernels.js';

/**
 * Below this a volume is not worth the advice: a few huge pages at most, and small arrays come
 * from the allocator's heap, already touched.
 */
const HUGE_PAGES_FROM_BYTES = 8 << 20;

/**
 * Asks for transparent huge pages behind a large array that is about to be written in full for the
 * first time (the addon's madvise; nothing without it or off Linux): the first touch of a 67 MB
 * accumulator then takes ~30 page faults instead of ~16,000, about half the time (measured in
 * bench/gpu-pace.mjs). Only for arrays that will be written throughout: a sparsely written one
 * would take 2 MiB of memory per touched place.
 */
function adviseHugePages(array: Float32Array): Float32Array {
  if (array.byteLength >= HUGE_PAGES_FROM_BYTES) volumeKernels()?.adviseHugePages(array);
  return array;
}

/**
 * A Float32Array whose contents are whatever the allocator gives (Buffer.allocUnsafeSlow, not
 * pooled), for a kernel that writes every element: a large volume then costs no zero-filling pass
 * over its memory before the kernel's own pass. Backed by huge pages where that helps.
 */
export function uninitializedFloats(count: number): Float32Array {
  const buffer = Buffer.allocUnsafeSlow(count * 4);
  return adviseHugePages(new Float32Array(buffer.buffer, buffer.byteOffset, count));
}

/** A zeroed Float32Array (new Float32Array) that will be written throughout, backed by huge pages where that helps. */
export function zeroedFloats(count: number): Float32Array {
  return adviseHugePages(new Float32Array(count));
}
