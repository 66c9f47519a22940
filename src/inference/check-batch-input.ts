/**
 * The argument checks every InferenceBackend.run() makes before touching its runtime: a
 * Float32Array of `batch` single-channel windows of `roi`. Returns the window's voxel count.
 */
import { expectedRange, expectedType } from '../errors.js';
import type { Shape3 } from '../volume/volume.js';

export function checkBatchInput(input: Float32Array, batch: number, roi: Shape3): number {
  if (!(input instanceof Float32Array)) throw expectedType('a Float32Array', 'input', input);
  if (typeof batch !== 'number' || !Number.isInteger(batch) || batch < 1) throw expectedRange('a positive integer', 'batch', batch);
  if (!Array.isArray(roi) || roi.length !== 3 || !roi.every((v) => Number.isInteger(v) && v > 0)) {
    throw expectedRange('3 positive integers', 'roi', roi);
  }
  const windowSize = roi[0] * roi[1] * roi[2];
  if (input.length !== batch * windowSize) {
    throw expectedRange(`${batch * windowSize} values (batch ${batch} x ${roi.join('x')})`, 'input.length', input.length);
  }
  return windowSize;
}
