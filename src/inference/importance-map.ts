/**
 * The per-window blending weights of the sliding window (spec 5; MONAI 1.4
 * `monai.data.utils.compute_importance_map`), in float32 exactly as torch computes them.
 */
import { expectedRange, expectedType } from '../errors.js';
import type { Shape3 } from '../volume/volume.js';

/** How overlapping windows are blended: equal weights, or a Gaussian centred on each window. */
export type BlendMode = 'constant' | 'gaussian';

/** MONAI clamps weights below at max(min(map), 1e-3); torch casts the scalar bound to float32. */
export const IMPORTANCE_FLOOR = Math.fround(1e-3);

/**
 * One axis of MONAI's Gaussian: x = -(n-1)/2 ... (n-1)/2, g = exp(x^2 / (-2 sigma^2)) in float32,
 * sigma = sigmaScale * n (not normalised).
 */
export function gaussianProfile(n: number, sigmaScale: number): Float32Array {
  const sigma = n * sigmaScale;
  // torch: `x**2 / (-2 * sigma**2)` with the Python-double divisor cast to float32 for the float32 op.
  const divisor = Math.fround(-2 * (sigma * sigma));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = -(n - 1) / 2 + i;
    const q = Math.fround(Math.fround(x * x) / divisor);
    // Correctly rounded float32 exp; torch's SIMD exp (Sleef u10) may differ by 1 ulp.
    out[i] = Math.exp(q);
  }
  return out;
}

/**
 * The importance map of one ROI, `[r0][r1][r2]` C order: all ones (`constant`), or the outer
 * product of the three Gaussian profiles formed as `(g0 * g1) * g2` in float32 and clamped below
 * at 1e-3 (`gaussian`).
 */
export function computeImportanceMap(roiSize: Shape3, mode: BlendMode = 'constant', sigmaScale = 0.125): Float32Array {
  if (!Array.isArray(roiSize) || roiSize.length !== 3) throw expectedType('an array of 3 integers', 'roiSize', roiSize);
  for (const r of roiSize) {
    if (!Number.isInteger(r) || r < 1) throw expectedRange('positive integers', 'roiSize', roiSize);
  }
  const [r0, r1, r2] = roiSize;
  const map = new Float32Array(r0 * r1 * r2);
  if (mode === 'constant') return map.fill(1);
  if (mode !== 'gaussian') throw expectedRange('"constant" or "gaussian"', 'mode', mode);
  if (typeof sigmaScale !== 'number' || !Number.isFinite(sigmaScale) || sigmaScale <= 0) {
    throw expectedRange('a positive finite number', 'sigmaScale', sigmaScale);
  }
  const g0 = gaussianProfile(r0, sigmaScale);
  const g1 = gaussianProfile(r1, sigmaScale);
  const g2 = gaussianProfile(r2, sigmaScale);
  let o = 0;
  for (let a = 0; a < r0; a++) {
    for (let b = 0; b < r1; b++) {
      const ab = Math.fround(g0[a] * g1[b]);
      for (let c = 0; c < r2; c++) {
        const v = Math.fround(ab * g2[c]);
        map[o++] = v < IMPORTANCE_FLOOR ? IMPORTANCE_FLOOR : v;
      }
    }
  }
  return map;
}
