/**
 * Typed arrays whose contents are whatever the allocator gives (Buffer.allocUnsafeSlow, not
 * pooled), for a kernel or a read that writes every element: a large volume then costs no
 * zero-filling pass over its memory before the writer's own pass, and its pages are faulted in
 * as huge pages where the kernel allows (src/native/memory.ts).
 */
import { adviseHugePages } from '../native/memory.js';

/** `length` uninitialised bytes. */
export function uninitializedBytes(length: number): Uint8Array {
  const buffer = Buffer.allocUnsafeSlow(length);
  adviseHugePages(buffer);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
}

/** `count` uninitialised float32 values. */
export function uninitializedFloats(count: number): Float32Array {
  const bytes = uninitializedBytes(count * 4);
  return new Float32Array(bytes.buffer, bytes.byteOffset, count);
}
