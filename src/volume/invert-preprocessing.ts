/**
 * The whole geometric inverse of the preprocessing in one pass: spacing inverse (trilinear) with
 * each value written straight to its place in the stored orientation. Same result as
 * `invertOrientation(invertSpacing(...))`, without the second full-volume copy (for 2-channel
 * probabilities on a 512x512 CT that copy is a sizeable share of the postprocessing time).
 */
import { assertShape3 } from './assert-volume.js';
import { invertOrientation, storedLayout, type OrientationTransform } from './orientation.js';
import { invertSpacingInto, type SpacingTransform } from './spacing.js';
import { expectedRange, expectedType } from '../errors.js';

/**
 * Maps `[c][i][j][k]` data on the resampled RAS grid back onto the stored grid and orientation
 * of the original volume (Invertd of Spacingd, then of Orientationd).
 */
export function invertPreprocessing(
  data: Float32Array,
  channels: number,
  resampling: SpacingTransform,
  orientation: OrientationTransform,
): Float32Array {
  if (typeof orientation !== 'object' || orientation === null) {
    throw expectedType('an OrientationTransform', 'orientation', orientation);
  }
  if (typeof resampling !== 'object' || resampling === null) {
    throw expectedType('a SpacingTransform', 'resampling', resampling);
  }
  const rasShape = resampling.inputShape;
  assertShape3(rasShape, 'resampling.inputShape');
  if (!rasShape.every((n, i) => n === orientation.rasShape[i])) {
    throw expectedRange(
      `the orientation's RAS shape [${orientation.rasShape.join(', ')}]`,
      'resampling.inputShape',
      `[${rasShape.join(', ')}]`,
    );
  }
  const layout = orientation.identity ? undefined : storedLayout(orientation);
  const resampled = invertSpacingInto(data, channels, resampling, layout);
  return resampled ?? invertOrientation(data, channels, rasShape, orientation);
}
