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
  decodeNiftiHeader,
  readNiftiChannels,
  type NiftiImage,
  type NiftiHeader,
  type ReadNiftiOptions,
  type WriteNiftiOptions,
} from './nifti/index.js';
export { getRuntimeInfo, getTensorRtStatus, type RuntimeInfo, type TensorRtStatus } from './runtime-info.js';
export { buildEngine, type BuildEngineOptions, type BuildEngineResult, type BuildEngineProgress } from './inference/build-engine.js';
export { createTensorRtBackend, type TensorRtBackendOptions } from './inference/tensorrt-backend.js';
export { parsePlanHeader, checkPlanHeader, type PlanHeader } from './inference/plan-header.js';
export { readSidecar, checkSidecar, type EngineSidecar, type SidecarRuntime } from './inference/engine-sidecar.js';
export { defaultEngineCacheDir, engineCacheKey, type EngineCacheKeyInput } from './inference/engine-cache.js';
export type { TensorRtPrecision } from './inference/tensorrt-native.js';
export { convertOnnxToFp16 } from './model/fp16-onnx.js';
export { loadModel, loadDefaultModel, loadSeededModel, type LoadedModel } from './model/load-model.js';
export { BUNDLE_PIPELINE, type ModelManifest, type PipelineParameters } from './model/manifest.js';
export {
  makePhantom,
  type Phantom,
  type PhantomOptions,
  type PhantomInfo,
  type PhantomStorage,
  type ContrastPhase,
} from './phantom/make-phantom.js';
export { samplePhantomOptions, caseSeed, type SamplePhantomOverrides } from './phantom/sample-phantom-options.js';
export { encodePhantomImage } from './phantom/encode-phantom-image.js';
export { foregroundDice, diceCounts, meanDice, type DiceCounts } from './evaluate/dice.js';
export {
  evaluateSegmentations,
  pairCases,
  type EvaluateOptions,
  type EvaluationReport,
  type EvaluationCase,
  type EvaluationProgress,
  type SegmenterLike,
  type CasePair,
} from './evaluate/evaluate-segmentations.js';
export { writeEvaluationReport, formatEvaluationCsv, formatEvaluationJson } from './evaluate/write-evaluation-report.js';
export {
  renderPreview,
  writePreviewPng,
  PREDICTION_COLOR,
  REFERENCE_COLOR,
  type PreviewOverlay,
  type PreviewImage,
  type RenderPreviewOptions,
} from './preview/render-preview.js';
export { encodePng, type RasterImage } from './preview/encode-png.js';
export { summarizeMask, type MaskSummary } from './volume/mask-summary.js';
export type { Volume, Shape3, Vec3 } from './volume/volume.js';
export { importModel, checkSegmentationOnnx, type ImportModelOptions, type ImportModelResult } from './model/import-model.js';
export { readBundleConfig, parseBundleConfig, type BundleConfig } from './model/bundle-config.js';
export {
  readTorchCheckpoint,
  readUnetCheckpoint,
  findStateDicts,
  TorchTensor,
  type TorchCheckpoint,
  type TorchDType,
  type UnetCheckpoint,
  type ReadUnetCheckpointOptions,
  type StateDictCandidate,
} from './model/torch-checkpoint.js';
export { makeBatchDynamic, type MakeBatchDynamicOptions, type MakeBatchDynamicResult } from './model/dynamic-batch.js';
export { DEFAULT_UNET_CONFIG, type UnetConfig } from './model/unet-architecture.js';
export type { ModelSource } from './model/manifest.js';
