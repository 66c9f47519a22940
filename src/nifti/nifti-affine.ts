/**
 * Voxel-to-world affines of a NIfTI header, chosen and repaired exactly as the reference loader
 * does (spec section 1): MONAI 1.4's NibabelReader takes nibabel's `img.affine`
 * (= `header.get_best_affine()`), then `correct_nifti_header_if_necessary` /
 * `rectify_header_sform_qform` may swap in the other transform. The functions here follow nibabel 5
 * (`get_qform`, `get_sform`, `get_base_affine`, `set_qform`, `quat2mat`, `mat2quat`) step by step,
 * in float64 (nibabel's quaternion maths uses long double; results differ by at most an ulp).
 */
import type { Vec3 } from '../volume/volume.js';
import { invalid, type NiftiHeader } from './nifti-header.js';

/** Which header transform the affine came from (after the consistency repair). */
export type AffineSource = 'sform' | 'qform' | 'base';

export interface ChosenAffine {
  /** Row-major 4x4, voxel index -> RAS+ world mm. */
  affine: Float64Array;
  source: AffineSource;
  /** True when the consistency repair replaced the transform the codes selected. */
  repaired: boolean;
}

/** Quaternion parameters of a qform (nibabel's set_qform output, before storage rounding). */
export interface QformParams {
  /** (b, c, d); the implied a = sqrt(1 - b^2 - c^2 - d^2) is `a`. */
  quatern: Vec3;
  a: number;
  /** pixdim[0]: -1 when the affine is left-handed. */
  qfac: 1 | -1;
  /** pixdim[1..3]: the affine's column norms. */
  zooms: Vec3;
  offset: Vec3;
}

/** nibabel's `np.finfo(np.float64).eps`, quat2mat's "no rotation" threshold. */
const FLOAT64_EPS = 2.220446049250313e-16;
const FLOAT32_EPS = 1.1920928955078125e-7;
/** Valid xform codes (nibabel's recoder, 0..5); anything else is reset to 0 at load. */
const MAX_XFORM_CODE = 5;

/** The stored-field precision of a header version: NIfTI-1 keeps float32, NIfTI-2 float64. */
export function storagePrecision(version: 1 | 2): (x: number) => number {
  return version === 1 ? Math.fround : (x: number) => x;
}

/**
 * The header values nibabel's `check_fix` corrects at load (problem level < 40, fixed silently):
 * pixdim[1..3] zero -> 1 and negative -> |x|, qfac not +-1 -> 1, xform codes outside 0..5 -> 0.
 */
export interface LoadFixedFields {
  pixdim: number[];
  qform_code: number;
  sform_code: number;
}

export function loadFixedFields(h: NiftiHeader): LoadFixedFields {
  const pixdim = h.pixdim.slice();
  for (let i = 1; i <= 3; i++) {
    if (pixdim[i] === 0) pixdim[i] = 1;
    else if (pixdim[i] < 0) pixdim[i] = -pixdim[i];
  }
  if (pixdim[0] !== 1 && pixdim[0] !== -1) pixdim[0] = 1;
  const code = (c: number) => (Number.isInteger(c) && c >= 0 && c <= MAX_XFORM_CODE ? c : 0);
  return { pixdim, qform_code: code(h.qform_code), sform_code: code(h.sform_code) };
}

function fromRows3x4(r0: readonly number[], r1: readonly number[], r2: readonly number[]): Float64Array {
  const m = new Float64Array(16);
  m.set(r0.slice(0, 4), 0);
  m.set(r1.slice(0, 4), 4);
  m.set(r2.slice(0, 4), 8);
  m[15] = 1;
  return m;
}

/** The sform (srow_x/y/z) as stored, whatever sform_code says (nibabel's get_sform). */
export function sformAffine(h: NiftiHeader): Float64Array {
  return fromRows3x4(h.srow_x, h.srow_y, h.srow_z);
}

/**
 * Rotation matrix of the unit quaternion (b, c, d) with a = sqrt(1 - b^2 - c^2 - d^2)
 * (nibabel fillpositive + quat2mat). Returns undefined when 1 - |bcd|^2 is below -3 eps of the
 * stored precision (nibabel raises there); a tiny negative value counts as a = 0.
 */
