/**
 * Seeded mutations of a byte string, biased towards what breaks parsers: header fields set to
 * boundary values in either byte order, truncation, growth, spliced chunks. Deterministic for a
 * given PRNG state, so any case can be replayed from (target, seed, index).
 */
import { mulberry32 } from '../phantom/make-phantom.js';

export type Random = () => number;
export { mulberry32 };

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x40, 0x20];
const INTERESTING_32 = [0, 1, -1, 0x7fffffff, -0x80000000, 0xffff, 0x10000, 348, 540, 352, 544, 3, 7, 1024, 65536];
const INTERESTING_FLOATS = [0, -0, 1, -1, 1e-30, 1e30, 1e6, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 3.4e38, 1.5, 50];

const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)];

/** An offset, half the time inside the first `hot` bytes (a header). */
function offset(random: Random, length: number, hot: number): number {
  const range = random() < 0.5 ? Math.min(hot, length) : length;
  return Math.floor(random() * Math.max(1, range));
}

/** One to `maxOps` mutations of `input` (never modified); `hot` = bytes of header to favour. */
export function mutate(input: Uint8Array, random: Random, hot = 512, maxOps = 4): Uint8Array {
  let bytes = input.slice();
  const ops = 1 + Math.floor(random() * maxOps);
  for (let n = 0; n < ops; n++) {
    if (bytes.length === 0) bytes = new Uint8Array(1);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const at = offset(random, bytes.length, hot);
    const little = random() < 0.5;
    switch (Math.floor(random() * 10)) {
      case 0:
        bytes[at] ^= 1 << Math.floor(random() * 8);
        break;
      case 1:
        bytes[at] = pick(random, INTERESTING_8);
        break;
      case 2:
        if (at + 2 <= bytes.length) view.setInt16(at, pick(random, INTERESTING_32), little);
        break;
      case 3:
        if (at + 4 <= bytes.length) view.setInt32(at, pick(random, INTERESTING_32), little);
        break;
      case 4:
        if (at + 4 <= bytes.length) view.setFloat32(at, pick(random, INTERESTING_FLOATS), little);
        break;
      case 5:
        if (at + 8 <= bytes.length) {
          if (random() < 0.5) view.setFloat64(at, pick(random, INTERESTING_FLOATS), little);
          else view.setBigInt64(at, BigInt(pick(random, INTERESTING_32)) << BigInt(Math.floor(random() * 40)), little);
        }
        break;
      case 6:
        bytes = bytes.subarray(0, Math.floor(random() * bytes.length)).slice();
        break;
      case 7: {
        const extra = new Uint8Array(Math.floor(random() * 256));
        for (let i = 0; i < extra.length; i++) extra[i] = Math.floor(random() * 256);
        const grown = new Uint8Array(bytes.length + extra.length);
        grown.set(bytes.subarray(0, at));
        grown.set(extra, at);
        grown.set(bytes.subarray(at), at + extra.length);
        bytes = grown;
        break;
      }
      case 8: {
        // Copy a chunk of the input over another place (moves valid structure where it does not belong).
        const from = Math.floor(random() * bytes.length);
        const len = Math.min(Math.floor(random() * 64), bytes.length - from, bytes.length - at);
        bytes.copyWithin(at, from, from + len);
        break;
      }
      default:
        for (let i = 0; i < 8 && at + i < bytes.length; i++) bytes[at + i] = Math.floor(random() * 256);
    }
  }
  return bytes;
}

const JSON_VALUES: unknown[] = [null, -1, 0, 1e308, -1e308, 1.5, '', '../../../../etc/passwd', '/etc/passwd', 'x'.repeat(10000), [], {}, true, [1e9, 1e9, 1e9], [0, 0, 0], ['a'], { '': 1 }, 'NaN'];

/** A JSON document with one to three values replaced by type-confused or boundary values. */
export function mutateJson(value: unknown, random: Random): unknown {
  const copy = structuredClone(value) as unknown;
  const ops = 1 + Math.floor(random() * 3);
  for (let n = 0; n < ops; n++) {
    // Walk to a random node and replace one of its members.
    let node = copy as Record<string, unknown>;
    for (let depth = 0; depth < 6; depth++) {
      if (typeof node !== 'object' || node === null) break;
      const keys = Object.keys(node);
      if (keys.length === 0) break;
      const key = pick(random, keys);
      const child = node[key];
      if (typeof child === 'object' && child !== null && random() < 0.6) {
        node = child as Record<string, unknown>;
        continue;
      }
      node[key] = random() < 0.15 ? undefined : pick(random, JSON_VALUES);
      break;
    }
  }
  return copy;
}
