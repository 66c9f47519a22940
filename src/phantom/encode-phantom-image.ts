/**
 * The phantom's CT as NIfTI-1 int16 bytes, with its scl_slope / scl_inter when it has a storage
 * scaling (as many DICOM converters write: stored = (HU - intercept) / slope).
 *
 * encodeNifti always writes (slope, inter) = (1, 0), so the two header floats (bytes 112 and 116
 * of the 348-byte NIfTI-1 header, little endian as encodeNifti writes by default) are set
 * afterwards. TODO(nifti): an `sclSlope` / `sclInter` option on EncodeNiftiOptions would make
 * this patch unnecessary.
 */
import { encodeNifti } from '../nifti/write-nifti.js';
import type { Phantom } from './make-phantom.js';

/** NIfTI-1 header offsets of scl_slope and scl_inter (float32). */
const SCL_SLOPE_OFFSET = 112;
const SCL_INTER_OFFSET = 116;

/** Encodes the phantom image as an uncompressed .nii (int16, scaled when `info.storage` says so). */
export function encodePhantomImage(phantom: Phantom, description = 'spleen-trt phantom'): Uint8Array {
  const { image, info } = phantom;
  const storage = info.storage;
  if (!storage || (storage.sclSlope === 1 && storage.sclInter === 0)) {
    return encodeNifti(image, { datatype: 'int16', description });
  }
  const stored = new Float32Array(image.data.length);
  const { sclSlope, sclInter } = storage;
  // makePhantom quantised the HU to this grid, so the division is exact up to float rounding.
  for (let n = 0; n < stored.length; n++) stored[n] = Math.round((image.data[n] - sclInter) / sclSlope);
  const bytes = encodeNifti({ ...image, data: stored }, { datatype: 'int16', description, byteOrder: 'little' });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setFloat32(SCL_SLOPE_OFFSET, sclSlope, true);
  view.setFloat32(SCL_INTER_OFFSET, sclInter, true);
  return bytes;
}