export function quaternionToRotation(b: number, c: number, d: number, version: 1 | 2): number[][] | undefined {
  const threshold = -3 * (version === 1 ? FLOAT32_EPS : FLOAT64_EPS);
  const w2 = 1 - (b * b + c * c + d * d);
  let w: number;
  if (w2 < 0) {
    if (!(w2 >= threshold)) return undefined;
    w = 0;
  } else if (w2 >= 0) {
    w = Math.sqrt(w2);
  } else {
    return undefined; // NaN
  }
  const nq = w * w + b * b + c * c + d * d;
  if (nq < FLOAT64_EPS) return [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  const s = 2 / nq;
  const X = b * s, Y = c * s, Z = d * s;
  const wX = w * X, wY = w * Y, wZ = w * Z;
  const xX = b * X, xY = b * Y, xZ = b * Z;
  const yY = c * Y, yZ = c * Z, zZ = d * Z;
  return [
    [1 - (yY + zZ), xY - wZ, xZ + wY],
    [xY + wZ, 1 - (xX + zZ), yZ - wX],
    [xZ - wY, yZ + wX, 1 - (xX + yY)],
  ];
}

/**
 * The qform affine: R(quaternion) * diag(pixdim1, pixdim2, qfac * pixdim3) plus qoffset, from the
 * load-fixed pixdim/qfac (nibabel get_qform). Undefined for an invalid quaternion.
 */
export function qformAffine(h: NiftiHeader, fixed: LoadFixedFields = loadFixedFields(h)): Float64Array | undefined {
  const r = quaternionToRotation(h.quatern_b, h.quatern_c, h.quatern_d, h.version);
  if (!r) return undefined;
  const vox = [fixed.pixdim[1], fixed.pixdim[2], fixed.pixdim[3] * fixed.pixdim[0]];
  const m = new Float64Array(16);
  for (let row = 0; row < 3; row++) for (let col = 0; col < 3; col++) m[row * 4 + col] = r[row][col] * vox[col];
  m[3] = h.qoffset_x;
  m[7] = h.qoffset_y;
  m[11] = h.qoffset_z;
  m[15] = 1;
  return m;
}

/**
 * nibabel's base affine (shape_zoom_affine with x flip): diag(-px, py, pz) with the origin at the
 * volume centre, translation -((n - 1) / 2) * zoom per axis.
 */
export function baseAffine(shape: readonly number[], zooms: readonly number[]): Float64Array {
  const m = new Float64Array(16);
  for (let k = 0; k < 3; k++) {
    const z = k === 0 ? -zooms[0] : zooms[k];
    m[k * 5] = z;
    m[k * 4 + 3] = -((shape[k] - 1) / 2) * z;
  }
  m[15] = 1;
  return m;
}

/**
 * MONAI's affine_to_spacing(affine, r): norms of the first r columns of affine[:r, :r], zeros
 * replaced by 1. Summed in row order as numpy's axis-0 reduction does (not Math.hypot).
 */
function spacingOfRank(m: Float64Array, r: number): number[] {
  const out: number[] = [];
  for (let col = 0; col < r; col++) {
    let s = 0;
    for (let row = 0; row < r; row++) s += m[row * 4 + col] * m[row * 4 + col];
    const n = Math.sqrt(s);
    out.push(n === 0 ? 1 : n);
  }
  return out;
}

/** numpy.allclose(a, b) with its defaults (rtol 1e-5 relative to b, atol 1e-8). */
function allClose(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(a[i] - b[i]) <= 1e-8 + 1e-5 * Math.abs(b[i]))) return false;
  }
  return true;
}

/** Column norms of the 3x3 part as numpy computes them (sequential sum of squares, then sqrt). */
export function columnNormsNumpy(m: Float64Array): Vec3 {
  const n = (c: number) => Math.sqrt(m[c] * m[c] + m[4 + c] * m[4 + c] + m[8 + c] * m[8 + c]);
  return [n(0), n(1), n(2)];
}

