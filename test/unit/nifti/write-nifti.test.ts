/**
 * The writer: round trips through the reader for every datatype, byte order and compression,
 * the header fields the bundle's writer sets, qform round trips, channels and atomic file output.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeNiftiHeader,
  encodeNifti,
  gzipNifti,
  parseNifti,
  parseNiftiChannels,
  readNifti,
  readNiftiChannels,
  writeNifti,
  type NiftiWriteDatatype,
} from '../../../src/nifti/index.js';
import type { Shape3 } from '../../../src/volume/volume.js';
import { firstBitDifference } from './fixtures.js';

const SHAPE: Shape3 = [6, 5, 3];
const COUNT = SHAPE[0] * SHAPE[1] * SHAPE[2];
/** Oblique, left-handed, with float32-exact entries so the sform round trip is exact. */
const AFFINE = new Float64Array([0.75, -0.125, 0, -90.5, 0.125, 0.5, 0.25, 30.25, 0, -0.0625, -2.5, 17, 0, 0, 0, 1]);

/** Values each type stores exactly: its extremes and a spread in between. */
function valuesFor(datatype: NiftiWriteDatatype): Float32Array {
  const ranges: Record<NiftiWriteDatatype, [number, number]> = {
    uint8: [0, 255], int16: [-32768, 32767], int32: [-16777216, 16777216], float32: [-1e30, 1e30], float64: [-1e30, 1e30],
  };
  const [lo, hi] = ranges[datatype];
  const out = new Float32Array(COUNT);
  for (let i = 0; i < COUNT; i++) {
    const t = ((i * 7919) % COUNT) / (COUNT - 1);
    const v = lo + (hi - lo) * t;
    out[i] = datatype.startsWith('float') ? Math.fround(v * Math.sin(i + 1) * 1e-20 + (i % 3 === 0 ? -0.1 * i : i)) : Math.round(v);
  }
  out[0] = lo;
  out[1] = hi;
  return out;
}

const DATATYPE_CODES: Record<NiftiWriteDatatype, [number, number]> = {
  uint8: [2, 8], int16: [4, 16], int32: [8, 32], float32: [16, 32], float64: [64, 64],
};

