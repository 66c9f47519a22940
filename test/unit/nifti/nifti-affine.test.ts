/**
 * Affine maths of the reader/writer: quaternions (nibabel quat2mat / fillpositive / mat2quat /
 * set_qform), nibabel's base affine, and the selection + consistency repair MONAI applies.
 * Expected values are hand-derived, or nibabel's own header fields in the fixtures.
 */
import { describe, expect, it } from 'vitest';
import {
  affineToQform,
  baseAffine,
  chooseAffine,
  qformAffine,
  quaternionToRotation,
  sformAffine,
  symmetricEigen,
} from '../../../src/nifti/nifti-affine.js';
import { decodeNiftiHeader, type NiftiHeader } from '../../../src/nifti/nifti-header.js';
import { baseHeader, plainBytes } from './fixtures.js';

const SQRT_HALF = Math.SQRT1_2;

function rotation(axis: 0 | 1 | 2, degrees: number): number[][] {
  const t = (degrees * Math.PI) / 180;
  const [c, s] = [Math.cos(t), Math.sin(t)];
  const m = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  const [a, b] = ([[1, 2], [0, 2], [0, 1]] as const)[axis];
  m[a][a] = c; m[a][b] = -s; m[b][a] = s; m[b][b] = c;
  return m;
}

function mul3(a: number[][], b: number[][]): number[][] {
  return [0, 1, 2].map((i) => [0, 1, 2].map((j) => a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j]));
}

function affineOf(m: number[][], t: number[]): Float64Array {
  return new Float64Array([...m[0], t[0], ...m[1], t[1], ...m[2], t[2], 0, 0, 0, 1]);
}

function expectMatrixClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(tol);
}

/** R(q) * diag(zooms with qfac on the last) + offset: the qform reconstruction, by hand. */
function rebuild(q: NonNullable<ReturnType<typeof affineToQform>>): Float64Array {
  const r = quaternionToRotation(q.quatern[0], q.quatern[1], q.quatern[2], 2)!;
  const z = [q.zooms[0], q.zooms[1], q.zooms[2] * q.qfac];
  return affineOf(r.map((row) => row.map((x, j) => x * z[j])), q.offset);
}

