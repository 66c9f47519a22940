/**
 * The intensity window (MONAI `ScaleIntensityRanged(a_min=-57, a_max=164, b_min=0, b_max=1,
 * clip=True)`, spec section 4), reproduced bit for bit.
 *
 * MONAI evaluates `((x - a_min) / (a_max - a_min)) * (b_max - b_min) + b_min`, then clamps, as
 * separate float32 tensor ops with each Python scalar cast to float32. Every step here is one
 * double operation on float32 operands rounded back with Math.fround, which equals the float32
 * IEEE result (double has more than 2 * 24 + 2 bits, so the double rounding is innocuous).
 *
 * The division: a float32 reciprocal (x * fround(1/221)) differs in the last bit for many inputs,
 * but x * (1/221) in double, rounded once to float32, equals float32 x / 221 for every float32 x
 * and divisor: the double product is within 2^-52 (relative) of x/d, while x/d can never be a
 * float32 rounding midpoint (d * midpoint needs at least 25 significant bits, x has 24) and,
 * when not one, is at least 2^-49 away from it (both x and d * midpoint lie on a grid of
 * 2^-48 relative spacing). So the result is bit-identical and avoids a division per voxel.
 */
import { expectedRange, expectedType } from '../errors.js';
import type { IntensityWindow } from '../model/manifest.js';
import { volumeKernels, type IntensityWindowKernel } from '../native/volume-kernels.js';

/** The window's parameters, as the bundle's manifest gives them (MONAI's ScaleIntensityRanged). */
export type IntensityWindowParameters = IntensityWindow;

function assertFinite(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number') throw expectedType('a number', name, value);
  if (!Number.isFinite(value)) throw expectedRange('a finite number', name, value);
}

/**
 * Maps [aMin, aMax] linearly onto [bMin, bMax] in float32, clamping to [bMin, bMax] if `clip`,
 * into `out` (a new array by default; `data` itself works too: each voxel is read before it is
 * written).
 */
export function applyIntensityWindow(
  data: Float32Array,
  aMin = -57,
  aMax = 164,
  bMin = 0,
  bMax = 1,
  clip = true,
  out: Float32Array = new Float32Array(data.length),
): Float32Array {
  const w = windowArguments(data, aMin, aMax, bMin, bMax, out);
  const kernels = volumeKernels();
  if (kernels !== null) {
    // The same operations in C++ (native/core/volume_kernels.cc), all three branches below.
    const k = kernelWindow(w, clip);
    kernels.applyIntensityWindow(data, out, k.a, k.b, k.reciprocal, k.scale, k.lo, k.hi, k.clip, k.shiftOnly);
    return out;
  }
  return windowInTs(data, out, w.a, w.b, w.range, bMax, bMin, clip);
}

/**
 * As applyIntensityWindow, the addon's kernel on the libuv thread pool (the event loop stays
 * free); where the addon is missing, the TS loop runs here.
 */
export async function applyIntensityWindowAsync(
  data: Float32Array,
  aMin = -57,
  aMax = 164,
  bMin = 0,
  bMax = 1,
  clip = true,
  out: Float32Array = new Float32Array(data.length),
): Promise<Float32Array> {
  const kernels = volumeKernels();
  if (kernels === null) return applyIntensityWindow(data, aMin, aMax, bMin, bMax, clip, out);
  const w = windowArguments(data, aMin, aMax, bMin, bMax, out);
  const k = kernelWindow(w, clip);
  await kernels.applyIntensityWindowAsync(data, out, k.a, k.b, k.reciprocal, k.scale, k.lo, k.hi, k.clip, k.shiftOnly);
  return out;
}

/**
 * The window as the addon's kernels apply it, for a resampling that windows each value as it
 * stores it (trilinear.ts): the same operations as applyIntensityWindow, so the same bits.
 */
export function intensityWindowKernel(p: IntensityWindowParameters): IntensityWindowKernel {
  if (typeof p !== 'object' || p === null) throw expectedType('intensity window parameters', 'window', p);
  if (typeof p.clip !== 'boolean') throw expectedType('a boolean', 'window.clip', p.clip);
  return kernelWindow(scalarArguments(p.aMin, p.aMax, p.bMin, p.bMax), p.clip);
}

function kernelWindow(w: { a: number; b: number; range: number; scale: number; hi: number }, clip: boolean): IntensityWindowKernel {
  return { a: w.a, b: w.b, reciprocal: 1 / w.range, scale: w.scale, lo: w.b, hi: w.hi, clip, shiftOnly: w.range === 0 };
}

/** The checked arguments as float32: a = fl32(aMin), b = fl32(bMin), the ranges, hi = fl32(bMax). */
function windowArguments(
  data: Float32Array, aMin: number, aMax: number, bMin: number, bMax: number, out: Float32Array,
): { a: number; b: number; range: number; scale: number; hi: number } {
  if (!(data instanceof Float32Array)) throw expectedType('a Float32Array', 'data', data);
  if (!(out instanceof Float32Array) || out.length !== data.length) {
    throw expectedType(`a Float32Array of length ${data.length}`, 'out', out);
  }
  return scalarArguments(aMin, aMax, bMin, bMax);
}

function scalarArguments(aMin: number, aMax: number, bMin: number, bMax: number): { a: number; b: number; range: number; scale: number; hi: number } {
  assertFinite(aMin, 'aMin');
  assertFinite(aMax, 'aMax');
  assertFinite(bMin, 'bMin');
  assertFinite(bMax, 'bMax');
  const f = Math.fround;
  // The differences are Python scalars (float64) that torch casts to float32 when applied.
  return { a: f(aMin), b: f(bMin), range: f(aMax - aMin), scale: f(bMax - bMin), hi: f(bMax) };
}

/** applyIntensityWindow's TS loops (a and b already float32, range = fl32(aMax - aMin)). */
function windowInTs(data: Float32Array, out: Float32Array, a: number, b: number, range: number, bMax: number, bMin: number, clip: boolean): Float32Array {
  const f = Math.fround;
  if (range === 0) {
    // MONAI warns and only shifts: x - a_min + b_min, no scaling or clipping.
    for (let i = 0; i < data.length; i++) out[i] = f(data[i] - a) + b;
    return out;
  }
  const scale = f(bMax - bMin);
  const lo = b;
  const hi = f(bMax);
  const reciprocal = 1 / range;
  const n = data.length;
  if (scale === 1 && clip && lo <= hi) {
    // The bundle's case: `* 1` is exact on a float32, so only two roundings remain.
    for (let i = 0; i < n; i++) {
      const v = Math.fround(Math.fround(data[i] - a) * reciprocal) + b;
      out[i] = v < lo ? lo : v > hi ? hi : v;
    }
    return out;
  }
  for (let i = 0; i < n; i++) {
    const v = f(f(f(data[i] - a) * reciprocal) * scale) + b;
    if (clip) {
      // torch.clamp order (max with lo, then min with hi); comparisons keep NaN as NaN.
      const w = v < lo ? lo : v;
      out[i] = w > hi ? hi : w;
    } else {
      out[i] = v;
    }
  }
  return out;
}
