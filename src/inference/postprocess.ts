/**
 * The bundle's channel-wise postprocessing (spec 7.1 and 7.4): `Activationsd(softmax=True)`, i.e.
 * `torch.softmax(x, dim=0)`, and `AsDiscreted(argmax=True)`, i.e. `torch.argmax(x, dim=0)`, on
 * channel-first `[C][voxels]` float32 data.
 */
import { expectedRange, expectedType } from '../errors.js';

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

/**
 * Softmax over the channel axis in float32, with torch's numerics: m = max over channels (NaN
 * propagates), e = exp(x - m), s = sum of e in channel order, p = e / s, each step rounded to
 * float32. exp is correctly rounded here; torch's SIMD exp (Sleef, 1 ulp) can differ by 1 ulp, so
 * results agree with torch to within about 1.2e-7.
 */
export function softmaxChannels(logits: Float32Array, channels: number): Float32Array {
  const n = voxelsPerChannel(logits, channels, 'logits');
  const out = new Float32Array(logits.length);
  if (channels === 2) {
    // The bundle's case, unrolled: the larger channel's exponent is exp(0) = 1 exactly.
    for (let v = 0; v < n; v++) {
      const x0 = logits[v];
      const x1 = logits[n + v];
      const m = x1 > x0 || Number.isNaN(x1) ? x1 : x0;
      const e0 = Math.fround(Math.exp(Math.fround(x0 - m)));
      const e1 = Math.fround(Math.exp(Math.fround(x1 - m)));
      const s = e0 + e1;
      out[v] = e0 / Math.fround(s);
      out[n + v] = e1 / Math.fround(s);
    }
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
