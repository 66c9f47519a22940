/** spleen-trt: the MONAI spleen_ct_segmentation bundle for Node.js. Re-exports only. */
export { SpleenTrtError, isSpleenTrtError, type ErrorCode } from './errors.js';
export { Segmenter, type SegmenterOptions, type SegmentOptions, type SegmenterInfo } from './segmenter.js';
export {
  segmentVolume,
  type SegmentResult,
  type SegmentTimings,
  type SegmentProgress,
  type LabelVolume,
  type ChannelVolume,
  type PipelineStages,
} from './segment-volume.js';
export {
  readNifti,
  writeNifti,
  parseNifti,
  encodeNifti,
  readNiftiChannels,
  type NiftiImage,
  type NiftiHeader,
  type ReadNiftiOptions,
  type WriteNiftiOptions,
} from './nifti/index.js';
export { getRuntimeInfo, type RuntimeInfo } from './runtime-info.js';
export { loadModel, loadDefaultModel, type LoadedModel } from './model/load-model.js';
export { BUNDLE_PIPELINE, type ModelManifest, type PipelineParameters } from './model/manifest.js';
export { makePhantom, type Phantom, type PhantomOptions } from './phantom/make-phantom.js';
export { summarizeMask, type MaskSummary } from './volume/mask-summary.js';
export type { Volume, Shape3, Vec3 } from './volume/volume.js';