/**
 * Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations.
 * Returns eigenvalues and eigenvectors as columns (vectors[row][j] belongs to values[j]).
 */
export function symmetricEigen(a: readonly (readonly number[])[]): { values: number[]; vectors: number[][] } {
  const n = a.length;
  const m = a.map((row) => row.slice());
  const v: number[][] = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 64; sweep++) {
    let off = 0;
    let diag = 0;
    for (let p = 0; p < n; p++) {
      diag += m[p][p] * m[p][p];
      for (let q = p + 1; q < n; q++) off += m[p][q] * m[p][q];
    }
    if (off <= 1e-36 * diag || off === 0) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p][q];
        if (apq === 0) continue;
        const theta = (m[q][q] - m[p][p]) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = m[k][p], akq = m[k][q];
          m[k][p] = c * akp - s * akq;
          m[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = m[p][k], aqk = m[q][k];
          m[p][k] = c * apk - s * aqk;
          m[q][k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p], vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: m.map((row, i) => row[i]), vectors: v };
}

/**
 * Closest orthogonal matrix to r (polar decomposition, nibabel's `P @ Qs` from the SVD), computed
 * as r (r^T r)^(-1/2). Undefined when r is singular.
 */
function polarOrthogonal(r: number[][]): number[][] | undefined {
  const rtr = [0, 1, 2].map((i) => [0, 1, 2].map((j) => r[0][i] * r[0][j] + r[1][i] * r[1][j] + r[2][i] * r[2][j]));
  const { values, vectors } = symmetricEigen(rtr);
  if (!values.every((x) => x > 1e-24)) return undefined;
  const invSqrt = [0, 1, 2].map((i) =>
    [0, 1, 2].map((j) => values.reduce((s, l, k) => s + (vectors[i][k] * vectors[j][k]) / Math.sqrt(l), 0)),
  );
  return [0, 1, 2].map((i) => [0, 1, 2].map((j) => r[i][0] * invSqrt[0][j] + r[i][1] * invSqrt[1][j] + r[i][2] * invSqrt[2][j]));
}

/** nibabel mat2quat: the largest-eigenvalue eigenvector of Bar-Itzhack's K matrix, w >= 0. */
export function rotationToQuaternion(m: readonly (readonly number[])[]): [number, number, number, number] {
  const [[qxx, qyx, qzx], [qxy, qyy, qzy], [qxz, qyz, qzz]] = m;
  const k = [
    [qxx - qyy - qzz, qyx + qxy, qzx + qxz, qyz - qzy],
    [qyx + qxy, qyy - qxx - qzz, qzy + qyz, qzx - qxz],
    [qzx + qxz, qzy + qyz, qzz - qxx - qyy, qxy - qyx],
    [qyz - qzy, qzx - qxz, qxy - qyx, qxx + qyy + qzz],
  ].map((row) => row.map((x) => x / 3));
  const { values, vectors } = symmetricEigen(k);
  let best = 0;
  for (let i = 1; i < 4; i++) if (values[i] > values[best]) best = i;
  const q: [number, number, number, number] = [vectors[3][best], vectors[0][best], vectors[1][best], vectors[2][best]];
  if (q[0] < 0) for (let i = 0; i < 4; i++) q[i] = -q[i];
  return q;
}

/**
 * nibabel's set_qform: zooms = column norms, qfac = sign of det, shears stripped by polar
 * decomposition, rotation to quaternion. Undefined for a degenerate (zero-column or singular) affine.
 */
export function affineToQform(affine: Float64Array): QformParams | undefined {
  const zooms = columnNormsNumpy(affine);
  if (!zooms.every((z) => z > 0 && Number.isFinite(z))) return undefined;
  const r = [0, 1, 2].map((row) => [0, 1, 2].map((col) => affine[row * 4 + col] / zooms[col]));
  const det =
    r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1]) -
    r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0]) +
    r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
  let qfac: 1 | -1 = 1;
  if (!(det > 0)) {
    qfac = -1;
    for (let row = 0; row < 3; row++) r[row][2] = -r[row][2];
  }
  const pr = polarOrthogonal(r);
  if (!pr) return undefined;
  const q = rotationToQuaternion(pr);
  if (!q.every(Number.isFinite)) return undefined;
  return { quatern: [q[1], q[2], q[3]], a: q[0], qfac, zooms, offset: [affine[3], affine[7], affine[11]] };
}

