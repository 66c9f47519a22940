/**
 * A deterministic synthetic abdominal CT with a spleen and its ground-truth label: the package's
 * sample input (demo, tests, bench) and the training data of the demo model.
 *
 * Anatomy (phantom-anatomy.ts): body, subcutaneous and visceral fat, abdominal wall and back
 * muscles, ribs, lungs over diaphragm domes, heart, liver with a left lobe and gallbladder,
 * stomach with a gas cap, pancreas, kidneys in perirenal fat, bowel loops, aorta, IVC, vertebrae
 * with discs, spinal canal, a CT table, and a lobulated, crescent-shaped spleen of varying size,
 * position and HU. Acquisition: any shape and spacing, any axis order (LPS, RAS, permuted),
 * oblique rotations, Gaussian noise, int16 values with or without a slope/intercept.
 * It is not anatomy: nothing clinical can be learned from it.
 */
import { expectedRange, expectedType } from '../errors.js';
import type { LabelVolume } from '../segment-volume.js';
import type { Shape3, Vec3, Volume } from '../volume/volume.js';
import { paintAnatomy } from './paint-anatomy.js';
import { sampleAnatomy, type ContrastPhase } from './phantom-anatomy.js';
import { checkVec3, parseAxisCode, phantomAffine, shiftToContain } from './phantom-grid.js';

export type { ContrastPhase } from './phantom-anatomy.js';

/** How the image is stored as int16: value = stored * sclSlope + sclInter (NIfTI scl_slope / scl_inter). */
export interface PhantomStorage {
  sclSlope: number;
  sclInter: number;
}

export interface PhantomOptions {
  /** Voxel grid (i, j, k); default 256x256x60 (the bench's small case). */
  shape?: Shape3;
  /** Voxel size in mm along i, j, k; default 0.8 x 0.8 x 5.0. */
  spacingMm?: Vec3;
  /**
   * Storage orientation as an axis code: the world direction each stored axis points to, e.g.
   * 'LPS' (as DICOM converters write; default), 'RAS', or a permutation such as 'SLP' or 'PIR'.
   */
  orientation?: string;
  /** Oblique acquisition: rotation of the grid about world x, y, z in degrees; default none. */
  obliqueDeg?: Vec3;
  /** Seed of the anatomy and the noise; default 1. */
  seed?: number;
  /** Gaussian noise standard deviation, HU; default 12. */
  noiseHu?: number;
  /** 'none' (default) or 'portal-venous' (contrast-enhanced organs and vessels). */
  contrast?: ContrastPhase;
  /** Patient size relative to an average adult; default 1. */
  patientScale?: number;
  /** World position (RAS mm) of the grid centre; default the patient's centre [0, 0, 0]. */
  centreMm?: Vec3;
  /** Move the grid as little as needed to hold the whole spleen (default true). */
  keepSpleenInView?: boolean;
  /** Draw the spleen (default true); false gives an empty label. */
  spleen?: boolean;
  /** Quantise the HU to what int16 storage with this slope/intercept holds; default plain HU. */
  storage?: PhantomStorage;
}

/** What was drawn, for the record (phantom manifests, tests). */
export interface PhantomInfo {
  seed: number;
  orientation: string;
  obliqueDeg: Vec3;
  contrast: ContrastPhase;
  patientScale: number;
  noiseHu: number;
  centreMm: Vec3;
  storage: PhantomStorage | null;
  /** Mean HU of the organs before noise. */
  hu: { spleen: number; liver: number; kidney: number; muscle: number };
  /** Centre of the spleen's ellipsoid in world mm, null without a spleen. */
  spleenCentreMm: Vec3 | null;
}

export interface Phantom {
  /** HU values, integers (as an int16 CT stores them, after any slope/intercept). */
  image: Volume;
  /** 1 inside the spleen. */
  label: LabelVolume;
  info: PhantomInfo;
}

/** mulberry32: a small, fast, well-mixed 32-bit PRNG; deterministic across platforms. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Gaussian table size: per-voxel Box-Muller (log, sqrt, cos) would dominate the run time. */
const NOISE_TABLE_BITS = 16;
/** The lowest value a CT stores (air, outside the reconstruction circle). */
const MIN_HU = -1024;
const MAX_HU = 3071;

function addNoiseAndQuantise(image: Float32Array, noiseHu: number, seed: number, storage: PhantomStorage | null): void {
  const random = mulberry32(seed ^ 0x5eed1e55);
  const size = 1 << NOISE_TABLE_BITS;
  // Entries are rounded: the image holds integer HU before noise, so round(hu + g) = hu + round(g)
  // (up to ties), and the hot loop needs no Math.round.
  const table = new Int16Array(size);
  for (let n = 0; n < size; n += 2) {
    const radius = Math.sqrt(-2 * Math.log(1 - random())) * noiseHu;
    const theta = 2 * Math.PI * random();
    table[n] = Math.round(Math.max(-30000, Math.min(30000, radius * Math.cos(theta))));
    table[n + 1] = Math.round(Math.max(-30000, Math.min(30000, radius * Math.sin(theta))));
  }
  // xorshift32 picks table entries: one state update per voxel, no allocation.
  let state = (Math.imul(seed, 0x9e3779b1) ^ 0x2545f491) | 0 || 1;
  const mask = size - 1;
  for (let n = 0; n < image.length; n++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const hu = image[n] + table[(state >>> 8) & mask];
    image[n] = hu < MIN_HU ? MIN_HU : hu > MAX_HU ? MAX_HU : hu;
  }
  if (storage !== null && (storage.sclSlope !== 1 || storage.sclInter !== 0)) {
    const { sclSlope: slope, sclInter: inter } = storage;
    for (let n = 0; n < image.length; n++) image[n] = Math.round((image[n] - inter) / slope) * slope + inter;
  }
}

