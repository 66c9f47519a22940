/**
 * The few float64 linear-algebra steps MONAI's Spacing takes (np.linalg.solve / inv / cholesky),
 * written to round the way numpy on OpenBLAS does.
 *
 * Why bother: the output shape is `round_half_even(extent + 1)`, and extents such as 147.5 are exact
 * ties in the common diagonal case. OpenBLAS's LU and triangular solves multiply by the reciprocal
 * of each pivot instead of dividing, and 0.8 * (1 / 1.5) is not 0.8 / 1.5 in the last bit; one ulp
 * either side of a tie changes the shape by a voxel. For diagonal matrices these routines reproduce
 * numpy bit for bit; for general ones they agree to a few ulps.
 */

/** Square matrices are row-major Float64Array(n * n); right-hand sides row-major n x cols. */

/**
 * Solves A X = B by LU with partial pivoting (LAPACK getrf/getrs as OpenBLAS computes them).
 * Throws RangeError on an exactly singular A.
 */
export function solveLinear(a: Float64Array, b: Float64Array, n: number, cols: number): Float64Array {
  const lu = Float64Array.from(a);
  const x = Float64Array.from(b);
  const invDiag = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    // idamax: the first row with the largest magnitude.
    let p = k;
    for (let r = k + 1; r < n; r++) if (Math.abs(lu[r * n + k]) > Math.abs(lu[p * n + k])) p = r;
    if (lu[p * n + k] === 0) throw new RangeError('Matrix is singular');
    if (p !== k) {
      for (let c = 0; c < n; c++) [lu[k * n + c], lu[p * n + c]] = [lu[p * n + c], lu[k * n + c]];
      for (let c = 0; c < cols; c++) [x[k * cols + c], x[p * cols + c]] = [x[p * cols + c], x[k * cols + c]];
    }
    const inv = 1 / lu[k * n + k];
    invDiag[k] = inv;
    for (let r = k + 1; r < n; r++) {
      const l = lu[r * n + k] * inv;
      lu[r * n + k] = l;
      if (l !== 0) for (let c = k + 1; c < n; c++) lu[r * n + c] -= l * lu[k * n + c];
    }
  }
  // Forward substitution with the unit lower factor, then back substitution with U, column-wise
  // as the trsm kernels do (each solved unknown is subtracted from the rows it feeds).
  for (let c = 0; c < cols; c++) {
    for (let k = 0; k < n; k++) {
      const xk = x[k * cols + c];
      if (xk !== 0) for (let r = k + 1; r < n; r++) x[r * cols + c] -= xk * lu[r * n + k];
    }
    for (let k = n - 1; k >= 0; k--) {
      const xk = x[k * cols + c] * invDiag[k];
      x[k * cols + c] = xk;
      if (xk !== 0) for (let r = 0; r < k; r++) x[r * cols + c] -= xk * lu[r * n + k];
    }
  }
  return x;
}

/** Inverse of an n x n matrix (np.linalg.inv: a solve against the identity). */
export function inverse(a: Float64Array, n: number): Float64Array {
  const eye = new Float64Array(n * n);
  for (let i = 0; i < n; i++) eye[i * n + i] = 1;
  return solveLinear(a, eye, n, n);
}

/** Lower Cholesky factor of a symmetric positive-definite matrix (LAPACK potf2 order). */
export function choleskyLower(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let k = 0; k < j; k++) d -= l[j * n + k] * l[j * n + k];
    if (!(d > 0)) throw new RangeError('Matrix is not positive definite');
    const ljj = Math.sqrt(d);
    l[j * n + j] = ljj;
    const inv = 1 / ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = s * inv;
    }
  }
  return l;
}

/** Row-major product of (r x m) and (m x c) matrices, summed in index order. */
export function matmul(a: Float64Array, b: Float64Array, r: number, m: number, c: number): Float64Array {
  const out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let k = 0; k < m; k++) s += a[i * m + k] * b[k * c + j];
      out[i * c + j] = s;
    }
  }
  return out;
}

/** numpy.round: round half to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** np.allclose / torch.allclose: |a - b| <= atol + rtol * |b| elementwise. */
export function allClose(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol = 1e-5): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(a[i] - b[i]) <= atol + rtol * Math.abs(b[i]))) return false;
  }
  return true;
}