/**
 * The qform nibabel reads back after set_qform(affine) on a header of the given version: the
 * parameters rounded to the stored precision, then get_qform.
 */
function reencodeAsQform(affine: Float64Array, version: 1 | 2): Float64Array | undefined {
  const p = affineToQform(affine);
  if (!p) return undefined;
  const store = storagePrecision(version);
  const r = quaternionToRotation(store(p.quatern[0]), store(p.quatern[1]), store(p.quatern[2]), version);
  if (!r) return undefined;
  const vox = [store(p.zooms[0]), store(p.zooms[1]), store(p.zooms[2]) * p.qfac];
  const m = new Float64Array(16);
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 3; col++) m[row * 4 + col] = r[row][col] * vox[col];
    m[row * 4 + 3] = store(p.offset[row]);
  }
  m[15] = 1;
  return m;
}

/**
 * The affine the reference loader ends up with (spec section 1):
 * sform if sform_code != 0, else qform if qform_code != 0, else the base affine (nibabel
 * get_best_affine, after load-time code fixes); then MONAI's consistency repair: when the chosen
 * affine's column norms disagree with pixdim (numpy.allclose), use the sform stored from the qform
 * (sform_code set and the qform agrees), or the qform re-encoded from the sform (qform_code set and
 * the sform agrees); otherwise keep it. As in MONAI the comparison runs over rank dim[0] (for a 4-D
 * file that includes the translation column against pixdim[4], so it practically never repairs),
 * and files with dim[0] >= 5 are never repaired.
 */
export function chooseAffine(h: NiftiHeader): ChosenAffine {
  const fixed = loadFixedFields(h);
  let affine: Float64Array | undefined;
  let source: AffineSource;
  if (fixed.sform_code !== 0) {
    affine = sformAffine(h);
    source = 'sform';
  } else if (fixed.qform_code !== 0) {
    affine = qformAffine(h, fixed);
    if (!affine) throw invalid(`qform quaternion (${h.quatern_b}, ${h.quatern_c}, ${h.quatern_d}) is not a unit quaternion`);
    source = 'qform';
  } else {
    affine = baseAffine(h.dim.slice(1, 4), fixed.pixdim.slice(1, 4));
    source = 'base';
  }
  const rank = h.dim[0];
  if (rank >= 5) return { affine, source, repaired: false };
  const zooms = fixed.pixdim.slice(1, rank + 1);
  if (allClose(zooms, spacingOfRank(affine, rank))) return { affine, source, repaired: false };

  // rectify_header_sform_qform. nibabel would raise on an invalid quaternion here; it simply
  // counts as "does not match" instead.
  const sform = sformAffine(h);
  const qform = qformAffine(h, fixed);
  const sformMismatch = !allClose(spacingOfRank(sform, rank), zooms);
  const qformMismatch = qform === undefined || !allClose(spacingOfRank(qform, rank), zooms);
  if (fixed.sform_code !== 0) {
    if (!sformMismatch) return { affine, source, repaired: false };
    if (!qformMismatch && qform) {
      // set_sform(get_qform()): the qform lands in srow (stored precision) and becomes the affine.
      const store = storagePrecision(h.version);
      const stored = qform.map((x, i) => (i < 12 ? store(x) : x));
      return { affine: stored, source: 'qform', repaired: true };
    }
  }
  if (fixed.qform_code !== 0) {
    if (!qformMismatch) return { affine, source, repaired: false };
    if (!sformMismatch) {
      const reencoded = reencodeAsQform(sform, h.version);
      if (!reencoded) throw invalid('the sform needed to repair the qform is degenerate');
      return { affine: reencoded, source: 'sform', repaired: true };
    }
  }
  return { affine, source, repaired: false };
}
