/**
 * Size and geometry limits of a volume, decided from what it declares (shape, affine) before any
 * buffer for it or for the grids derived from it is allocated. A volume past a size limit is
 * ERR_INPUT_TOO_LARGE; geometry no scanner writes (non-finite or rank-deficient affine, voxel sizes
 * outside a plausible range) is reported by the caller in its own terms (a NIfTI file's
 * ERR_NIFTI_INVALID, a caller's RangeError).
 */
import { SpleenTrtError } from '../errors.js';
import type { Shape3 } from './volume.js';

export interface VolumeLimits {
  /** Voxels of an input volume; default 2^28 (512x512x1024). */
  maxVoxels?: number;
  /** Voxels of the grid resampled to the model's spacing; default 2^27 (about 1.6 GB of working buffers). */
  maxResampledVoxels?: number;
  /** Sliding-window count; default 4096 (a whole-body CT at overlap 0.5 needs about 1,000). */
  maxWindows?: number;
  /** Smallest accepted voxel size (each affine column's norm), mm; default 0.01. */
  minSpacingMm?: number;
  /** Largest accepted voxel size, mm; default 50. */
  maxSpacingMm?: number;
}

export const DEFAULT_VOLUME_LIMITS: Readonly<Required<VolumeLimits>> = Object.freeze({
  maxVoxels: 2 ** 28,
  maxResampledVoxels: 2 ** 27,
  maxWindows: 4096,
  minSpacingMm: 0.01,
  maxSpacingMm: 50,
});

/** Limits with defaults filled in; a bad value is the caller's RangeError (via `check`). */
export function resolveVolumeLimits(limits: VolumeLimits | undefined, check: (name: keyof VolumeLimits, value: unknown) => void): Required<VolumeLimits> {
  const out = { ...DEFAULT_VOLUME_LIMITS };
  if (limits === undefined) return out;
  for (const key of Object.keys(DEFAULT_VOLUME_LIMITS) as (keyof VolumeLimits)[]) {
    const value = limits[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) check(key, value);
    out[key] = value;
  }
  if (out.minSpacingMm > out.maxSpacingMm) check('minSpacingMm', out.minSpacingMm);
  return out;
}

/**
 * What is wrong with an affine as a scanner's voxel-to-world map, or undefined: non-finite entries,
 * a last row other than [0, 0, 0, 1], a 3x3 part without full rank, or voxel sizes outside
 * [minSpacingMm, maxSpacingMm].
 */
export function geometryProblem(affine: ArrayLike<number>, limits: Pick<Required<VolumeLimits>, 'minSpacingMm' | 'maxSpacingMm'>): string | undefined {
  for (let i = 0; i < 16; i++) if (!Number.isFinite(affine[i])) return `the affine has a non-finite entry (${affine[i]})`;
  if (affine[12] !== 0 || affine[13] !== 0 || affine[14] !== 0 || affine[15] !== 1) return 'the affine\'s last row is not [0, 0, 0, 1]';
  const col = (c: number): [number, number, number] => [affine[c], affine[4 + c], affine[8 + c]];
  const cols = [col(0), col(1), col(2)];
  const norms = cols.map((v) => Math.hypot(...v));
  for (const [axis, n] of norms.entries()) {
    if (!(n >= limits.minSpacingMm && n <= limits.maxSpacingMm)) {
      return `voxel size ${n} mm along axis ${axis} is outside [${limits.minSpacingMm}, ${limits.maxSpacingMm}] mm`;
    }
  }
  const [a, b, c] = cols;
  const det = a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0]);
  // Relative to the product of the column norms: |det| / prod = |sin| of the angles, 0 when rank < 3.
  if (!(Math.abs(det) > 1e-6 * norms[0] * norms[1] * norms[2])) return 'the affine\'s 3x3 part does not have full rank (its axes are parallel)';
  return undefined;
}

export function tooLarge(message: string): SpleenTrtError {
  return new SpleenTrtError('ERR_INPUT_TOO_LARGE', message);
}

/** Refuses a shape with more voxels than `max` (`what` names the grid in the message). */
export function checkVoxelCount(shape: Shape3, max: number, what: string, option: string): void {
  const voxels = shape[0] * shape[1] * shape[2];
  if (voxels > max) throw tooLarge(`${what} ${shape.join('x')} = ${voxels} voxels exceeds the limit of ${max} (${option})`);
}