function validateStorage(storage: unknown): PhantomStorage | null {
  if (storage === undefined) return null;
  const s = storage as PhantomStorage;
  if (typeof s !== 'object' || s === null) throw expectedType('{ sclSlope, sclInter }', 'options.storage', storage);
  if (typeof s.sclSlope !== 'number' || !Number.isFinite(s.sclSlope) || s.sclSlope === 0) {
    throw expectedRange('a finite non-zero number', 'options.storage.sclSlope', s.sclSlope);
  }
  if (typeof s.sclInter !== 'number' || !Number.isFinite(s.sclInter)) {
    throw expectedRange('a finite number', 'options.storage.sclInter', s.sclInter);
  }
  // Every HU in [-1024, 3071] must fit int16 once stored.
  for (const hu of [MIN_HU, MAX_HU]) {
    const stored = Math.round((hu - s.sclInter) / s.sclSlope);
    if (stored < -32768 || stored > 32767) throw expectedRange('a slope/intercept that stores -1024..3071 HU in int16', 'options.storage', [s.sclSlope, s.sclInter]);
  }
  return { sclSlope: s.sclSlope, sclInter: s.sclInter };
}

/**
 * Builds the phantom; world coordinates are RAS+ mm with the patient centred at the origin.
 * @example
 * const { image, label } = makePhantom({ shape: [512, 512, 90], spacingMm: [0.7, 0.7, 2.5], seed: 3 });
 */
export function makePhantom(options: PhantomOptions = {}): Phantom {
  if (typeof options !== 'object' || options === null) throw expectedType('an options object', 'options', options);
  const shape = options.shape ?? [256, 256, 60];
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((n) => Number.isInteger(n) && n > 0 && n <= 2048)) {
    throw expectedRange('3 integers in 1..2048', 'options.shape', shape);
  }
  const spacing = checkVec3(options.spacingMm ?? [0.8, 0.8, 5.0], 'options.spacingMm', (s) => s > 0 && s < 100, '3 numbers in (0, 100)');
  const orientation = (options.orientation ?? 'LPS').toUpperCase();
  parseAxisCode(orientation);
  const obliqueDeg = checkVec3(options.obliqueDeg ?? [0, 0, 0], 'options.obliqueDeg', (d) => Math.abs(d) <= 90, '3 angles in [-90, 90] degrees');
  const seed = options.seed ?? 1;
  if (!Number.isInteger(seed)) throw expectedType('an integer', 'options.seed', seed);
  const noiseHu = options.noiseHu ?? 12;
  if (typeof noiseHu !== 'number' || !(noiseHu >= 0 && noiseHu <= 500)) throw expectedRange('a number in [0, 500]', 'options.noiseHu', noiseHu);
  const contrast = options.contrast ?? 'none';
  if (contrast !== 'none' && contrast !== 'portal-venous') throw expectedType('"none" or "portal-venous"', 'options.contrast', contrast);
  const patientScale = options.patientScale ?? 1;
  if (typeof patientScale !== 'number' || !(patientScale >= 0.3 && patientScale <= 2)) {
    throw expectedRange('a number in [0.3, 2]', 'options.patientScale', patientScale);
  }
  let centreMm = checkVec3(options.centreMm ?? [0, 0, 0], 'options.centreMm', () => true, '3 finite numbers');
  const storage = validateStorage(options.storage);
  const withSpleen = options.spleen ?? true;

  const anatomy = sampleAnatomy(mulberry32(seed), { patientScale, contrast, spleen: withSpleen });
  const gridShape: Shape3 = [shape[0], shape[1], shape[2]];
  let affine = phantomAffine({ shape: gridShape, spacingMm: spacing, orientation, obliqueDeg, centreMm });
  if (anatomy.spleen && options.keepSpleenInView !== false) {
    const { centre, radii } = anatomy.spleen;
    const reach = Math.max(...radii) * 1.3;
    const shift = shiftToContain(affine, gridShape, [centre[0] - reach, centre[1] - reach, centre[2] - reach], [centre[0] + reach, centre[1] + reach, centre[2] + reach], 2);
    if (shift.some((d) => d !== 0)) {
      centreMm = [centreMm[0] + shift[0], centreMm[1] + shift[1], centreMm[2] + shift[2]];
      affine = phantomAffine({ shape: gridShape, spacingMm: spacing, orientation, obliqueDeg, centreMm });
    }
  }

  const n = gridShape[0] * gridShape[1] * gridShape[2];
  const image = new Float32Array(n);
  const label = new Uint8Array(n);
  paintAnatomy({ shape: gridShape, affine, image, label }, anatomy);
  addNoiseAndQuantise(image, noiseHu, seed, storage);

  const spacingMm: Vec3 = [spacing[0], spacing[1], spacing[2]];
  return {
    image: { data: image, shape: [...gridShape], spacingMm, affine },
    label: { data: label, shape: [...gridShape], spacingMm: [...spacingMm], affine: affine.slice() },
    info: {
      seed,
      orientation,
      obliqueDeg,
      contrast,
      patientScale,
      noiseHu,
      centreMm,
      storage,
      hu: anatomy.hu,
      spleenCentreMm: anatomy.spleen ? [...anatomy.spleen.centre] : null,
    },
  };
}
