/**
 * A deterministic synthetic abdominal CT with a spleen and its ground-truth label: the package's
 * sample input (demo, tests, bench). Anatomy is a handful of ellipsoids with typical Hounsfield
 * units, enough to exercise the whole pipeline on realistic sizes, orientations and value ranges.
 * It is not anatomy: nothing clinical can be learned from it.
 */
import { expectedRange } from '../errors.js';
import { transformPoint } from '../volume/affine.js';
import type { LabelVolume } from '../segment-volume.js';
import type { Shape3, Vec3, Volume } from '../volume/volume.js';

export interface PhantomOptions {
  /** Voxel grid (i, j, k); default 256x256x60 (the bench's small case). */
  shape?: Shape3;
  /** Voxel size in mm; default 0.8 x 0.8 x 5.0. */
  spacingMm?: Vec3;
  /** Storage orientation: 'LPS' (as DICOM converters write, default) or 'RAS'. */
  orientation?: 'LPS' | 'RAS';
  seed?: number;
  /** Gaussian noise standard deviation, HU. */
  noiseHu?: number;
}

export interface Phantom {
  /** HU values, integers (as an int16 CT stores them). */
  image: Volume;
  /** 1 inside the spleen. */
  label: LabelVolume;
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

interface Ellipsoid {
  centre: Vec3;
  radii: Vec3;
  hu: number;
}

function inside(e: Ellipsoid, x: number, y: number, z: number): boolean {
  const dx = (x - e.centre[0]) / e.radii[0];
  const dy = (y - e.centre[1]) / e.radii[1];
  const dz = (z - e.centre[2]) / e.radii[2];
  return dx * dx + dy * dy + dz * dz <= 1;
}

/** Builds the phantom; world coordinates are RAS+ mm with the origin at the grid centre. */
export function makePhantom(options: PhantomOptions = {}): Phantom {
  const shape: Shape3 = options.shape ?? [256, 256, 60];
  const spacing: Vec3 = options.spacingMm ?? [0.8, 0.8, 5.0];
  if (!shape.every((n) => Number.isInteger(n) && n > 0 && n <= 2048)) throw expectedRange('3 integers in 1..2048', 'options.shape', shape);
  if (!spacing.every((s) => s > 0 && s < 100)) throw expectedRange('3 numbers in (0, 100)', 'options.spacingMm', spacing);
  const random = mulberry32(options.seed ?? 1);
  const noise = options.noiseHu ?? 12;
  const jitter = (scale: number) => (random() - 0.5) * 2 * scale;

  // Affine: LPS storage flips the first two axes relative to RAS world.
  const sign = options.orientation === 'RAS' ? 1 : -1;
  const affine = new Float64Array(16);
  affine[0] = sign * spacing[0];
  affine[5] = sign * spacing[1];
  affine[10] = spacing[2];
  affine[15] = 1;
  affine[3] = -sign * spacing[0] * (shape[0] - 1) / 2;
  affine[7] = -sign * spacing[1] * (shape[1] - 1) / 2;
  affine[11] = -spacing[2] * (shape[2] - 1) / 2;

  const zTop = (spacing[2] * (shape[2] - 1)) / 2;
  const bodyRx = 150 + jitter(10);
  const bodyRy = 105 + jitter(8);
  // Patient left is -x in RAS; posterior is -y.
  const spleen: Ellipsoid = { centre: [-85 + jitter(10), -35 + jitter(10), jitter(20)], radii: [28 + jitter(6), 45 + jitter(8), 50 + jitter(10)], hu: 48 + jitter(8) };
  const organs: Ellipsoid[] = [
    { centre: [55, 10, 10], radii: [70, 65, 80], hu: 62 }, // liver
    { centre: [60, -55, -45], radii: [22, 25, 50], hu: 32 }, // right kidney
    { centre: [-60, -55, -40], radii: [22, 25, 50], hu: 32 }, // left kidney
    { centre: [-10, -30, 0], radii: [11, 11, 400], hu: 160 }, // aorta
    { centre: [0, -75, 0], radii: [20, 18, 400], hu: 450 }, // vertebral column
    { centre: [-20, 35, -25], radii: [55, 25, 30], hu: 20 }, // bowel
    spleen,
  ];
  const lungBase = zTop - 40;

  const n = shape[0] * shape[1] * shape[2];
  const image = new Float32Array(n);
  const label = new Uint8Array(n);
  const p = [0, 0, 0];
  let index = 0;
  for (let i = 0; i < shape[0]; i++) {
    p[0] = i;
    for (let j = 0; j < shape[1]; j++) {
      p[1] = j;
      for (let k = 0; k < shape[2]; k++, index++) {
        p[2] = k;
        const [x, y, z] = transformPoint(affine, p);
        const r = (x / bodyRx) ** 2 + (y / bodyRy) ** 2;
        let hu = -1000;
        if (y < -bodyRy - 15 && y > -bodyRy - 25) hu = 250; // table
        if (r <= 1) {
          hu = r > 0.82 ? -100 : 40; // subcutaneous fat ring, soft tissue
          if (z > lungBase && Math.abs(x) > 25 && y > -60) hu = -850;
          for (const organ of organs) if (inside(organ, x, y, z)) hu = organ.hu;
          if (inside(spleen, x, y, z)) label[index] = 1;
        }
        // Box-Muller noise, rounded: int16 storage.
        const g = Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
        image[index] = Math.round(Math.max(-1024, hu + g * noise));
      }
    }
  }
  const spacingMm: Vec3 = [spacing[0], spacing[1], spacing[2]];
  return {
    image: { data: image, shape: [...shape], spacingMm, affine },
    label: { data: label, shape: [...shape], spacingMm, affine: affine.slice() },
  };
}