describe('encodeNifti / parseNifti round trips', () => {
  const datatypes: NiftiWriteDatatype[] = ['uint8', 'int16', 'int32', 'float32', 'float64'];
  const combos = datatypes.flatMap((d) => (['little', 'big'] as const).flatMap((o) => [false, true].map((gz) => [d, o, gz] as const)));

  it.each(combos)('%s, %s-endian, gzip %s: identical voxels and affine', (datatype, byteOrder, gz) => {
    const data = valuesFor(datatype);
    const volume = { data, shape: SHAPE, affine: AFFINE, spacingMm: [0, 0, 0] as [number, number, number] };
    const bytes = gz ? gzipNifti(volume, { datatype, byteOrder }) : encodeNifti(volume, { datatype, byteOrder });
    expect(bytes[0] === 0x1f && bytes[1] === 0x8b).toBe(gz);
    const image = parseNifti(bytes);
    expect(image.rawDatatype).toBe(datatype);
    expect(image.header.littleEndian).toBe(byteOrder === 'little');
    expect(image.volume.shape).toEqual(SHAPE);
    expect(firstBitDifference(image.volume.data, data)).toBe(-1);
    expect(Array.from(image.volume.affine)).toEqual(Array.from(AFFINE));
    expect(image.affineSource).toBe('sform');
    const [code, bitpix] = DATATYPE_CODES[datatype];
    expect(image.header).toMatchObject({ datatype: code, bitpix, vox_offset: 352, sizeof_hdr: 348 });
  });

  it('writes the header the bundle\'s writer sets: sform_code = qform_code = 1, mm units, pixdim from the affine', () => {
    const h = decodeNiftiHeader(encodeNifti({ data: new Float32Array(COUNT), shape: SHAPE, affine: AFFINE }));
    expect(h).toMatchObject({ version: 1, magic: 'n+1', sform_code: 1, qform_code: 1, xyzt_units: 2, scl_slope: 1, scl_inter: 0, descrip: 'spleen-trt' });
    expect(h.dim).toEqual([3, 6, 5, 3, 1, 1, 1, 1]);
    const norms = [0, 1, 2].map((k) => Math.fround(Math.hypot(AFFINE[k], AFFINE[4 + k], AFFINE[8 + k])));
    h.pixdim.slice(1, 4).forEach((p, k) => expect(p).toBeCloseTo(norms[k], 6));
    expect(h.pixdim[0]).toBe(-1); // det < 0
    expect(h.srow_x).toEqual(Array.from(AFFINE.subarray(0, 4)));
    expect(h.srow_z).toEqual(Array.from(AFFINE.subarray(8, 12)));
  });

  it('writes big-endian headers that start with sizeof_hdr 348 big-endian', () => {
    const bytes = encodeNifti({ data: new Float32Array(COUNT), shape: SHAPE, affine: AFFINE }, { byteOrder: 'big' });
    expect(Array.from(bytes.subarray(0, 4))).toEqual([0, 0, 1, 92]);
  });

  it('rounds half to even and clamps when storing integers (NaN -> 0)', () => {
    const data = new Float32Array(COUNT);
    data.set([-0.5, 0.5, 1.5, 2.5, 254.5, 300, -5, Number.NaN, 3.4999, -1.5]);
    const u8 = parseNifti(encodeNifti({ data, shape: SHAPE, affine: AFFINE }, { datatype: 'uint8' })).volume.data;
    expect(Array.from(u8.subarray(0, 10))).toEqual([0, 0, 2, 2, 254, 255, 0, 0, 3, 0]);
    const i16 = parseNifti(encodeNifti({ data: Float32Array.from({ length: COUNT }, (_, i) => [40000, -40000, -1.5, -2.5][i % 4]), shape: SHAPE, affine: AFFINE }, { datatype: 'int16' })).volume.data;
    expect(Array.from(i16.subarray(0, 4))).toEqual([32767, -32768, -2, -2]);
  });

  it('stores (value - inter) / slope with the scaling option, and the reader gets the values back', () => {
    // HU on the storage grid of slope 0.5, inter -1024 (stored 0..n), plus one value between grid points.
    const hu = Float32Array.from({ length: COUNT }, (_, i) => -1024 + 0.5 * ((i * 37) % 4000));
    hu[5] = -1024 + 0.5 * 10.2; // stored 10.2 -> 10
    const bytes = encodeNifti({ data: hu, shape: SHAPE, affine: AFFINE }, { datatype: 'int16', scaling: { slope: 0.5, inter: -1024 } });
    const image = parseNifti(bytes);
    expect(image.header).toMatchObject({ scl_slope: 0.5, scl_inter: -1024 });
    const stored = new Int16Array(bytes.buffer.slice(352));
    expect(stored[0]).toBe(0);
    const back = image.volume.data;
    const expected = Float32Array.from(hu);
    expected[5] = -1024 + 0.5 * 10;
    expect(firstBitDifference(back, expected)).toBe(-1);
    // Float storage is unscaled without rounding.
    const f = parseNifti(encodeNifti({ data: hu, shape: SHAPE, affine: AFFINE }, { scaling: { slope: 2, inter: 1 } }));
    expect(f.header).toMatchObject({ scl_slope: 2, scl_inter: 1 });
    expect(Math.max(...Array.from(f.volume.data, (v, i) => Math.abs(v - hu[i])))).toBeLessThanOrEqual(1e-3);
  });

  it('stores voxel (i, j, k) at file position i + n0 * (j + n1 * k)', () => {
    const data = Float32Array.from({ length: COUNT }, (_, idx) => idx);
    const bytes = encodeNifti({ data, shape: SHAPE, affine: AFFINE });
    const file = new Float32Array(bytes.buffer.slice(352));
    const [n0, n1, n2] = SHAPE;
    for (const [i, j, k] of [[0, 0, 1], [1, 0, 0], [5, 4, 2], [2, 3, 1]]) {
      expect(file[i + n0 * (j + n1 * k)]).toBe((i * n1 + j) * n2 + k);
    }
  });
});

