/**
 * Limits a NIfTI header's declared sizes must meet before anything is allocated or inflated: the
 * voxel count and the bytes of voxel data. Called right after the header is decoded, on the header's
 * own fields (dim, bitpix), so it does not depend on which parser produced them.
 */
import { tooLarge } from '../volume/volume-limits.js';
import type { NiftiHeader } from './nifti-header.js';

export interface NiftiSizeLimits {
  /** Voxels of the whole image (all volumes/channels). */
  maxVoxels: number;
  /** Bytes of voxel data as stored (uncompressed). */
  maxBytes: number;
}

/** Default limit on stored voxel bytes: 2 GiB (a 2^28-voxel float64 image). */
export const DEFAULT_MAX_NIFTI_BYTES = 2 * 1024 ** 3;

/**
 * Throws ERR_INPUT_TOO_LARGE when the header declares more voxels or bytes than allowed. Dims that
 * are not positive integers are left to the format checks (they fail there as ERR_NIFTI_INVALID).
 */
export function checkNiftiDeclaredSize(header: Pick<NiftiHeader, 'dim' | 'bitpix'>, limits: NiftiSizeLimits): void {
  const rank = header.dim[0];
  if (!Number.isInteger(rank) || rank < 1 || rank > 7) return;
  let voxels = 1;
  for (let i = 1; i <= rank; i++) {
    const n = header.dim[i];
    if (!Number.isSafeInteger(n) || n < 1) return;
    // Inexact past 2^53, but then far beyond any limit, so the comparison still holds.
    voxels *= n;
  }
  const dims = header.dim.slice(1, rank + 1).join('x');
  if (voxels > limits.maxVoxels) {
    throw tooLarge(`the image's declared ${dims} = ${voxels} voxels exceeds the limit of ${limits.maxVoxels} (options.maxVoxels)`);
  }
  const bytes = voxels * (header.bitpix > 0 ? header.bitpix / 8 : 1);
  if (bytes > limits.maxBytes) {
    throw tooLarge(`the image's declared ${dims} voxels of ${header.bitpix} bits = ${bytes} bytes exceed the limit of ${limits.maxBytes} (options.maxBytes)`);
  }
}
