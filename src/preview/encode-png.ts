/**
 * A minimal PNG encoder (8-bit greyscale, RGB or RGBA, no interlace): enough for previews without
 * an npm dependency. Rows use filter 0 (none) and zlib does the rest; CRC-32 per chunk as the PNG
 * specification (ISO/IEC 15948) defines it.
 */
import { deflateSync } from 'node:zlib';
import { expectedRange, expectedType } from '../errors.js';

/** A raster image, rows top to bottom, channels interleaved. */
export interface RasterImage {
  width: number;
  height: number;
  /** 1 (grey), 3 (RGB) or 4 (RGBA). */
  channels: 1 | 3 | 4;
  data: Uint8Array;
}

const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const COLOR_TYPE: Record<number, number> = { 1: 0, 3: 2, 4: 6 };

let crcTable: Uint32Array | undefined;

/** CRC-32 (polynomial 0xEDB88320, as PNG and zlib use), optionally continuing from `crc`. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(payload, 8);
  // The CRC covers the type and the payload, not the length.
  view.setUint32(8 + payload.length, crc32(out.subarray(4, 8 + payload.length)));
  return out;
}

/**
 * Encodes a raster as PNG bytes.
 * @example
 * await writeFile('grey.png', encodePng({ width: 2, height: 1, channels: 1, data: Uint8Array.of(0, 255) }));
 */
export function encodePng(image: RasterImage, options: { level?: number } = {}): Uint8Array {
  if (typeof image !== 'object' || image === null) throw expectedType('a RasterImage', 'image', image);
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || width < 1 || width > 65535) throw expectedRange('an integer in 1..65535', 'image.width', width);
  if (!Number.isInteger(height) || height < 1 || height > 65535) throw expectedRange('an integer in 1..65535', 'image.height', height);
  if (!(channels in COLOR_TYPE)) throw expectedRange('1, 3 or 4', 'image.channels', channels);
  if (!(data instanceof Uint8Array)) throw expectedType('a Uint8Array', 'image.data', data);
  if (data.length !== width * height * channels) throw expectedRange(`${width * height * channels} bytes`, 'image.data', data);
  const level = options.level ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw expectedRange('an integer in 0..9', 'options.level', level);

  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = 8; // bit depth
  header[9] = COLOR_TYPE[channels];
  // header[10..12]: compression 0 (deflate), filter method 0, interlace 0 (none).

  const stride = width * channels;
  const raw = new Uint8Array((stride + 1) * height);
  for (let row = 0; row < height; row++) {
    raw[row * (stride + 1)] = 0; // filter type: none
    raw.set(data.subarray(row * stride, (row + 1) * stride), row * (stride + 1) + 1);
  }
  const parts = [PNG_SIGNATURE, chunk('IHDR', header), chunk('IDAT', deflateSync(raw, { level })), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
