/**
 * A .nii.gz's voxels decoded while the file inflates: ISA-L inflates on one addon thread and the
 * addon's transpose follows it a slab of slices behind on another (native/core/inflate_decode.h),
 * instead of inflating everything and then decoding. Same bits as the other path (the transpose is
 * the same kernel, slice ranges at a time). Returns null where it does not apply (ISA-L or the
 * kernels missing, a byte-swapped or 64-bit integer file) or where the stream is anything but
 * clean (corrupt, truncated, too long, trailing bytes): the caller then reads it as before, so
 * results and coded errors are those of the libdeflate / zlib path.
 */
import { endianness } from 'node:os';
import { isalInflater, type StreamedVoxelType } from '../native/gzip-codec.js';
import { uninitializedFloats } from '../volume/uninitialized.js';
import type { NiftiDatatypeInfo } from './nifti-header.js';
import type { ReadScaling, VoxelLayout } from './nifti-voxels.js';

const HOST_LITTLE_ENDIAN = endianness() === 'LE';
const STREAMED_TYPES: ReadonlySet<string> = new Set<StreamedVoxelType>(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'float64']);

/** Whether the addon decodes this datatype and byte order as stored (no 64-bit integers, no byte swap). */
function decodesAsStored(dt: NiftiDatatypeInfo, littleEndian: boolean): boolean {
  return STREAMED_TYPES.has(dt.name) && (dt.bytes === 1 || littleEndian === HOST_LITTLE_ENDIAN);
}

/**
 * The decoded float32 C-order voxels of `gz` (a whole .nii.gz), or null when ISA-L's streamed
 * read refused it. `maxInflated` caps the inflated stream as the other path's zlib cap does. An
 * allocation refused for the volume throws (RangeError), as the other path's does.
 */
export async function streamDecodeVoxels(
  gz: Uint8Array,
  maxInflated: number,
  voxOffset: number,
  layout: VoxelLayout,
  dt: NiftiDatatypeInfo,
  littleEndian: boolean,
  scaling: ReadScaling | undefined,
): Promise<Float32Array | null> {
  const isal = isalInflater();
  const count = layout.shape[0] * layout.shape[1] * layout.shape[2] * layout.channels;
  // An image beyond the cap (one the other path's buffer cannot hold) is that path's error to give.
  if (isal === null || !decodesAsStored(dt, littleEndian) || voxOffset + count * dt.bytes > maxInflated) return null;
  const out = uninitializedFloats(count);
  const run = isal.inflateDecode(gz, maxInflated, voxOffset, dt.name as StreamedVoxelType, layout.shape, layout.channels, scaling?.slope ?? 1, scaling?.inter ?? 0, out);
  try {
    await run;
  } catch {
    // The other path inflates it again and says what is wrong with it (or reads it: trailing zeros).
    return null;
  }
  return out;
}
