import { crc32, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Canvas, renderBarChart } from '../../../src/bench/png-chart.js';

interface Chunk {
  type: string;
  data: Uint8Array;
  crcOk: boolean;
}

/** A tiny independent PNG reader: signature, chunks with their CRCs checked. */
function readChunks(png: Uint8Array): Chunk[] {
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: Chunk[] = [];
  for (let p = 8; p < png.length; ) {
    const length = view.getUint32(p);
    const type = String.fromCharCode(...png.subarray(p + 4, p + 8));
    const data = png.subarray(p + 8, p + 8 + length);
    chunks.push({ type, data, crcOk: view.getUint32(p + 8 + length) === crc32(png.subarray(p + 4, p + 8 + length)) });
    p += 12 + length;
  }
  return chunks;
}

/** Decodes an 8-bit RGB, filter-0 PNG to its pixels. */
function decodeRgb(png: Uint8Array): { width: number; height: number; pixel: (x: number, y: number) => number[] } {
  const chunks = readChunks(png);
  expect(chunks.every((c) => c.crcOk)).toBe(true);
  const ihdr = new DataView(chunks[0].data.buffer, chunks[0].data.byteOffset, 13);
  const width = ihdr.getUint32(0);
  const height = ihdr.getUint32(4);
  const raw = inflateSync(Buffer.concat(chunks.filter((c) => c.type === 'IDAT').map((c) => c.data)));
  expect(raw.length).toBe(height * (width * 3 + 1));
  for (let y = 0; y < height; y++) expect(raw[y * (width * 3 + 1)]).toBe(0);
  return {
    width,
    height,
    pixel: (x, y) => [...raw.subarray(y * (width * 3 + 1) + 1 + x * 3, y * (width * 3 + 1) + 4 + x * 3)],
  };
}


describe('Canvas.text', () => {
  it('draws the 5x7 glyph of "1" (a vertical stroke with a base) at scale 1', () => {
    const c = new Canvas(6, 7, [0, 0, 0]);
    c.text(0, 0, '1', [255, 255, 255], 1);
    const on = (x: number, y: number) => c.pixels[(y * 6 + x) * 3] === 255;
    // Column 2 is the stem on every row; the base row spans columns 1..3.
    for (let y = 0; y < 7; y++) expect(on(2, y)).toBe(true);
    expect([on(1, 6), on(3, 6), on(0, 6), on(4, 6)]).toEqual([true, true, false, false]);
    expect(on(1, 1)).toBe(true); // the flag
  });
});

describe('renderBarChart', () => {
  it('draws bars proportional to their values and no bar for n/a', () => {
    const png = renderBarChart({
      title: 't',
      width: 600,
      panels: [{ title: 'p', bars: [{ label: 'a', value: 100, note: '' }, { label: 'b', value: 50, note: '' }, { label: 'c', value: null, note: 'n/a' }] }],
    });
    const image = decodeRgb(png);
    // Length of the coloured run on each bar's middle row (first bar blue, second orange).
    const runs: number[] = [];
    for (let y = 0; y < image.height; y++) {
      let n = 0;
      for (let x = 0; x < image.width; x++) {
        const [r, g, b] = image.pixel(x, y);
        if ((r === 68 && g === 114 && b === 196) || (r === 237 && g === 125 && b === 49)) n++;
      }
      if (n > 0 && runs[runs.length - 1] !== n) runs.push(n);
    }
    expect(runs.length).toBe(2);
    expect(Math.abs(runs[0] / runs[1] - 2)).toBeLessThan(0.02);
  });
});
