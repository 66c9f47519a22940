/**
 * The preview: PNG bytes a decoder written here (chunk walk, CRC via node:zlib, inflate, filter 0)
 * reads back pixel for pixel, the display convention (patient right on screen left, anterior and
 * superior up) checked on hand-built volumes, the same picture whatever the storage orientation,
 * square millimetre pixels, and mask outlines in their colours.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crc32 as zlibCrc32, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32, encodePng, type RasterImage } from '../../../src/preview/encode-png.js';
import { PREDICTION_COLOR, REFERENCE_COLOR, renderPreview, writePreviewPng } from '../../../src/preview/render-preview.js';
import type { Shape3, Vec3, Volume } from '../../../src/volume/volume.js';

interface DecodedPng {
  width: number;
  height: number;
  colorType: number;
  bitDepth: number;
  chunks: string[];
  pixels: Uint8Array;
}

/** A minimal PNG reader for 8-bit, non-interlaced images whose rows use filter 0. */
function decodePng(bytes: Uint8Array): DecodedPng {
  expect(Array.from(bytes.subarray(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: string[] = [];
  const idat: Uint8Array[] = [];
  let width = 0, height = 0, colorType = -1, bitDepth = 0;
  let offset = 8;
  while (offset < bytes.length) {
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    const body = bytes.subarray(offset + 8, offset + 8 + length);
    // The CRC covers type + data; checked with zlib's own implementation.
    expect(view.getUint32(offset + 8 + length)).toBe(zlibCrc32(bytes.subarray(offset + 4, offset + 8 + length)));
    chunks.push(type);
    if (type === 'IHDR') {
      const h = new DataView(body.buffer, body.byteOffset, body.byteLength);
      width = h.getUint32(0);
      height = h.getUint32(4);
      bitDepth = body[8];
      colorType = body[9];
      expect([body[10], body[11], body[12]]).toEqual([0, 0, 0]);
    } else if (type === 'IDAT') {
      idat.push(body);
    }
    offset += 12 + length;
  }
  const channels = { 0: 1, 2: 3, 6: 4 }[colorType]!;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  expect(raw.length).toBe((stride + 1) * height);
  const pixels = new Uint8Array(stride * height);
  for (let row = 0; row < height; row++) {
    expect(raw[row * (stride + 1)]).toBe(0);
    pixels.set(raw.subarray(row * (stride + 1) + 1, (row + 1) * (stride + 1)), row * stride);
  }
  return { width, height, colorType, bitDepth, chunks, pixels };
}

/** A volume whose value at world point (x, y, z) comes from `f`, stored in the given orientation. */
function volumeFrom(rasShape: Shape3, spacing: Vec3, storage: 'RAS' | 'LPS', f: (q: Shape3) => number): Volume {
  const shape = rasShape;
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  const flip = storage === 'LPS';
  for (let i = 0; i < shape[0]; i++) for (let j = 0; j < shape[1]; j++) for (let k = 0; k < shape[2]; k++) {
    // Stored (i, j, k) -> RAS index: LPS storage reverses the first two axes.
    const q: Shape3 = flip ? [shape[0] - 1 - i, shape[1] - 1 - j, k] : [i, j, k];
    data[(i * shape[1] + j) * shape[2] + k] = f(q);
  }
  const affine = new Float64Array(16);
  affine[0] = (flip ? -1 : 1) * spacing[0];
  affine[5] = (flip ? -1 : 1) * spacing[1];
  affine[10] = spacing[2];
  affine[15] = 1;
  return { data, shape, spacingMm: spacing, affine };
}

function pixel(image: RasterImage, x: number, y: number): number[] {
  const o = (y * image.width + x) * image.channels;
  return Array.from(image.data.subarray(o, o + image.channels));
}

describe('encodePng', () => {
  it('computes the standard CRC-32 check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it('writes IHDR, IDAT, IEND that decode to the same pixels (grey, RGB, RGBA)', () => {
    for (const channels of [1, 3, 4] as const) {
      const width = 7, height = 5;
      const data = Uint8Array.from({ length: width * height * channels }, (_, n) => (n * 37 + 11) % 256);
      const decoded = decodePng(encodePng({ width, height, channels, data }));
      expect(decoded.chunks).toEqual(['IHDR', 'IDAT', 'IEND']);
      expect([decoded.width, decoded.height, decoded.bitDepth]).toEqual([7, 5, 8]);
      expect(decoded.colorType).toBe({ 1: 0, 3: 2, 4: 6 }[channels]);
      expect(Array.from(decoded.pixels)).toEqual(Array.from(data));
    }
  });

  it('refuses inconsistent rasters', () => {
    expect(() => encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(11) })).toThrow(RangeError);
    expect(() => encodePng({ width: 0, height: 2, channels: 1, data: new Uint8Array(0) })).toThrow(/image.width/);
  });
});

