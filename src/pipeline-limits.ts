/**
 * The pipeline's sizes decided before it allocates: the grid the volume is resampled to (a 12 KB
 * NIfTI with 50 mm voxels asks for a grid 33x finer per axis) and the sliding-window count (overlap
 * 0.99 means one window per voxel step), both from the geometry alone.
 */
import { windowStarts } from './inference/sliding-window.js';
import type { PipelineParameters } from './model/manifest.js';
import { checkVoxelCount, tooLarge, type VolumeLimits } from './volume/volume-limits.js';
import { spacingOutputShape } from './volume/spacing.js';
import type { Shape3 } from './volume/volume.js';

/** Throws ERR_INPUT_TOO_LARGE when the RAS grid's resampled size or its window count exceeds the limits. */
export function checkPipelineSize(rasShape: Shape3, rasAffine: Float64Array, params: PipelineParameters, limits: Required<VolumeLimits>): void {
  checkVoxelCount(rasShape, limits.maxVoxels, 'the volume', 'limits.maxVoxels');
  const resampled = spacingOutputShape(rasShape, rasAffine, params.pixdimMm);
  checkVoxelCount(resampled, limits.maxResampledVoxels, `resampled to ${params.pixdimMm.join('x')} mm, the grid`, 'limits.maxResampledVoxels');
  const counts = [0, 1, 2].map((d) => windowStarts(resampled[d], params.roiSize[d], params.overlap).length);
  const windows = counts[0] * counts[1] * counts[2];
  if (windows > limits.maxWindows) {
    throw tooLarge(
      `the ${resampled.join('x')} grid needs ${counts.join('x')} = ${windows} windows at overlap ${params.overlap}, more than the limit of ${limits.maxWindows} (limits.maxWindows)`,
    );
  }
}
