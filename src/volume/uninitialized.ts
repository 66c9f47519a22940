/**
 * A Float32Array whose contents are whatever the allocator gives (Buffer.allocUnsafeSlow, not
 * pooled), for a kernel that writes every element: a large volume then costs no zero-filling pass
 * over its memory before the kernel's own pass.
 */
export function uninitializedFloats(count: number): Float32Array {
  const buffer = Buffer.allocUnsafeSlow(count * 4);
  return new Float32Array(buffer.buffer, buffer.byteOffset, count);
}
