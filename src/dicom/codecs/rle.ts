/**
 * DICOM RLE Lossless (PS3.5 Annex G): a 64-byte header (segment count, then 15 segment offsets,
 * uint32 LE), then one PackBits segment per byte plane, most significant byte plane first.
 */
import { dicomInvalid } from '../dicom-errors.js';

const HEADER_BYTES = 64;

/** One PackBits segment (G.3.1) into `out` at byte `start` with the given `stride`; returns bytes written. */
function unpackSegment(src: Uint8Array, out: Uint8Array, start: number, stride: number, count: number): number {
  let p = 0;
  let n = 0;
  while (p < src.length && n < count) {
    const header = (src[p++] << 24) >> 24; // int8
    if (header >= 0) {
      const run = header + 1;
      if (p + run > src.length || n + run > count) throw dicomInvalid('RLE literal run past the end of its segment or frame');
      for (let r = 0; r < run; r++) out[start + (n++) * stride] = src[p++];
    } else if (header !== -128) {
      const run = 1 - header;
      if (p >= src.length || n + run > count) throw dicomInvalid('RLE replicate run past the end of its segment or frame');
      const value = src[p++];
      for (let r = 0; r < run; r++) out[start + (n++) * stride] = value;
    }
  }
  return n;
}

/**
 * Decodes one RLE frame of `pixels` samples of `bytesPerSample` bytes into little-endian bytes
 * (the layout of native pixel data).
 */
export function decodeRle(frame: Uint8Array, pixels: number, bytesPerSample: number): Uint8Array {
  if (frame.length < HEADER_BYTES) throw dicomInvalid(`RLE frame of ${frame.length} bytes is shorter than its 64-byte header`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const segments = view.getUint32(0, true);
  if (segments !== bytesPerSample) {
    throw dicomInvalid(`RLE frame has ${segments} segments, expected ${bytesPerSample} for one ${bytesPerSample * 8}-bit sample per pixel`);
  }
  const offsets: number[] = [];
  for (let s = 0; s < segments; s++) offsets.push(view.getUint32(4 + 4 * s, true));
  offsets.push(frame.length);
  const out = new Uint8Array(pixels * bytesPerSample);
  for (let s = 0; s < segments; s++) {
    const begin = offsets[s];
    const end = offsets[s + 1];
    if (begin < HEADER_BYTES || end < begin || end > frame.length) throw dicomInvalid(`RLE segment ${s + 1} has a bad offset (${begin})`);
    // Segment 0 holds the most significant bytes: in little-endian output that is the last byte.
    const written = unpackSegment(frame.subarray(begin, end), out, bytesPerSample - 1 - s, bytesPerSample, pixels);
    if (written !== pixels) throw dicomInvalid(`RLE segment ${s + 1} decodes to ${written} bytes, expected ${pixels}`);
  }
  return out;
}
