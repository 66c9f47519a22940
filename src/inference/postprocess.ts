/**
 * The bundle's channel-wise postprocessing (spec 7.1 and 7.4): `Activationsd(softmax=True)`, i.e.
 * `torch.softmax(x, dim=0)`, and `AsDiscreted(argmax=True)`, i.e. `torch.argmax(x, dim=0)`, on
 * channel-first `[C][voxels]` float32 data.
 */
import { expectedRange, expectedType } from '../errors.js';
import type { Shape3 } from '../volume/volume.js';

function voxelsPerChannel(data: Float32Array, channels: number, name: string): number {
  if (!(data instanceof Float32Array)) throw expectedType('a Float32Array', name, data);
  if (!Number.isInteger(channels) || channels < 1 || channels > 255) {
    throw expectedRange('an integer in [1, 255]', 'channels', channels);
  }
  if (data.length % channels !== 0) {
    throw expectedRange(`a length divisible by ${channels} channels`, name, `length ${data.length}`);
  }
  return data.length / channels;
}

/** Voxels a later step reads: (i, j, k) of `shape` is needed iff used[0][i], used[1][j] and used[2][k]. */
export interface VoxelFootprint {
  shape: Shape3;
  used: readonly [Uint8Array, Uint8Array, Uint8Array];
}

/** The 2-channel softmax of voxel `v` of `[2][n]` logits into `out` (see softmaxChannels). */
export function softmax2(logits: Float32Array, out: Float32Array, n: number, v: number): void {
  const x0 = logits[v];
  const x1 = logits[n + v];
  const m = x1 > x0 || Number.isNaN(x1) ? x1 : x0;
  // The larger channel's exponent is exp(0) = 1 exactly.
  const e0 = Math.fround(Math.exp(Math.fround(x0 - m)));
  const e1 = Math.fround(Math.exp(Math.fround(x1 - m)));
  const s = Math.fround(e0 + e1);
  out[v] = e0 / s;
  out[n + v] = e1 / s;
}

/**
 * Softmax over the channel axis in float32, with torch's numerics: m = max over channels (NaN
 * propagates), e = exp(x - m), s = sum of e in channel order, p = e / s, each step rounded to
 * float32. exp is correctly rounded here; torch's SIMD exp (Sleef, 1 ulp) can differ by 1 ulp, so
 * results agree with torch to within about 1.2e-7.
 *
 * With a `footprint`, only the voxels it marks are computed (the others stay 0): the exp is most
 * of the cost, and the inverse resampling reads only part of the grid when it downsamples.
 */
export function softmaxChannels(logits: Float32Array, channels: number, footprint?: VoxelFootprint): Float32Array {
  const n = voxelsPerChannel(logits, channels, 'logits');
  const out = new Float32Array(logits.length);
  if (footprint !== undefined) {
    const [n0, n1, n2] = footprint.shape;
    const [u0, u1, u2] = footprint.used;
    if (n0 * n1 * n2 !== n || u0.length !== n0 || u1.length !== n1 || u2.length !== n2) {
      throw expectedRange(`a footprint of ${n} voxels`, 'footprint', `shape [${footprint.shape.join(', ')}]`);
    }
    if (channels === 2) {
      // The k indices in use, once: rows are then visited only where i and j are used.
      const ks = Int32Array.from(Array.from(u2.keys()).filter((k) => u2[k] !== 0));
      for (let i = 0; i < n0; i++) {
        if (!u0[i]) continue;
        for (let j = 0; j < n1; j++) {
          if (!u1[j]) continue;
          const row = (i * n1 + j) * n2;
          for (let q = 0; q < ks.length; q++) softmax2(logits, out, n, row + ks[q]);
        }
      }
      return out;
    }
  }
  if (channels === 2) {
    for (let v = 0; v < n; v++) softmax2(logits, out, n, v);
    return out;
  }
  for (let v = 0; v < n; v++) {
    let m = logits[v];
    for (let c = 1; c < channels; c++) {
      const x = logits[c * n + v];
      if (x > m || Number.isNaN(x)) m = x;
      if (Number.isNaN(m)) break;
    }
    let s = 0;
    for (let c = 0; c < channels; c++) {
      const e = Math.fround(Math.exp(Math.fround(logits[c * n + v] - m)));
      out[c * n + v] = e;
      s = Math.fround(s + e);
    }
    for (let c = 0; c < channels; c++) out[c * n + v] /= s;
  }
  return out;
}

/**
 * Argmax over the channel axis as torch.argmax(dim=0): the first maximal channel wins, so ties go
 * to background (for 2 channels: foreground iff p1 > p0 strictly), and a NaN counts as the maximum.
 * Returns one label per voxel.
 */
export function argmaxForeground(probabilities: Float32Array, channels: number): Uint8Array {
  const n = voxelsPerChannel(probabilities, channels, 'probabilities');
  const labels = new Uint8Array(n);
  if (channels === 2) {
    for (let v = 0; v < n; v++) {
      const p0 = probabilities[v];
      const p1 = probabilities[n + v];
      labels[v] = p1 > p0 || (Number.isNaN(p1) && !Number.isNaN(p0)) ? 1 : 0;
    }
    return labels;
  }
  for (let v = 0; v < n; v++) {
    let best = 0;
    let max = probabilities[v];
    for (let c = 1; c < channels && !Number.isNaN(max); c++) {
      const x = probabilities[c * n + v];
      if (x > max || Number.isNaN(x)) {
        best = c;
        max = x;
      }
    }
    labels[v] = best;
  }
  return labels;
}
