/**
 * 4x4 affine maths on row-major Float64Array(16), in float64 throughout (the reference computes
 * affines in float64; float32 here would move voxel positions by ~1e-5 mm and break parity).
 */
import type { Vec3 } from './volume.js';

export type Mat4 = Float64Array;

export function identity4(): Mat4 {
  const m = new Float64Array(16);
  m[0] = m[5] = m[10] = m[15] = 1;
  return m;
}

/** Element (row, col). */
export function at(m: Mat4, row: number, col: number): number {
  return m[row * 4 + col];
}

export function multiply4(a: Mat4, b: Mat4): Mat4 {
  const out = new Float64Array(16);
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[r * 4 + k] * b[k * 4 + c];
      out[r * 4 + c] = s;
    }
  }
  return out;
}

/** Inverse by Gauss-Jordan elimination with partial pivoting; throws on a singular matrix. */
export function invert4(m: Mat4): Mat4 {
  const a = Array.from({ length: 4 }, (_, r) => [
    m[r * 4], m[r * 4 + 1], m[r * 4 + 2], m[r * 4 + 3],
    r === 0 ? 1 : 0, r === 1 ? 1 : 0, r === 2 ? 1 : 0, r === 3 ? 1 : 0,
  ]);
  for (let col = 0; col < 4; col++) {
    let pivot = col;
    for (let r = col + 1; r < 4; r++) if (Math.abs(a[r][col]) > Math.abs(a[pivot][col])) pivot = r;
    if (Math.abs(a[pivot][col]) < 1e-300) throw new RangeError('Affine matrix is singular');
    [a[col], a[pivot]] = [a[pivot], a[col]];
    const p = a[col][col];
    for (let c = 0; c < 8; c++) a[col][c] /= p;
    for (let r = 0; r < 4; r++) {
      if (r === col) continue;
      const f = a[r][col];
      if (f !== 0) for (let c = 0; c < 8; c++) a[r][c] -= f * a[col][c];
    }
  }
  const out = new Float64Array(16);
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) out[r * 4 + c] = a[r][c + 4];
  return out;
}

/** Norms of the first three columns of the 3x3 part (voxel sizes in mm). */
export function columnNorms(m: Mat4): Vec3 {
  const n = (c: number) => Math.hypot(m[c], m[4 + c], m[8 + c]);
  return [n(0), n(1), n(2)];
}

/** Applies the affine to a point (x, y, z, 1). */
export function transformPoint(m: Mat4, p: readonly number[]): Vec3 {
  return [
    m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3],
    m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7],
    m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11],
  ];
}

/** Builds a row-major Mat4 from nested rows (4x4, or 3x4 with [0 0 0 1] appended). */
export function fromRows(rows: readonly (readonly number[])[]): Mat4 {
  const m = identity4();
  rows.forEach((row, r) => row.forEach((v, c) => (m[r * 4 + c] = v)));
  return m;
}

export function isFiniteMatrix(m: Mat4): boolean {
  return m.every(Number.isFinite);
}
