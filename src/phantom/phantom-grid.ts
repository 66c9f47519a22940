/**
 * The phantom's voxel grid: how stored voxel axes map to RAS+ world millimetres (orientation code,
 * optional oblique rotation, spacing, placement), and the index-space box a world-space box covers,
 * so that each structure is painted by visiting only the voxels that can hold it.
 */
import { expectedRange, expectedType } from '../errors.js';
import { invert4, transformPoint } from '../volume/affine.js';
import type { Shape3, Vec3 } from '../volume/volume.js';

/** Letters of an axis code: the world direction each stored axis points to. */
const AXIS_LETTERS: Record<string, { axis: number; sign: number }> = {
  R: { axis: 0, sign: 1 },
  L: { axis: 0, sign: -1 },
  A: { axis: 1, sign: 1 },
  P: { axis: 1, sign: -1 },
  S: { axis: 2, sign: 1 },
  I: { axis: 2, sign: -1 },
};

/** Parses an orientation code such as 'LPS', 'RAS' or 'SLP' (one of R/L, A/P, S/I each). */
export function parseAxisCode(code: unknown, name = 'options.orientation'): { axis: Shape3; sign: Vec3 } {
  if (typeof code !== 'string' || code.length !== 3) throw expectedType('a 3-letter axis code such as "LPS"', name, code);
  const axis: Shape3 = [0, 0, 0];
  const sign: Vec3 = [1, 1, 1];
  const seen = new Set<number>();
  for (let i = 0; i < 3; i++) {
    const letter = AXIS_LETTERS[code[i].toUpperCase()];
    if (!letter || seen.has(letter.axis)) throw expectedType('a 3-letter axis code with one of R/L, A/P and S/I each', name, code);
    seen.add(letter.axis);
    axis[i] = letter.axis;
    sign[i] = letter.sign;
  }
  return { axis, sign };
}

/** Rotation about world x, then y, then z (degrees), row-major 3x3. */
export function rotationMatrix(degrees: Vec3): Float64Array {
  const [ax, ay, az] = degrees.map((d) => (d * Math.PI) / 180);
  const cx = Math.cos(ax), sx = Math.sin(ax);
  const cy = Math.cos(ay), sy = Math.sin(ay);
  const cz = Math.cos(az), sz = Math.sin(az);
  // Rz * Ry * Rx
  return Float64Array.from([
    cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx,
    sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx,
    -sy, cy * sx, cy * cx,
  ]);
}

export interface PhantomGridOptions {
  shape: Shape3;
  spacingMm: Vec3;
  orientation: string;
  obliqueDeg: Vec3;
  /** World position of the grid centre. */
  centreMm: Vec3;
}

/**
 * The voxel -> world affine. Without obliquity the 3x3 part is an exact signed permutation of the
 * spacings (no rounding), which is what scanners write for axial series.
 */
export function phantomAffine(options: PhantomGridOptions): Float64Array {
  const { shape, spacingMm, centreMm } = options;
  const { axis, sign } = parseAxisCode(options.orientation);
  const linear = new Float64Array(9);
  for (let i = 0; i < 3; i++) linear[axis[i] * 3 + i] = sign[i] * spacingMm[i];
  const oblique = options.obliqueDeg;
  let m = linear;
  if (oblique.some((d) => d !== 0)) {
    const r = rotationMatrix(oblique);
    m = new Float64Array(9);
    for (let row = 0; row < 3; row++) {
      for (let col = 0; col < 3; col++) {
        m[row * 3 + col] = r[row * 3] * linear[col] + r[row * 3 + 1] * linear[3 + col] + r[row * 3 + 2] * linear[6 + col];
      }
    }
  }
  const affine = new Float64Array(16);
  for (let row = 0; row < 3; row++) {
    let t = centreMm[row];
    for (let col = 0; col < 3; col++) {
      affine[row * 4 + col] = m[row * 3 + col];
      t -= (m[row * 3 + col] * (shape[col] - 1)) / 2;
    }
    affine[row * 4 + 3] = t;
  }
  affine[15] = 1;
  return affine;
}

/** Inclusive index ranges [lo, hi] per axis, or null when the box misses the grid. */
export type IndexBox = [number, number, number, number, number, number];

/**
 * The voxels whose centres can fall inside the world box [lo, hi]: the 8 corners mapped through
 * the inverse affine, rounded outwards, clipped to the grid.
 */
export function indexBoxOf(inverse: Float64Array, shape: Shape3, lo: Vec3, hi: Vec3): IndexBox | null {
  const min = [Infinity, Infinity, Infinity];
  const max = [-Infinity, -Infinity, -Infinity];
  for (let c = 0; c < 8; c++) {
    const p = transformPoint(inverse, [c & 1 ? hi[0] : lo[0], c & 2 ? hi[1] : lo[1], c & 4 ? hi[2] : lo[2]]);
    for (let a = 0; a < 3; a++) {
      min[a] = Math.min(min[a], p[a]);
      max[a] = Math.max(max[a], p[a]);
    }
  }
  const box: IndexBox = [0, 0, 0, 0, 0, 0];
  for (let a = 0; a < 3; a++) {
    const from = Math.max(0, Math.floor(min[a]));
    const to = Math.min(shape[a] - 1, Math.ceil(max[a]));
    if (from > to) return null;
    box[2 * a] = from;
    box[2 * a + 1] = to;
  }
  return box;
}

/**
 * The grid-centre shift (world mm) that brings the world box [lo, hi] inside the grid with
 * `marginVoxels` to spare on each side, moving as little as possible; a box larger than the grid
 * is centred on it instead.
 */
export function shiftToContain(affine: Float64Array, shape: Shape3, lo: Vec3, hi: Vec3, marginVoxels: number): Vec3 {
  const inverse = invert4(affine);
  const min = [Infinity, Infinity, Infinity];
  const max = [-Infinity, -Infinity, -Infinity];
  for (let c = 0; c < 8; c++) {
    const p = transformPoint(inverse, [c & 1 ? hi[0] : lo[0], c & 2 ? hi[1] : lo[1], c & 4 ? hi[2] : lo[2]]);
    for (let a = 0; a < 3; a++) {
      min[a] = Math.min(min[a], p[a]);
      max[a] = Math.max(max[a], p[a]);
    }
  }
  // delta: how far (in voxels) the structure must move inside the grid; the grid moves by -delta.
  const delta = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    const room = shape[a] - 1 - 2 * marginVoxels;
    if (max[a] - min[a] > room) delta[a] = (shape[a] - 1) / 2 - (min[a] + max[a]) / 2;
    else if (min[a] < marginVoxels) delta[a] = marginVoxels - min[a];
    else if (max[a] > shape[a] - 1 - marginVoxels) delta[a] = shape[a] - 1 - marginVoxels - max[a];
  }
  const shift: Vec3 = [0, 0, 0];
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 3; col++) shift[row] -= affine[row * 4 + col] * delta[col];
  }
  return shift;
}

/** Checks a Vec3 of finite numbers. */
export function checkVec3(value: unknown, name: string, check: (n: number) => boolean, what: string): Vec3 {
  if (!Array.isArray(value) || value.length !== 3 || !value.every((n) => typeof n === 'number' && Number.isFinite(n) && check(n))) {
    throw expectedRange(what, name, value);
  }
  return [value[0], value[1], value[2]];
}
