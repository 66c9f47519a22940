/**
 * Random acquisition settings for a phantom series (`spleen-trt phantom`): the variety a model
 * meets in practice, drawn from the case's seed. In-plane spacing 0.6-1.0 mm on a 320-512 matrix,
 * slices 1-5 mm over 20-32 cm, LPS / RAS / permuted / oblique storage, with and without contrast,
 * int16 with and without a slope/intercept, patients of different sizes off the grid centre.
 */
import { expectedRange } from '../errors.js';
import type { Shape3, Vec3 } from '../volume/volume.js';
import { mulberry32, type PhantomOptions } from './make-phantom.js';

export interface SamplePhantomOverrides {
  /** Use this grid instead of a random one (stored axis order). */
  shape?: Shape3;
  /** Use this spacing instead of a random one (stored axis order). */
  spacingMm?: Vec3;
}

const SLICE_MM = [1, 1.25, 1.5, 2, 2.5, 3, 3.75, 4, 5];
const LETTERS = [['R', 'L'], ['A', 'P'], ['S', 'I']];

/** A 32-bit seed for case `index` of a series seeded with `seed` (distinct per case, stable). */
export function caseSeed(seed: number, index: number): number {
  let h = (Math.imul(seed >>> 0, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * Options for `makePhantom` for one case: the anatomy seed is `seed` itself, the acquisition is
 * drawn from a stream derived from it.
 * @example
 * const phantom = makePhantom(samplePhantomOptions(caseSeed(7, 0)));
 */
export function samplePhantomOptions(seed: number, overrides: SamplePhantomOverrides = {}): PhantomOptions {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw expectedRange('an integer in 0..2^32-1', 'seed', seed);
  const random = mulberry32(seed ^ 0xacc0151);
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * random();
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];

  const kind = random();
  let orientation = 'LPS';
  let obliqueDeg: Vec3 = [0, 0, 0];
  if (kind >= 0.4 && kind < 0.6) orientation = 'RAS';
  else if (kind >= 0.6 && kind < 0.8) {
    const order = [0, 1, 2];
    for (let i = 2; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    orientation = order.map((axis) => LETTERS[axis][random() < 0.5 ? 0 : 1]).join('');
  } else if (kind >= 0.8) {
    // Gantry tilt (about the left-right axis) plus a small in-plane and coronal rotation.
    obliqueDeg = [round(uniform(-20, 20), 2), round(uniform(-5, 5), 2), round(uniform(-10, 10), 2)];
  }
  const sliceAxis = [...orientation].findIndex((letter) => letter === 'S' || letter === 'I');

  const patientScale = round(uniform(0.8, 1.1), 3);
  const inPlaneMm = round(uniform(0.6, 1.0), 4);
  // The operator fits the field of view to the patient, within the scanner's 320-512 matrix
  // (a large patient at a fine spacing is cut at the sides, as happens in practice).
  const bodyWidthMm = 320 * patientScale;
  const matrix = Math.max(320, Math.min(512, Math.round((bodyWidthMm * uniform(0.95, 1.3)) / inPlaneMm)));
  const sliceMm = pick(SLICE_MM);
  // At least 200 mm: after resampling to 2 mm the bundle's 96-voxel training crops must fit.
  const coverageMm = uniform(200, 320);
  const slices = Math.max(40, Math.min(220, Math.round(coverageMm / sliceMm)));
  const shape: Shape3 = [matrix, matrix, matrix];
  const spacingMm: Vec3 = [inPlaneMm, inPlaneMm, inPlaneMm];
  shape[sliceAxis] = slices;
  spacingMm[sliceAxis] = sliceMm;

  const contrast = random() < 0.5 ? 'none' : 'portal-venous';
  const noiseHu = round(uniform(6, 25), 2);
  const centreMm: Vec3 = [round(uniform(-20, 20), 2), round(uniform(-30, 10), 2), round(uniform(-50, 30), 2)];
  const storageKind = random();
  const storage = storageKind < 0.5 ? undefined : storageKind < 0.8 ? { sclSlope: 1, sclInter: -1024 } : { sclSlope: 0.5, sclInter: -1024 };

  return {
    seed,
    shape: overrides.shape ?? shape,
    spacingMm: overrides.spacingMm ?? spacingMm,
    orientation,
    obliqueDeg,
    contrast,
    patientScale,
    noiseHu,
    centreMm,
    ...(storage ? { storage } : {}),
  };
}
