/**
 * The bundle's inference pipeline on one volume, stage by stage (spec sections 2-5 and 7):
 * orientation to RAS -> spacing -> intensity window -> sliding window -> softmax -> inverse
 * spacing -> inverse orientation -> argmax. Pure orchestration: each stage lives in its own module.
 */
import { SpleenTrtError, throwIfAborted } from './errors.js';
import type { InferenceBackend } from './inference/backend.js';
import { decidedRegionLabelsAsync } from './inference/decided-region.js';
import { yieldToEventLoop } from './inference/yield-to-event-loop.js';
import { argmaxForeground, softmaxChannels } from './inference/postprocess.js';
import { slidingWindowInference } from './inference/sliding-window.js';
import type { PipelineParameters } from './model/manifest.js';
import { applyIntensityWindowAsync } from './volume/intensity.js';
import { summarizeMaskAsync, type MaskSummary } from './volume/mask-summary.js';
import { invertPreprocessing } from './volume/invert-preprocessing.js';
import { orientToRasAsync, rasGeometry } from './volume/orientation.js';
import { inverseSpacingFootprint, resampleFlippedToSpacingAsync, resampleToSpacingAsync } from './volume/spacing.js';
import type { Shape3, Vec3, Volume } from './volume/volume.js';
import { DEFAULT_VOLUME_LIMITS, type VolumeLimits } from './volume/volume-limits.js';
import { checkPipelineSize } from './pipeline-limits.js';

/** A label map on the input's own voxel grid: 0 background, 1 spleen. */
export interface LabelVolume {
  data: Uint8Array;
  shape: Shape3;
  spacingMm: Vec3;
  affine: Float64Array;
}

/** A multi-channel volume, data `[c][i][j][k]` C order. */
export interface ChannelVolume {
  data: Float32Array;
  channels: number;
  shape: Shape3;
  spacingMm: Vec3;
  affine: Float64Array;
}

/** Intermediate results for inspection (`keepStages`). */
export interface PipelineStages {
  /** The network's input: RAS, resampled, intensity-windowed, with its true affine. */
  preprocessed: Volume;
  /** Stitched logits on the preprocessed grid. */
  logits: ChannelVolume;
  /** Foreground probability on the original grid, before argmax. */
  probability: Volume;
}

export interface SegmentTimings {
  preprocessMs: number;
  /** Sum of the backend's per-batch compute times (trtexec's "GPU Compute Time" on a GPU). */
  computeMs: number;
  h2dMs: number;
  d2hMs: number;
  /** Window gathering and weighted stitching. */
  stitchMs: number;
  /** Sliding window wall time, all of the above included. */
  networkMs: number;
  postprocessMs: number;
  totalMs: number;
}

export interface SegmentProgress {
  stage: 'preprocess' | 'network' | 'postprocess' | 'done';
  windowsDone: number;
  windowsTotal: number;
}

export interface PipelineRunOptions {
  signal?: AbortSignal;
  onProgress?: (progress: SegmentProgress) => void;
  keepStages?: boolean;
}

export interface SegmentResult {
  mask: LabelVolume;
  summary: MaskSummary;
  timings: SegmentTimings;
  windowCount: number;
  stages?: PipelineStages;
}

/** Foreground label index: the bundle's label 1. */
const FOREGROUND = 1;

