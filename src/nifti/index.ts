/** NIfTI-1/2 reading and NIfTI-1 writing (.nii, .nii.gz). Re-exports only. */
export {
  readNifti,
  readNiftiChannels,
  parseNifti,
  parseNiftiChannels,
  DEFAULT_MAX_VOXELS,
  type ReadNiftiOptions,
  type NiftiImage,
  type NiftiChannelImage,
  type MultiChannelVolume,
} from './read-nifti.js';
export {
  encodeNifti,
  gzipNifti,
  gzipNiftiAsync,
  writeNifti,
  type EncodeNiftiOptions,
  type WriteNiftiOptions,
  type NiftiWritableVolume,
} from './write-nifti.js';
export { decodeNiftiHeader, type NiftiHeader, type NiftiDatatypeName } from './nifti-header.js';
export { type AffineSource } from './nifti-affine.js';
export { type NiftiWriteDatatype } from './nifti-voxels.js';
