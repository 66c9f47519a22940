/**
 * The bundle's metric (spec section 8): Dice of the foreground only, 2|P and G| / (|P| + |G|),
 * NaN when the reference G is empty (MONAI DiceMetric with include_background=False and
 * ignore_empty=True), such cases being skipped in the mean.
 */
import { expectedRange, expectedType } from '../errors.js';

/** Voxel counts behind a Dice score. */
export interface DiceCounts {
  /** Voxels in both masks. */
  intersection: number;
  predicted: number;
  reference: number;
}

/** Counts foreground voxels (non-zero) of two masks on the same grid. */
export function diceCounts(prediction: Uint8Array, reference: Uint8Array): DiceCounts {
  if (!(prediction instanceof Uint8Array)) throw expectedType('a Uint8Array', 'prediction', prediction);
  if (!(reference instanceof Uint8Array)) throw expectedType('a Uint8Array', 'reference', reference);
  if (prediction.length !== reference.length) throw expectedRange(`${reference.length} voxels (the reference's)`, 'prediction', prediction);
  let intersection = 0, predicted = 0, truth = 0;
  for (let n = 0; n < prediction.length; n++) {
    const p = prediction[n] !== 0;
    const g = reference[n] !== 0;
    if (p) predicted++;
    if (g) truth++;
    if (p && g) intersection++;
  }
  return { intersection, predicted, reference: truth };
}

/** Dice from counts; NaN when the reference is empty. */
export function diceFromCounts(counts: DiceCounts): number {
  if (counts.reference === 0) return NaN;
  return (2 * counts.intersection) / (counts.predicted + counts.reference);
}

/**
 * Foreground Dice of a predicted mask against a reference mask (same grid, non-zero = spleen).
 * @example
 * foregroundDice(result.mask.data, label); // 0.95, or NaN for an empty label
 */
export function foregroundDice(prediction: Uint8Array, reference: Uint8Array): number {
  return diceFromCounts(diceCounts(prediction, reference));
}

/** Mean of the finite scores (NaN cases skipped), NaN when there are none. */
export function meanDice(scores: readonly number[]): number {
  const finite = scores.filter(Number.isFinite);
  return finite.length === 0 ? NaN : finite.reduce((a, b) => a + b, 0) / finite.length;
}