export async function segmentVolume(
  volume: Volume,
  backend: InferenceBackend,
  params: PipelineParameters,
  options: PipelineRunOptions = {},
  limits: Required<VolumeLimits> = DEFAULT_VOLUME_LIMITS,
): Promise<SegmentResult> {
  const { signal, onProgress } = options;
  const t0 = performance.now();
  onProgress?.({ stage: 'preprocess', windowsDone: 0, windowsTotal: 0 });

  // Orientation then spacing; where RAS is the stored order with reversed axes (LPS...), the
  // flips are folded into the resampling and the data is read where it is.
  const geometry = rasGeometry(volume);
  const { orientation } = geometry;
  // Before any grid is allocated: the resampled grid and the window count, from the geometry alone.
  checkPipelineSize(orientation.rasShape, geometry.affine, params, limits);
  // The common case (the stored axes are RAS's, some reversed) resamples off the JS thread. The
  // intensity window is applied as the resampling stores each value (one pass fewer, same bits).
  const w = params.intensity;
  const { volume: resampled, resampling, windowed } =
    (await resampleFlippedToSpacingAsync(volume, orientation, geometry.affine, params.pixdimMm, w)) ??
    (await resampleToSpacingAsync((await orientToRasAsync(volume, geometry)).volume, params.pixdimMm, w));
  // The event loop runs between the CPU stages (each is one kernel call or a few).
  await yieldToEventLoop();
  // MONAI's skip passes the data through unwindowed: in place when it is not the caller's array.
  const target = resampled.data === volume.data ? new Float32Array(resampled.data.length) : resampled.data;
  const image = windowed
    ? resampled.data
    : await applyIntensityWindowAsync(resampled.data, w.aMin, w.aMax, w.bMin, w.bMax, w.clip, target);
  const t1 = performance.now();
  throwIfAborted(signal);

  const network = await slidingWindowInference(image, resampled.shape, backend, {
    roiSize: params.roiSize,
    swBatchSize: params.swBatchSize,
    overlap: params.overlap,
    mode: params.mode,
    signal,
    onProgress: (p) => onProgress?.({ stage: 'network', windowsDone: p.windowsDone, windowsTotal: p.windowsTotal }),
  });
  const t2 = performance.now();
  if (network.channels <= FOREGROUND) {
    throw new SpleenTrtError('ERR_MODEL_INVALID', `The model has ${network.channels} output channel(s); at least 2 are needed`);
  }
  onProgress?.({ stage: 'postprocess', windowsDone: network.windowCount, windowsTotal: network.windowCount });

  await yieldToEventLoop();
  const channels = network.channels;
  // Two classes and no probability map wanted: skip what the logits already decide (exact).
  const decided = channels === 2 && !options.keepStages ? await decidedRegionLabelsAsync(network.logits, resampling, orientation) : null;
  let labels: Uint8Array;
  let onOriginalGrid: Float32Array | null = null;
  if (decided) {
    labels = decided;
  } else {
    // Only the voxels the inverse resampling reads need a softmax (exact: it never reads the rest).
    const used = inverseSpacingFootprint(resampling);
    const probabilities = softmaxChannels(network.logits, channels, used ? { shape: resampled.shape, used } : undefined);
    // Inverse spacing then inverse orientation (Invertd's order), fused into one pass.
    onOriginalGrid = invertPreprocessing(probabilities, channels, resampling, orientation);
    labels = argmaxForeground(onOriginalGrid, channels);
  }
  const t3 = performance.now();

  const mask: LabelVolume = { data: labels, shape: volume.shape, spacingMm: volume.spacingMm, affine: volume.affine };
  const summary = await summarizeMaskAsync(labels, volume.shape, volume.affine);
  const result: SegmentResult = {
    mask,
    summary,
    windowCount: network.windowCount,
    timings: {
      preprocessMs: t1 - t0,
      computeMs: network.timings.computeMs,
      h2dMs: network.timings.h2dMs,
      d2hMs: network.timings.d2hMs,
      stitchMs: network.timings.stitchMs,
      networkMs: t2 - t1,
      postprocessMs: t3 - t2,
      totalMs: t3 - t0,
    },
  };
  if (options.keepStages && onOriginalGrid) {
    const n = volume.shape[0] * volume.shape[1] * volume.shape[2];
    result.stages = {
      preprocessed: { ...resampled, data: image },
      logits: { data: network.logits, channels, shape: resampled.shape, spacingMm: resampled.spacingMm, affine: resampled.affine },
      probability: { ...volume, data: onOriginalGrid.slice(FOREGROUND * n, (FOREGROUND + 1) * n) },
    };
  }
  onProgress?.({ stage: 'done', windowsDone: network.windowCount, windowsTotal: network.windowCount });
  return result;
}
