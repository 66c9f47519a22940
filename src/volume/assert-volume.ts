/**
 * Argument checks shared by the geometric transforms: they index typed arrays with computed
 * offsets, so a wrong length would read garbage instead of throwing.
 */
import { expectedRange, expectedType } from '../errors.js';
import type { Shape3, Volume } from './volume.js';

/** Throws unless `shape` is three positive integers. */
export function assertShape3(shape: unknown, name: string): asserts shape is Shape3 {
  if (!Array.isArray(shape) || shape.length !== 3) throw expectedType('an array of three integers', name, shape);
  if (!shape.every((n) => Number.isInteger(n) && n > 0)) {
    throw expectedRange('three positive integers', name, `[${shape.join(', ')}]`);
  }
}

/** Throws unless `data` is a Float32Array holding `channels` volumes of `shape`. */
export function assertChannelData(data: unknown, channels: number, shape: Shape3, name: string): asserts data is Float32Array {
  if (!(data instanceof Float32Array)) throw expectedType('a Float32Array', name, data);
  if (!Number.isInteger(channels) || channels < 1) throw expectedRange('a positive integer', 'channels', channels);
  const expected = channels * shape[0] * shape[1] * shape[2];
  if (data.length !== expected) {
    throw expectedRange(`a length of ${expected} (${channels} x ${shape.join('x')})`, `${name}.length`, data.length);
  }
}

/** Throws unless `volume` is a well-formed single-channel Volume with a finite, invertible-looking affine. */
export function assertVolume(volume: unknown, name = 'volume'): asserts volume is Volume {
  if (typeof volume !== 'object' || volume === null) throw expectedType('a Volume', name, volume);
  const v = volume as Partial<Volume>;
  assertShape3(v.shape, `${name}.shape`);
  assertChannelData(v.data, 1, v.shape, `${name}.data`);
  if (!(v.affine instanceof Float64Array) || v.affine.length !== 16) {
    throw expectedType('a Float64Array(16)', `${name}.affine`, v.affine);
  }
  if (!v.affine.every(Number.isFinite)) throw expectedRange('finite values', `${name}.affine`, 'a non-finite value');
}
