/** Shared helpers for the NIfTI tests: the MONAI reference fixtures and byte patching. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { encodeNifti1Header, type NiftiHeader } from '../../../src/nifti/nifti-header.js';

export const FIXTURE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/nifti');

export interface ReferenceCase {
  name: string;
  file: string;
  shape: [number, number, number];
  rawDatatype: string;
  affine: number[][];
  source: 'sform' | 'qform' | 'base';
  repaired: boolean;
  note: string;
}

export const CASES: ReferenceCase[] = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'cases.json'), 'utf8')).cases;

export function fixturePath(file: string): string {
  return path.join(FIXTURE_DIR, file);
}

/** The fixture file's bytes, inflated when gzip. */
export function plainBytes(file: string): Uint8Array {
  const raw = readFileSync(fixturePath(file));
  return new Uint8Array(raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw);
}

/** MONAI's loaded image for a case, float32 C order. */
export function expectedData(name: string): Float32Array {
  const b = readFileSync(path.join(FIXTURE_DIR, `${name}.expected.bin`));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** Index of the first element whose bits differ (NaN payloads and signed zeros included), or -1. */
export function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

/** Largest |a - b| over a row-major Float64Array(16) and nested rows. */
export function maxAffineDiff(a: Float64Array, rows: readonly (readonly number[])[]): number {
  let m = 0;
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) m = Math.max(m, Math.abs(a[r * 4 + c] - rows[r][c]));
  return m;
}

/** A plain little-endian NIfTI-1 header for a 7x5x4 int16 image, every transform code 0. */
export function baseHeader(): NiftiHeader {
  return {
    version: 1, littleEndian: true, sizeof_hdr: 348, dim_info: 0, dim: [3, 7, 5, 4, 1, 1, 1, 1],
    intent_p1: 0, intent_p2: 0, intent_p3: 0, intent_code: 0, datatype: 4, bitpix: 16, slice_start: 0,
    pixdim: [1, 1, 1, 1, 1, 1, 1, 1], vox_offset: 352, scl_slope: 1, scl_inter: 0, slice_end: 0, slice_code: 0,
    xyzt_units: 2, cal_max: 0, cal_min: 0, slice_duration: 0, toffset: 0, glmax: 0, glmin: 0, descrip: '',
    aux_file: '', qform_code: 0, sform_code: 0, quatern_b: 0, quatern_c: 0, quatern_d: 0, qoffset_x: 0,
    qoffset_y: 0, qoffset_z: 0, srow_x: [0, 0, 0, 0], srow_y: [0, 0, 0, 0], srow_z: [0, 0, 0, 0],
    intent_name: '', magic: 'n+1',
  };
}

/** A whole NIfTI-1 file (header + zero-filled voxels) for `header`. */
export function fileFor(header: NiftiHeader): Uint8Array {
  const count = header.dim.slice(1, header.dim[0] + 1).reduce((a, b) => a * b, 1);
  const out = new Uint8Array(352 + count * Math.max(1, header.bitpix / 8));
  out.set(encodeNifti1Header(header));
  return out;
}
