import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { gzipPieces, type PieceSource } from '../../../src/nifti/gzip-pieces.js';
import { encodeNifti, niftiPieces } from '../../../src/nifti/write-nifti.js';
import { mulberry32 } from '../../../src/phantom/make-phantom.js';
import type { Shape3 } from '../../../src/volume/volume.js';

/** Pieces of `data` with the given lengths (summing to data.length). */
function piecesOf(data: Uint8Array, lengths: number[]): PieceSource {
  const starts = lengths.map((_, i) => lengths.slice(0, i).reduce((a, b) => a + b, 0));
  return {
    count: lengths.length,
    length: (i) => lengths[i],
    fill: (i, into) => into.set(data.subarray(starts[i], starts[i] + lengths[i])),
  };
}

/** Mostly compressible bytes with some noise, like an image. */
function imageLikeBytes(length: number, seed: number): Uint8Array {
  const random = mulberry32(seed);
  return Uint8Array.from({ length }, (_, i) => (random() < 0.1 ? Math.floor(random() * 256) : (i >> 9) & 0xff));
}

/** The deflate body between gzip's 10-byte header and 8-byte trailer, inflated as ONE raw stream. */
function inflateBodyAsOneStream(gz: Uint8Array): Uint8Array {
  return zlib.inflateRawSync(gz.subarray(10, gz.length - 8));
}

describe('gzipPieces', () => {
  const data = imageLikeBytes(300_000, 7);
  const splits: [string, number[]][] = [
    ['one piece', [300_000]],
    ['three uneven pieces', [352, 200_000, 99_648]],
    ['many small pieces and an empty one', [...Array.from({ length: 29 }, () => 10_000), 0, 10_000]],
  ];
  for (const [name, lengths] of splits) {
    for (const inFlight of [1, 3]) {
      it(`is one gzip member of the whole (${name}, ${inFlight} in flight)`, async () => {
        const gz = await gzipPieces(piecesOf(data, lengths), 1, inFlight);
        expect(Buffer.from(zlib.gunzipSync(gz)).equals(Buffer.from(data))).toBe(true);
        // A single deflate stream, not concatenated gzip members that some readers stop after.
        expect(Buffer.from(inflateBodyAsOneStream(gz)).equals(Buffer.from(data))).toBe(true);
        const trailer = new DataView(gz.buffer, gz.byteOffset + gz.length - 8, 8);
        expect(trailer.getUint32(0, true)).toBe(zlib.crc32(data));
        expect(trailer.getUint32(4, true)).toBe(data.length);
      });
    }
  }

  it('writes zlib\'s header for the level, and an empty input as a valid empty gzip', async () => {
    const gz9 = await gzipPieces(piecesOf(data, [100_000, 200_000]), 9);
    expect(Array.from(gz9.subarray(0, 10))).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
    expect(zlib.gunzipSync(gz9).length).toBe(data.length);
    const empty = await gzipPieces({ count: 0, length: () => 0, fill: () => {} }, 1);
    expect(zlib.gunzipSync(empty).length).toBe(0);
  });

  it('rejects with the error a piece throws, after the pieces in flight settle', async () => {
    const failing: PieceSource = {
      count: 5,
      length: () => 1000,
      fill: (i, into) => {
        if (i === 3) throw new Error('encoding failed');
        into.fill(i);
      },
    };
    await expect(gzipPieces(failing, 1, 2)).rejects.toThrow('encoding failed');
  });
});

describe('niftiPieces', () => {
  const affine = Float64Array.from([-0.8, 0, 0, 10, 0, -0.8, 0, 20, 0, 0, 2.5, -30, 0, 0, 0, 1]);
  const shape: Shape3 = [23, 17, 11];
  const voxels = shape[0] * shape[1] * shape[2];
  const random = mulberry32(3);
  const floats = Float32Array.from({ length: 2 * voxels }, () => (random() - 0.3) * 2000);
  const labels = Uint8Array.from({ length: voxels }, (_, i) => (i % 7 === 0 ? 1 : 0));
  const cases = [
    { name: 'float32, 2 channels, pieces crossing the channel border', volume: { data: floats, shape, affine, channels: 2 }, options: {}, pieceBytes: 7 * 23 * 17 * 4 },
    { name: 'int16 with scaling, big-endian, one plane per piece', volume: { data: floats.subarray(0, voxels), shape, affine }, options: { datatype: 'int16' as const, scaling: { slope: 0.5, inter: -1024 }, byteOrder: 'big' as const }, pieceBytes: 1 },
    { name: 'a uint8 label map written as float32', volume: { data: labels, shape, affine }, options: { datatype: 'float32' as const }, pieceBytes: 5000 },
    { name: 'everything in one piece', volume: { data: labels, shape, affine }, options: { datatype: 'uint8' as const }, pieceBytes: 1 << 30 },
  ];
  for (const c of cases) {
    it(`gzips to exactly encodeNifti's bytes: ${c.name}`, async () => {
      const source = niftiPieces(c.volume, c.options, c.pieceBytes);
      expect(source.count).toBeGreaterThanOrEqual(2);
      const gz = await gzipPieces(source, 1);
      expect(Buffer.from(zlib.gunzipSync(gz)).equals(Buffer.from(encodeNifti(c.volume, c.options)))).toBe(true);
    });
  }

  it('validates before anything is encoded', () => {
    expect(() => niftiPieces({ data: labels.subarray(1), shape, affine })).toThrow(RangeError);
  });
});