describe('renderPreview', () => {
  const rasShape: Shape3 = [20, 30, 10];
  const spacing: Vec3 = [1, 1, 1];
  // Bright (200 HU) in the patient's right half (high R index) and in the anterior third (high A).
  const scene = (q: Shape3) => (q[0] >= 10 ? 200 : -200) + (q[1] >= 20 ? 1000 : 0);

  it('shows the axial slice in radiological convention: patient right on the left, anterior up', () => {
    const image = renderPreview(volumeFrom(rasShape, spacing, 'RAS', scene), [], { panelPx: 30, windowHu: [-200, 200] });
    // 1 mm per pixel (longest extent 30 mm over 30 px): axial panel 20 wide x 30 high at x = 0.
    // Column c shows R index 19 - c; row r shows A index 29 - r.
    expect(pixel(image, 0, 29)).toEqual([255, 255, 255]); // R 19, A 0: right half, posterior
    expect(pixel(image, 19, 29)).toEqual([0, 0, 0]); // R 0: left half
    expect(pixel(image, 19, 0)).toEqual([255, 255, 255]); // A 29: anterior band (1000 HU + ...)
    expect(pixel(image, 15, 15)).toEqual([0, 0, 0]); // R 4, A 14
  });

  it('gives the same picture for the same patient stored LPS or RAS', () => {
    const ras = renderPreview(volumeFrom(rasShape, spacing, 'RAS', scene));
    const lps = renderPreview(volumeFrom(rasShape, spacing, 'LPS', scene));
    expect([lps.width, lps.height]).toEqual([ras.width, ras.height]);
    expect(Buffer.from(lps.data).equals(Buffer.from(ras.data))).toBe(true);
  });

  it('keeps millimetres square: thick slices make tall coronal and sagittal panels', () => {
    // 40 x 40 voxels of 1 mm, 8 slices of 5 mm: extents 40, 40, 40 mm at 1 mm per pixel.
    const image = renderPreview(volumeFrom([40, 40, 8], [1, 1, 5], 'RAS', () => 0), [], { panelPx: 40 });
    expect(image.height).toBe(40);
    // Three 40-pixel panels and two 6-pixel gaps.
    expect(image.width).toBe(40 * 3 + 2 * 6);
  });

  it('outlines a mask through its centroid: border pixels in colour, interior and outside grey', () => {
    const volume = volumeFrom(rasShape, spacing, 'RAS', () => 40);
    const mask = new Uint8Array(volume.data.length);
    // A box R 5..9, A 10..14, S 3..6 (RAS storage: stored index = RAS index).
    for (let i = 5; i <= 9; i++) for (let j = 10; j <= 14; j++) for (let k = 3; k <= 6; k++) mask[(i * 30 + j) * 10 + k] = 1;
    const image = renderPreview(volume, [{ mask, color: PREDICTION_COLOR }], { panelPx: 30 });
    // Centroid (7, 12, 4.5) rounds to (7, 12, 5).
    expect(image.centreVoxel).toEqual([7, 12, 5]);
    // Axial panel: column 19 - R, row 29 - A. The box spans columns 10..14 and rows 15..19.
    const grey = pixel(image, 0, 0);
    expect(grey[0]).toBe(grey[1]);
    expect(pixel(image, 10, 15)).toEqual(PREDICTION_COLOR); // corner
    expect(pixel(image, 12, 19)).toEqual(PREDICTION_COLOR); // bottom edge
    expect(pixel(image, 12, 17)).toEqual(grey); // interior
    expect(pixel(image, 9, 17)).toEqual(grey); // just outside
    expect(pixel(image, 15, 17)).toEqual(grey);
  });

  it('centres on the volume when the mask is empty, and mixes coinciding outlines', () => {
    const volume = volumeFrom(rasShape, spacing, 'RAS', () => 0);
    const empty = renderPreview(volume, [{ mask: new Uint8Array(volume.data.length), color: PREDICTION_COLOR }]);
    // (n - 1) / 2 = 9.5, 14.5, 4.5, rounded half up.
    expect(empty.centreVoxel).toEqual([10, 15, 5]);
    const mask = new Uint8Array(volume.data.length);
    for (let i = 5; i <= 9; i++) for (let j = 10; j <= 14; j++) for (let k = 3; k <= 6; k++) mask[(i * 30 + j) * 10 + k] = 1;
    const both = renderPreview(volume, [{ mask, color: REFERENCE_COLOR }, { mask, color: PREDICTION_COLOR }], { panelPx: 30 });
    const yellow = REFERENCE_COLOR.map((c, i) => Math.max(c, PREDICTION_COLOR[i]));
    expect(pixel(both, 10, 15)).toEqual(yellow);
  });

  it('writes a PNG file that decodes to the rendered raster', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-preview-'));
    try {
      const file = path.join(dir, 'nested', 'preview.png');
      const rendered = await writePreviewPng(file, volumeFrom(rasShape, spacing, 'LPS', scene));
      const decoded = decodePng(new Uint8Array(await readFile(file)));
      expect([decoded.width, decoded.height, decoded.colorType]).toEqual([rendered.width, rendered.height, 2]);
      expect(Buffer.from(decoded.pixels).equals(Buffer.from(rendered.data))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects a mask of the wrong size', () => {
    const volume = volumeFrom(rasShape, spacing, 'RAS', () => 0);
    expect(() => renderPreview(volume, [{ mask: new Uint8Array(5), color: PREDICTION_COLOR }])).toThrow(TypeError);
  });
});
