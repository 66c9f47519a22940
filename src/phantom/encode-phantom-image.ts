/**
 * The phantom's CT as NIfTI-1 int16 bytes, with its scl_slope / scl_inter when it has a storage
 * scaling (as many DICOM converters write: stored = (HU - intercept) / slope).
 */
import { encodeNifti } from '../nifti/write-nifti.js';
import type { Phantom } from './make-phantom.js';

/** Encodes the phantom image as an uncompressed .nii (int16, scaled when `info.storage` says so). */
export function encodePhantomImage(phantom: Phantom, description = 'spleen-trt phantom'): Uint8Array {
  const { image, info } = phantom;
  const storage = info.storage;
  if (!storage || (storage.sclSlope === 1 && storage.sclInter === 0)) {
    return encodeNifti(image, { datatype: 'int16', description });
  }
  // makePhantom quantised the HU to this storage grid, so the stored integers are exact.
  return encodeNifti(image, { datatype: 'int16', description, scaling: { slope: storage.sclSlope, inter: storage.sclInter } });
}
