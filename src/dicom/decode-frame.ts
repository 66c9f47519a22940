/**
 * One frame's stored values: the frame's bytes found (native or encapsulated), decoded by its
 * transfer syntax to little-endian samples, then BitsStored applied (bits above it masked away,
 * sign extended for PixelRepresentation 1). CT numbers come later (RescaleSlope/Intercept).
 */
import { createRequire } from 'node:module';
import { decodeRle } from './codecs/rle.js';
import type { TransferSyntax } from './codecs/transfer-syntax.js';
import { decodeJpeg2000, decodeJpegLossless, decodeJpegLs, type FrameExpectation } from './codecs/wasm-codecs.js';
import { dicomInvalid } from './dicom-errors.js';
import type { InstanceHeader } from './parse-instance.js';

const dicomParser = createRequire(import.meta.url)('dicom-parser') as typeof import('dicom-parser');

/** The encoded bytes of frame `index` (0-based) of an encapsulated pixel data element. */
function encapsulatedFrame(instance: InstanceHeader, index: number): Uint8Array {
  const ds = instance.dataSet;
  const element = ds.elements.x7fe00010;
  const fragments = element.fragments ?? [];
  if (fragments.length === 0) throw dicomInvalid(`${instance.name}: encapsulated pixel data without fragments`);
  try {
    if (instance.numberOfFrames === 1) return dicomParser.readEncapsulatedPixelDataFromFragments(ds, element, 0, fragments.length);
    if ((element.basicOffsetTable ?? []).length > 0) return dicomParser.readEncapsulatedImageFrame(ds, element, index);
    if (fragments.length === instance.numberOfFrames) return dicomParser.readEncapsulatedPixelDataFromFragments(ds, element, index, 1);
  } catch (error) {
    throw dicomInvalid(`${instance.name}: frame ${index + 1} cannot be read from the encapsulated pixel data: ${String(error)}`, error);
  }
  throw dicomInvalid(`${instance.name}: ${fragments.length} fragments for ${instance.numberOfFrames} frames and no offset table`);
}

async function frameSamples(instance: InstanceHeader, syntax: TransferSyntax, index: number): Promise<Uint8Array> {
  const bytesPerSample = instance.bitsAllocated / 8;
  const pixels = instance.rows * instance.columns;
  const frameBytes = pixels * bytesPerSample;
  const element = instance.dataSet.elements.x7fe00010;
  if (!element) throw dicomInvalid(`${instance.name} has no PixelData`);
  if (syntax.encoding === 'native') {
    const start = element.dataOffset + index * frameBytes;
    if (element.length < instance.numberOfFrames * frameBytes || start + frameBytes > instance.bytes.length) {
      throw dicomInvalid(`${instance.name}: PixelData holds ${element.length} bytes, ${instance.numberOfFrames} frames of ${instance.rows}x${instance.columns} need ${instance.numberOfFrames * frameBytes}`);
    }
    return instance.bytes.subarray(start, start + frameBytes);
  }
  const encoded = encapsulatedFrame(instance, index);
  const expected: FrameExpectation = { rows: instance.rows, columns: instance.columns, bytesPerSample };
  switch (syntax.encoding) {
    case 'rle':
      return decodeRle(encoded, pixels, bytesPerSample);
    case 'jpeg-lossless':
      return decodeJpegLossless(encoded, expected);
    case 'jpeg-ls':
      return decodeJpegLs(encoded, expected);
    case 'jpeg2000':
      return decodeJpeg2000(encoded, expected);
  }
}

/**
 * Stored values of frame `index` as integers (Int32Array, row-major rows x columns), BitsStored
 * applied. Header fields were validated by the caller (1 sample, 8 or 16 bits allocated).
 */
export async function decodeFrame(instance: InstanceHeader, syntax: TransferSyntax, index: number): Promise<Int32Array> {
  const samples = await frameSamples(instance, syntax, index);
  const pixels = instance.rows * instance.columns;
  const out = new Int32Array(pixels);
  const bits = instance.bitsStored;
  const mask = bits >= 32 ? -1 : (1 << bits) - 1;
  const signBit = 1 << (bits - 1);
  const signed = instance.pixelRepresentation === 1;
  if (instance.bitsAllocated === 16) {
    // An odd byteOffset cannot back a Uint16Array: copy first (dicom-parser issue #73 family).
    const aligned = samples.byteOffset % 2 === 0 ? samples : samples.slice();
    const words = new Uint16Array(aligned.buffer, aligned.byteOffset, pixels);
    for (let p = 0; p < pixels; p++) {
      const v = words[p] & mask;
      out[p] = signed && v & signBit ? v - (mask + 1) : v;
    }
  } else {
    for (let p = 0; p < pixels; p++) {
      const v = samples[p] & mask;
      out[p] = signed && v & signBit ? v - (mask + 1) : v;
    }
  }
  return out;
}