describe('qform round trips (sform_code 0)', () => {
  const rot = (deg: number) => [Math.cos((deg * Math.PI) / 180), Math.sin((deg * Math.PI) / 180)];
  const [c1, s1] = rot(30);
  const [c2, s2] = rot(-65);
  const affines: [string, number[]][] = [
    ['RAS', [1.5, 0, 0, -10, 0, 1.5, 0, 20, 0, 0, 2, 30]],
    ['LPS', [-0.8, 0, 0, 100, 0, -0.8, 0, 80, 0, 0, 2.5, -300]],
    ['left-handed (qfac -1)', [0.9, 0, 0, 1, 0, 0.9, 0, 2, 0, 0, -3, 3]],
    ['oblique about z', [c1 * 0.7, -s1 * 0.7, 0, 5, s1 * 0.7, c1 * 0.7, 0, 6, 0, 0, 2, 7]],
    // A half turn (a = 0): needs the writer's quaternion nudge, else a reads back as ~1e-4.
    ['oblique about x, LPS-like', [-0.6, 0, 0, 1, 0, -c2 * 0.6, -s2 * 2, 2, 0, -s2 * 0.6, c2 * 2, 3]],
    ['permuted axes', [0, 0, 2, 1, -1.5, 0, 0, 2, 0, 1.5, 0, 3]],
  ];
  it.each(affines)('%s', (_, rows) => {
    const affine = new Float64Array([...rows, 0, 0, 0, 1]);
    const image = parseNifti(encodeNifti({ data: new Float32Array(COUNT), shape: SHAPE, affine }, { sformCode: 0, qformCode: 1 }));
    expect(image.affineSource).toBe('qform');
    expect(image.affineRepaired).toBe(false);
    // float32 quaternion, pixdim and offset: agreement to float32 precision of the entries.
    for (let i = 0; i < 12; i++) expect(Math.abs(image.volume.affine[i] - affine[i])).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(affine[i])));
  });

  it('falls back to the base affine when both codes are 0', () => {
    const image = parseNifti(encodeNifti({ data: new Float32Array(COUNT), shape: SHAPE, affine: new Float64Array([2, 0, 0, 9, 0, 3, 0, 9, 0, 0, 4, 9, 0, 0, 0, 1]) }, { sformCode: 0, qformCode: 0 }));
    expect(image.affineSource).toBe('base');
    // diag(-2, 3, 4), origin at the centre of the 6x5x3 grid.
    expect(Array.from(image.volume.affine)).toEqual([-2, 0, 0, 5, 0, 3, 0, -6, 0, 0, 4, -4, 0, 0, 0, 1]);
  });
});

describe('channels', () => {
  const channels = 2;
  const data = Float32Array.from({ length: COUNT * channels }, (_, i) => i * 0.5 - 7);

  it('writes dim = [4, i, j, k, c] by default; the single-volume reader refuses it, the channel reader returns it', () => {
    const bytes = encodeNifti({ data, shape: SHAPE, affine: AFFINE, channels });
    expect(decodeNiftiHeader(bytes).dim).toEqual([4, 6, 5, 3, 2, 1, 1, 1]);
    expect(() => parseNifti(bytes)).toThrow(expect.objectContaining({ code: 'ERR_NIFTI_INVALID', message: expect.stringMatching(/2 volumes/) }));
    const image = parseNiftiChannels(bytes);
    expect(image.volume.channels).toBe(2);
    expect(firstBitDifference(image.volume.data, data)).toBe(-1);
  });

  it('writes dim = [5, i, j, k, 1, c] with intent vector for channelDim 5', async () => {
    const bytes = gzipNifti({ data, shape: SHAPE, affine: AFFINE, channels }, { channelDim: 5 });
    const h = decodeNiftiHeader(gunzipSync(bytes));
    expect(h.dim).toEqual([5, 6, 5, 3, 1, 2, 1, 1]);
    expect(h.intent_code).toBe(1007);
    const image = await readNiftiChannels(bytes);
    expect(firstBitDifference(image.volume.data, data)).toBe(-1);
    expect(image.volume.shape).toEqual(SHAPE);
  });

  it('puts channel c of voxel (i, j, k) at file position i + n0 * (j + n1 * (k + n2 * c))', () => {
    const bytes = encodeNifti({ data, shape: SHAPE, affine: AFFINE, channels });
    const file = new Float32Array(bytes.buffer.slice(352));
    const [n0, n1, n2] = SHAPE;
    expect(file[4 + n0 * (3 + n1 * (2 + n2 * 1))]).toBe(data[COUNT + (4 * n1 + 3) * n2 + 2]);
  });
});

