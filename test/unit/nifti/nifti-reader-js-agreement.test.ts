// The package's NIfTI header decoder (src/nifti/nifti-header.ts) against NIFTI-Reader-JS, the
// reader the design brief names, on every NIfTI fixture (nibabel-written, both byte orders,
// NIfTI-1 and -2): every field NIFTI-Reader-JS decodes must agree. The package keeps its own
// decoder because NIFTI-Reader-JS 0.8.0 does not give everything the affine selection needs:
// it reads srow_x/y/z only when the sform wins its own (non-nibabel) choice, has no glmax/glmin,
// joins the bytes after a string's terminating NUL onto it, and reads a big-endian int64 (NIfTI-2
// dim, vox_offset) wrong once its low 32 bits reach 2^31. The fixtures' values are below that.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import * as niftiReader from 'nifti-reader-js';
import { describe, expect, it } from 'vitest';
import { decodeNiftiHeader, NIFTI1_HEADER_SIZE, NIFTI2_HEADER_SIZE } from '../../../src/nifti/nifti-header.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/nifti/', import.meta.url));
const files = readdirSync(FIXTURES).filter((f) => /\.nii(\.gz)?$/.test(f));

describe('NIfTI headers: the package decoder agrees with NIFTI-Reader-JS', () => {
  it('covers NIfTI-1 and NIfTI-2, both byte orders', () => {
    const versions = new Set<string>();
    for (const file of files) {
      const raw = readFileSync(path.join(FIXTURES, file));
      const header = decodeNiftiHeader(file.endsWith('.gz') ? gunzipSync(raw) : raw);
      versions.add(`${header.version}-${header.littleEndian ? 'le' : 'be'}`);
    }
    expect(versions.has('1-le') && versions.has('1-be') && versions.has('2-be')).toBe(true);
  });

  it('parses a header lying inside a larger buffer (a view at an offset, as Node Buffers are)', () => {
    const raw = new Uint8Array(readFileSync(path.join(FIXTURES, 'base-affine.nii')));
    const backing = new Uint8Array(raw.length + 13);
    backing.set(raw, 13);
    expect(decodeNiftiHeader(backing.subarray(13))).toEqual(decodeNiftiHeader(raw));
  });

  for (const file of files) {
    it(file, () => {
      const raw = readFileSync(path.join(FIXTURES, file));
      const bytes = new Uint8Array(file.endsWith('.gz') ? gunzipSync(raw) : raw);
      const ours = decodeNiftiHeader(bytes);
      // The header alone: NIFTI-Reader-JS then reads no extensions.
      const size = ours.version === 1 ? NIFTI1_HEADER_SIZE : NIFTI2_HEADER_SIZE;
      const theirs = niftiReader.readHeader(bytes.slice(0, size).buffer) as niftiReader.NIFTI1 | niftiReader.NIFTI2;
      expect(theirs).toBeInstanceOf(ours.version === 1 ? niftiReader.NIFTI1 : niftiReader.NIFTI2);
      expect(theirs.littleEndian).toBe(ours.littleEndian);
      expect(theirs.dims).toEqual(ours.dim);
      expect(theirs.vox_offset).toBe(ours.vox_offset);
      expect(theirs.pixDims).toEqual(ours.pixdim);
      expect(theirs.datatypeCode).toBe(ours.datatype);
      expect(theirs.numBitsPerVoxel).toBe(ours.bitpix);
      for (const field of [
        'dim_info', 'intent_p1', 'intent_p2', 'intent_p3', 'intent_code', 'scl_slope', 'scl_inter', 'slice_code',
        'xyzt_units', 'cal_max', 'cal_min', 'slice_duration', 'toffset', 'qform_code', 'sform_code', 'quatern_b',
        'quatern_c', 'quatern_d', 'qoffset_x', 'qoffset_y', 'qoffset_z', 'aux_file', 'intent_name',
      ] as const) {
        expect((theirs as unknown as Record<string, unknown>)[field], field).toEqual(ours[field]);
      }
      expect(theirs.slice_start).toBe(ours.slice_start);
      expect(theirs.slice_end).toBe(ours.slice_end);
      expect(theirs.description).toBe(ours.descrip);
      expect(theirs.magic.slice(0, 3)).toBe(ours.magic);
      // srow_*: NIFTI-Reader-JS exposes them as its affine when it picks the sform.
      if (ours.sform_code > 0 && !(ours.qform_code > 0 && ours.sform_code < ours.qform_code)) {
        expect(theirs.affine.slice(0, 3)).toEqual([ours.srow_x, ours.srow_y, ours.srow_z]);
      }
    });
  }
});
