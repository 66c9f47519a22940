/**
 * The reader against MONAI 1.4's own loading step (LoadImage with NibabelReader + EnsureChannelFirst)
 * on the fixtures of scripts/fixtures/make_nifti_fixtures.py: data bit for bit, affine to 1e-6.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeNiftiHeader, parseNifti, readNifti } from '../../../src/nifti/index.js';
import { CASES, expectedData, firstBitDifference, fixturePath, maxAffineDiff, plainBytes } from './fixtures.js';

describe('readNifti against MONAI LoadImage + EnsureChannelFirst', () => {
  it('covers the cases the reader must handle', () => {
    const names = CASES.map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining([
      'lps-int16-scaled', 'be-float32', 'nifti2-float64', 'repair-sform-to-qform', 'repair-qform-from-sform-4d',
      'qform-qfac-neg', 'oblique-sform', 'base-affine', '4d-t1', 'uint8', 'uint16', 'int32-scaled', 'float64',
    ]));
  });

  describe.each(CASES)('$name ($note)', (c) => {
    const bytes = new Uint8Array(readFileSync(fixturePath(c.file)));

    it('parseNifti gives MONAI\'s voxels and affine', () => {
      const image = parseNifti(bytes);
      expect(image.volume.shape).toEqual(c.shape);
      expect(image.rawDatatype).toBe(c.rawDatatype);
      const expected = expectedData(c.name);
      expect(image.volume.data.length).toBe(expected.length);
      expect(firstBitDifference(image.volume.data, expected)).toBe(-1);
      expect(maxAffineDiff(image.volume.affine, c.affine)).toBeLessThanOrEqual(1e-6);
      const norms = [0, 1, 2].map((k) => Math.hypot(c.affine[0][k], c.affine[1][k], c.affine[2][k]));
      image.volume.spacingMm.forEach((s, k) => expect(s).toBeCloseTo(norms[k], 9));
    });

    it('reports where the affine came from', () => {
      const image = parseNifti(bytes);
      expect(image.affineSource).toBe(c.source);
      expect(image.affineRepaired).toBe(c.repaired);
    });

    it('readNifti(path) and readNifti(bytes) agree with parseNifti', async () => {
      const sync = parseNifti(bytes);
      for (const image of [await readNifti(fixturePath(c.file)), await readNifti(bytes)]) {
        expect(firstBitDifference(image.volume.data, sync.volume.data)).toBe(-1);
        expect(Array.from(image.volume.affine)).toEqual(Array.from(sync.volume.affine));
        expect(image.header).toEqual(sync.header);
      }
    });
  });

  it('reads from a view at an odd byte offset of a larger buffer (unaligned voxels)', () => {
    for (const file of ['lps-int16-scaled.nii.gz', 'float64.nii', 'be-float32.nii', 'uint32.nii']) {
      const plain = plainBytes(file);
      const shifted = new Uint8Array(plain.length + 3);
      shifted.set(plain, 3);
      const view = shifted.subarray(3);
      expect(view.byteOffset % 2).toBe(1);
      expect(firstBitDifference(parseNifti(view).volume.data, parseNifti(plain).volume.data)).toBe(-1);
    }
  });

  it('decodes header fields under their spec names in both versions and byte orders', () => {
    const lps = decodeNiftiHeader(plainBytes('lps-int16-scaled.nii.gz'));
    expect(lps).toMatchObject({
      version: 1, littleEndian: true, sizeof_hdr: 348, datatype: 4, bitpix: 16, vox_offset: 352,
      scl_slope: 0.5, scl_inter: -1024, sform_code: 1, qform_code: 1, xyzt_units: 2, magic: 'n+1',
      descrip: 'spleen-trt nifti fixture',
    });
    expect(lps.dim.slice(0, 4)).toEqual([3, 7, 5, 4]);
    expect(lps.srow_x).toEqual([Math.fround(-0.8), 0, 0, 100.25]);

    const be = decodeNiftiHeader(plainBytes('be-float32.nii'));
    expect(be).toMatchObject({ version: 1, littleEndian: false, datatype: 16, bitpix: 32, sform_code: 1 });

    const n2 = decodeNiftiHeader(plainBytes('nifti2-float64.nii.gz'));
    expect(n2).toMatchObject({ version: 2, littleEndian: true, sizeof_hdr: 540, datatype: 64, bitpix: 64, vox_offset: 544, sform_code: 2, magic: 'n+2' });
    expect(n2.dim.slice(0, 4)).toEqual([3, 7, 5, 4]);

    const n2be = decodeNiftiHeader(plainBytes('nifti2-be-qform.nii'));
    expect(n2be).toMatchObject({ version: 2, littleEndian: false, qform_code: 1, sform_code: 0 });
  });
});