describe('quaternionToRotation (nibabel fillpositive + quat2mat)', () => {
  it('maps (0, 0, 0) to the identity and (1, 0, 0) to a half turn about x', () => {
    expect(quaternionToRotation(0, 0, 0, 1)).toEqual([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
    expect(quaternionToRotation(1, 0, 0, 1)).toEqual([[1, 0, 0], [0, -1, 0], [0, 0, -1]]);
  });

  it('maps d = sin(45 deg) to a quarter turn about z', () => {
    expectMatrixClose(quaternionToRotation(0, 0, SQRT_HALF, 2)!.flat(), [0, -1, 0, 1, 0, 0, 0, 0, 1], 1e-15);
  });

  it('treats a slightly negative a^2 (within 3 float32 eps) as a = 0, and rejects more', () => {
    const b = Math.fround(0.70710677);
    const c = Math.fround(0.70710683);
    expect(1 - (b * b + c * c)).toBeLessThan(0);
    const r = quaternionToRotation(b, c, 0, 1)!;
    // a = 0: a half turn about the axis (b, c, 0), which it leaves fixed.
    const axis = [b, c, 0];
    const image = r.map((row) => row[0] * axis[0] + row[1] * axis[1] + row[2] * axis[2]);
    expectMatrixClose(image, axis, 1e-7);
    // NIfTI-2 allows only 3 float64 eps: the same values are then invalid.
    expect(quaternionToRotation(b, c, 0, 2)).toBeUndefined();
    expect(quaternionToRotation(1, 0.1, 0, 1)).toBeUndefined();
    expect(quaternionToRotation(Number.NaN, 0, 0, 1)).toBeUndefined();
  });
});

describe('qformAffine / sformAffine / baseAffine', () => {
  it('builds R * diag(px, py, qfac * pz) + qoffset', () => {
    const h: NiftiHeader = { ...baseHeader(), quatern_d: SQRT_HALF, pixdim: [-1, 2, 3, 4, 1, 1, 1, 1], qoffset_x: 10, qoffset_y: 20, qoffset_z: 30 };
    expectMatrixClose(qformAffine(h)!, [0, -3, 0, 10, 2, 0, 0, 20, 0, 0, -4, 30, 0, 0, 0, 1], 1e-15);
  });

  it('applies nibabel\'s load fixes: qfac other than -1 is +1, pixdim 0 -> 1, negative -> |x|', () => {
    const h: NiftiHeader = { ...baseHeader(), pixdim: [0.5, 0, -2, 3, 1, 1, 1, 1] };
    expect(Array.from(qformAffine(h)!)).toEqual([1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1]);
  });

  it('reads the sform rows whatever sform_code says', () => {
    const h: NiftiHeader = { ...baseHeader(), srow_x: [1, 2, 3, 4], srow_y: [5, 6, 7, 8], srow_z: [9, 10, 11, 12] };
    expect(Array.from(sformAffine(h))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 1]);
  });

  it('base affine: diag(-px, py, pz), origin at the centre of the grid', () => {
    expect(Array.from(baseAffine([7, 5, 4], [0.5, 1.25, 3]))).toEqual([-0.5, 0, 0, 1.5, 0, 1.25, 0, -2.5, 0, 0, 3, -4.5, 0, 0, 0, 1]);
  });
});

describe('affineToQform (nibabel set_qform)', () => {
  it('encodes the identity as (0, 0, 0) with qfac 1', () => {
    const q = affineToQform(affineOf([[1, 0, 0], [0, 1, 0], [0, 0, 1]], [0, 0, 0]))!;
    expect(q.quatern.map(Math.abs)).toEqual([0, 0, 0]);
    expect(q.qfac).toBe(1);
    expect(q.zooms).toEqual([1, 1, 1]);
  });

  it('uses qfac -1 for a left-handed affine', () => {
    const q = affineOf([[1, 0, 0], [0, 1, 0], [0, 0, -2]], [1, 2, 3]);
    const p = affineToQform(q)!;
    expect(p.qfac).toBe(-1);
    expect(p.zooms).toEqual([1, 1, 2]);
    expect(p.offset).toEqual([1, 2, 3]);
  });

  // Tolerance 1e-12, except near a half turn: there a = sqrt(1 - b^2 - c^2 - d^2) is recomputed
  // from a tiny difference (the qform format's own limit, nibabel's too), costing ~1e-11.
  const cases: [string, Float64Array, number][] = [
    ['LPS', affineOf([[-0.8, 0, 0], [0, -0.8, 0], [0, 0, 2.5]], [100, 80, -300]), 1e-12],
    ['RAS permuted', affineOf([[0, 0, 2], [1.5, 0, 0], [0, 1.5, 0]], [1, 2, 3]), 1e-12],
    ['oblique', affineOf(mul3(mul3(rotation(2, 20), rotation(0, -10)), [[0.9, 0, 0], [0, 1.1, 0], [0, 0, 3]]), [-12.5, 40, 7.25]), 1e-12],
    ['oblique, left-handed', affineOf(mul3(mul3(rotation(1, 33), rotation(2, 71)), [[0.7, 0, 0], [0, 0.7, 0], [0, 0, -1.5]]), [3, 2, 1]), 1e-12],
    ['half turn about x', affineOf([[2, 0, 0], [0, -2, 0], [0, 0, -2]], [0, 0, 0]), 1e-12],
    ['near-180 rotation', affineOf(rotation(1, 179.999), [0, 0, 0]), 1e-10],
  ];
  it.each(cases)('round-trips %s through quaternion, qfac and pixdim', (_, affine, tol) => {
    const q = affineToQform(affine)!;
    expectMatrixClose(rebuild(q), affine, tol);
  });

  it('strips shear by polar decomposition: an orthogonal qform with the same column norms', () => {
    const sheared = affineOf(mul3(rotation(0, 12), [[0.6, 0.03, 0], [0, 0.65, 0.036], [0, 0, 1.8]]), [0, 0, 0]);
    const q = affineToQform(sheared)!;
    const r = quaternionToRotation(q.quatern[0], q.quatern[1], q.quatern[2], 2)!;
    const rtr = mul3([0, 1, 2].map((i) => [0, 1, 2].map((j) => r[j][i])), r);
    expectMatrixClose(rtr.flat(), [1, 0, 0, 0, 1, 0, 0, 0, 1], 1e-14);
    const norms = [0, 1, 2].map((k) => Math.hypot(sheared[k], sheared[4 + k], sheared[8 + k]));
    expectMatrixClose(q.zooms, norms, 1e-15);
  });

  it('refuses a degenerate affine', () => {
    expect(affineToQform(affineOf([[1, 0, 0], [0, 0, 0], [0, 0, 1]], [0, 0, 0]))).toBeUndefined();
    expect(affineToQform(affineOf([[1, 1, 0], [0, 0, 0], [0, 0, 1]], [0, 0, 0]))).toBeUndefined();
  });

  // The fixtures' qforms were written by nibabel's set_qform from their sform: the same fields
  // must come out here (float32 in NIfTI-1, float64 in NIfTI-2), the sheared one included.
  it.each(['lps-int16-scaled.nii.gz', 'be-float32.nii', 'nifti2-float64.nii.gz', 'oblique-sform.nii.gz', '4d-t1.nii.gz', 'uint16.nii'])(
    'matches nibabel\'s quaternion fields for %s',
    (file) => {
      const h = decodeNiftiHeader(plainBytes(file));
      const q = affineToQform(sformAffine(h))!;
      const store = h.version === 1 ? Math.fround : (x: number) => x;
      const tol = h.version === 1 ? 2e-7 : 1e-14;
      // q and -q are the same rotation; nibabel picks w >= 0 and so does affineToQform.
      expectMatrixClose(q.quatern.map(store), [h.quatern_b, h.quatern_c, h.quatern_d], tol);
      expect(q.qfac).toBe(h.pixdim[0]);
      expectMatrixClose(q.zooms.map(store), h.pixdim.slice(1, 4), tol);
      expect(q.offset.map(store)).toEqual([h.qoffset_x, h.qoffset_y, h.qoffset_z]);
    },
  );
});

describe('symmetricEigen', () => {
  it('diagonalises a symmetric 4x4: A v = lambda v, V orthonormal', () => {
    const a = [[4, 1, -2, 0.5], [1, 3, 0.25, -1], [-2, 0.25, 1, 2], [0.5, -1, 2, -3]];
    const { values, vectors } = symmetricEigen(a);
    for (let j = 0; j < 4; j++) {
      for (let i = 0; i < 4; i++) {
        const av = a[i].reduce((s, x, k) => s + x * vectors[k][j], 0);
        expect(Math.abs(av - values[j] * vectors[i][j])).toBeLessThan(1e-12);
      }
      for (let k = 0; k < 4; k++) {
        const dot = vectors.reduce((s, row) => s + row[j] * row[k], 0);
        expect(Math.abs(dot - (j === k ? 1 : 0))).toBeLessThan(1e-12);
      }
    }
    // Trace is preserved.
    expect(values.reduce((s, x) => s + x, 0)).toBeCloseTo(5, 12);
  });
});

describe('chooseAffine: selection (nibabel get_best_affine)', () => {
  const qformHeader = (): NiftiHeader => ({
    ...baseHeader(), qform_code: 1, quatern_d: Math.fround(SQRT_HALF), pixdim: [1, 2, 2, 3, 1, 1, 1, 1], qoffset_x: 5,
  });
  const withSform = (h: NiftiHeader, code: number): NiftiHeader => ({
    ...h, sform_code: code, srow_x: [-2, 0, 0, 1], srow_y: [0, 2, 0, 2], srow_z: [0, 0, 3, 3],
  });

  it('takes the sform when sform_code > 0', () => {
    const c = chooseAffine(withSform(qformHeader(), 1));
    expect(c).toMatchObject({ source: 'sform', repaired: false });
    expect(Array.from(c.affine)).toEqual([-2, 0, 0, 1, 0, 2, 0, 2, 0, 0, 3, 3, 0, 0, 0, 1]);
  });

  it('takes the qform when only qform_code > 0', () => {
    const h = withSform(qformHeader(), 0);
    const c = chooseAffine(h);
    expect(c.source).toBe('qform');
    expect(Array.from(c.affine)).toEqual(Array.from(qformAffine(h)!));
    expectMatrixClose(c.affine, [0, -2, 0, 5, 2, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1], 1e-7);
  });

  it('takes the base affine when both codes are 0', () => {
    const h = { ...withSform(qformHeader(), 0), qform_code: 0 };
    const c = chooseAffine(h);
    expect(c.source).toBe('base');
    expect(Array.from(c.affine)).toEqual([-2, 0, 0, 6, 0, 2, 0, -4, 0, 0, 3, -4.5, 0, 0, 0, 1]);
  });

  it('ignores invalid codes as nibabel does (reset to 0 at load)', () => {
    expect(chooseAffine(withSform(qformHeader(), 7)).source).toBe('qform');
    expect(chooseAffine(withSform(qformHeader(), -1)).source).toBe('qform');
    expect(chooseAffine({ ...withSform(qformHeader(), 0), qform_code: 42 }).source).toBe('base');
  });

  it('rejects a selected qform whose quaternion is not a unit quaternion', () => {
    expect(() => chooseAffine({ ...qformHeader(), quatern_b: 0.9, quatern_c: 0.9 })).toThrow(/not a unit quaternion/);
  });
});

describe('chooseAffine: consistency repair (MONAI rectify_header_sform_qform)', () => {
  // pixdim (1, 1, 1); qform = identity + offset (7, 8, 9); sform column norms set per test.
  const header = (sformScale: number[], extra: Partial<NiftiHeader> = {}): NiftiHeader => ({
    ...baseHeader(),
    sform_code: 1,
    qform_code: 0,
    qoffset_x: 7, qoffset_y: 8, qoffset_z: 9,
    srow_x: [sformScale[0], 0, 0, 1], srow_y: [0, sformScale[1], 0, 2], srow_z: [0, 0, sformScale[2], 3],
    ...extra,
  });
  const QFORM = [1, 0, 0, 7, 0, 1, 0, 8, 0, 0, 1, 9, 0, 0, 0, 1];

  it('keeps a sform whose norms match pixdim within numpy.allclose (rtol 1e-5)', () => {
    const c = chooseAffine(header([1, Math.fround(1.000009), 1]));
    expect(c).toMatchObject({ source: 'sform', repaired: false });
  });

  it('replaces a mismatching sform by the qform, even with qform_code 0', () => {
    const c = chooseAffine(header([1, Math.fround(1.00002), 1]));
    expect(c).toMatchObject({ source: 'qform', repaired: true });
    expect(Array.from(c.affine)).toEqual(QFORM);
  });

  it('stores the replacing qform at the header\'s precision (float32 srow in NIfTI-1, float64 in NIfTI-2)', () => {
    const d = 0.3; // not a float32 value
    const v1 = chooseAffine(header([2, 2, 2], { quatern_d: d }));
    const v2h = header([2, 2, 2], { quatern_d: d, version: 2 });
    const v2 = chooseAffine(v2h);
    const exact = qformAffine(v2h)!;
    expect(Array.from(v2.affine)).toEqual(Array.from(exact));
    expect(Array.from(v1.affine)).toEqual(Array.from(qformAffine({ ...v2h, version: 1 })!).map((x) => Math.fround(x)));
    expect(v1.affine[1]).not.toBe(v2.affine[1]);
  });

  it('keeps the sform when the qform is invalid too', () => {
    const c = chooseAffine(header([2, 2, 2], { quatern_b: 0.9, quatern_c: 0.9 }));
    expect(c).toMatchObject({ source: 'sform', repaired: false });
    expect(c.affine[0]).toBe(2);
  });

  it('compares over rank 4 for a 4-D file: translation norm against pixdim[4]', () => {
    // dim[0] = 4, pixdim[4] = 1. With a zero qoffset the qform's 4th column has norm 1 and matches.
    const fourD = { dim: [4, 7, 5, 4, 1, 1, 1, 1] };
    const matching = chooseAffine(header([2, 2, 2], { ...fourD, qoffset_x: 0, qoffset_y: 0, qoffset_z: 0 }));
    expect(matching).toMatchObject({ source: 'qform', repaired: true });
    expect(Array.from(matching.affine)).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    // With qoffset (7, 8, 9) neither matches: the sform stays.
    expect(chooseAffine(header([2, 2, 2], fourD))).toMatchObject({ source: 'sform', repaired: false });
  });

  it('never repairs a file with dim[0] >= 5', () => {
    const c = chooseAffine(header([2, 2, 2], { dim: [5, 7, 5, 4, 1, 1, 1, 1] }));
    expect(c).toMatchObject({ source: 'sform', repaired: false });
  });
});
