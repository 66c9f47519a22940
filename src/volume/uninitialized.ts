/**
 * Typed arrays whose contents are whatever the allocator gives (Buffer.allocUnsafeSlow, not
 * pooled), for a kernel or a read that writes every element: a large volume then costs no
 * zero-filling pass over its memory before the writer's own pass, and its pages are faulted in
 * as huge pages where the kernel allows (src/native/memory.ts). It also spares the JS thread a
 * clearing pass: below glibc's mmap threshold (up to 32 MB) a zeroed array comes from reused heap
 * memory that must be cleared there (5-13 ms for a 512x512x90 label map, measured).
 */
import { adviseHugePages } from '../native/memory.js';

/** `length` uninitialised bytes; `hugePages: false` leaves out the advice. */
export function uninitializedBytes(length: number, { hugePages = true }: { hugePages?: boolean } = {}): Uint8Array {
  const buffer = Buffer.allocUnsafeSlow(length);
  if (hugePages) adviseHugePages(buffer);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
}

/** `count` uninitialised float32 values; `hugePages: false` leaves out the advice. */
export function uninitializedFloats(count: number, options: { hugePages?: boolean } = {}): Float32Array {
  const bytes = uninitializedBytes(count * 4, options);
  return new Float32Array(bytes.buffer, bytes.byteOffset, count);
}