describe('writeNifti', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-nifti-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const volume = { data: valuesFor('int16'), shape: SHAPE, affine: AFFINE };

  it('gzips iff the name ends in .gz and leaves no temporary file', async () => {
    await writeNifti(path.join(dir, 'a.nii.gz'), volume, { datatype: 'int16' });
    await writeNifti(path.join(dir, 'b.nii'), volume, { datatype: 'int16' });
    await writeNifti(path.join(dir, 'c.NII.GZ'), volume);
    const gz = await readFile(path.join(dir, 'a.nii.gz'));
    const plain = await readFile(path.join(dir, 'b.nii'));
    expect([gz[0], gz[1]]).toEqual([0x1f, 0x8b]);
    expect(plain.readInt32LE(0)).toBe(348);
    expect((await readFile(path.join(dir, 'c.NII.GZ')))[0]).toBe(0x1f);
    for (const name of ['a.nii.gz', 'b.nii']) {
      const image = await readNifti(path.join(dir, name));
      expect(firstBitDifference(image.volume.data, volume.data)).toBe(-1);
    }
    expect((await readdir(dir)).sort()).toEqual(['a.nii.gz', 'b.nii', 'c.NII.GZ']);
  });

  it('replaces an existing file whole', async () => {
    const target = path.join(dir, 'replace.nii');
    await writeFile(target, 'old contents');
    await writeNifti(target, volume);
    expect((await readNifti(target)).volume.data[1]).toBe(32767);
  });

  it('leaves nothing behind when the directory does not exist or the volume is invalid', async () => {
    await expect(writeNifti(path.join(dir, 'missing', 'x.nii.gz'), volume)).rejects.toThrow();
    await expect(writeNifti(path.join(dir, 'bad.nii'), { ...volume, data: new Float32Array(3) })).rejects.toThrow(RangeError);
    const names = await readdir(dir);
    expect(names.some((n) => n.includes('bad') || n.endsWith('.tmp'))).toBe(false);
  });

  it('rejects caller mistakes with TypeError / RangeError', () => {
    expect(() => encodeNifti({ ...volume, data: [1, 2, 3] as unknown as Float32Array })).toThrow(TypeError);
    expect(() => encodeNifti({ ...volume, shape: [6, 5, 0] })).toThrow(RangeError);
    expect(() => encodeNifti({ ...volume, shape: [40000, 1, 1] })).toThrow(RangeError);
    expect(() => encodeNifti({ ...volume, affine: new Float64Array(16) })).toThrow(RangeError);
    expect(() => encodeNifti({ ...volume, affine: new Float64Array(16).fill(Number.NaN) })).toThrow(TypeError);
    expect(() => encodeNifti(volume, { datatype: 'int8' as NiftiWriteDatatype })).toThrow(TypeError);
    expect(() => encodeNifti(volume, { qformCode: 9 })).toThrow(RangeError);
    expect(() => encodeNifti(volume, { channelDim: 3 as 4 })).toThrow(RangeError);
    expect(() => gzipNifti(volume, { gzipLevel: 0 })).toThrow(RangeError);
    expect(() => encodeNifti(volume, { scaling: { slope: 0, inter: 0 } })).toThrow(RangeError);
    expect(() => encodeNifti(volume, { scaling: { slope: 1, inter: Number.NaN } })).toThrow(RangeError);
  });
});
