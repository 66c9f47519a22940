/**
 * Bad input: every way a file can be wrong ends in SpleenTrtError('ERR_NIFTI_INVALID') naming the
 * problem (a missing file in ERR_FILE_NOT_FOUND), before any voxel buffer is allocated.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpleenTrtError } from '../../../src/errors.js';
import { mulberry32 } from '../../../src/phantom/make-phantom.js';
import { encodeNifti, parseNifti, readNifti } from '../../../src/nifti/index.js';
import { encodeNifti1Header, type NiftiHeader } from '../../../src/nifti/nifti-header.js';
import { setGzipCodecEnabled, setIsalEnabled } from '../../../src/native/gzip-codec.js';
import { baseHeader, fileFor, fixturePath, plainBytes } from './fixtures.js';

/** Asserts that `fn` throws ERR_NIFTI_INVALID with a message matching `pattern`. */
function expectInvalid(fn: () => unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SpleenTrtError);
  expect((caught as SpleenTrtError).code).toBe('ERR_NIFTI_INVALID');
  expect((caught as SpleenTrtError).message).toMatch(pattern);
}

/** Finding 7: a too-large image has its own code, decided from the header. */
function expectTooLarge(fn: () => unknown, pattern: RegExp): void {
  expect(fn).toThrow(expect.objectContaining({ code: 'ERR_INPUT_TOO_LARGE', message: expect.stringMatching(pattern) }));
}

async function expectInvalidAsync(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await expect(promise).rejects.toSatisfy((e: unknown) => e instanceof SpleenTrtError && e.code === 'ERR_NIFTI_INVALID' && pattern.test(e.message));
}

function patched(bytes: Uint8Array, edit: (view: DataView) => void): Uint8Array {
  const copy = bytes.slice();
  edit(new DataView(copy.buffer));
  return copy;
}

const LPS = plainBytes('lps-int16-scaled.nii.gz');
const NIFTI2 = plainBytes('nifti2-float64.nii.gz');
const header = (edit: Partial<NiftiHeader>): Uint8Array => fileFor({ ...baseHeader(), ...edit });

describe('identification', () => {
  it('rejects a wrong magic, a two-file pair magic and a foreign file', () => {
    expectInvalid(() => parseNifti(patched(LPS, (v) => v.setUint8(345, 0x2d))), /bad magic "n-1"/);
    expectInvalid(() => parseNifti(patched(LPS, (v) => v.setUint8(347, 0x41))), /bad magic/);
    expectInvalid(() => parseNifti(patched(LPS, (v) => v.setUint8(345, 0x69))), /two-file/);
    expectInvalid(() => parseNifti(patched(NIFTI2, (v) => v.setUint8(6, 0x33))), /bad magic "n\+3"/);
    expectInvalid(() => parseNifti(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10, ...new Uint8Array(400)])), /not a NIfTI file/);
    expectInvalid(() => parseNifti(new Uint8Array(0)), /truncated header/);
  });

  it('rejects NIfTI-2 line-ending bytes damaged by a text-mode transfer', () => {
    expectInvalid(() => parseNifti(patched(NIFTI2, (v) => v.setUint8(8, 10))), /line-ending/);
  });
});

describe('truncation', () => {
  it.each([0, 3, 100, 347])('header cut at %i bytes (NIfTI-1)', (n) => {
    expectInvalid(() => parseNifti(LPS.subarray(0, n)), /truncated header/);
  });

  it.each([400, 539])('header cut at %i bytes (NIfTI-2)', (n) => {
    expectInvalid(() => parseNifti(NIFTI2.subarray(0, n)), /truncated header.*NIfTI-2 needs 540/);
  });

  it.each([348, 352, 353, 500, LPS.length - 1])('data cut at %i bytes', (n) => {
    expectInvalid(() => parseNifti(LPS.subarray(0, n)), /truncated data|past the end/);
  });

  it('names the sizes in the truncated-data message', () => {
    // 7x5x4 int16 = 280 bytes of voxels after vox_offset 352.
    expectInvalid(() => parseNifti(LPS.subarray(0, 352 + 100)), /100 bytes of voxel data.*needs 280/);
  });

  it.each([0.1, 0.5, 0.9])('gzip stream cut at %f of its length', async (fraction) => {
    const gz = gzipSync(LPS);
    const cut = gz.subarray(0, Math.floor(gz.length * fraction));
    expectInvalid(() => parseNifti(cut), /truncated|gzip/);
    await expectInvalidAsync(readNifti(cut), /truncated|gzip/);
  });

  it('gzip stream missing its last 4 bytes (size field)', () => {
    const gz = gzipSync(LPS);
    expectInvalid(() => parseNifti(gz.subarray(0, gz.length - 4)), /gzip/);
  });
});

describe('corruption', () => {
  it('rejects a gzip stream with damaged deflate data or checksum', async () => {
    const gz = gzipSync(LPS);
    const damaged = patched(gz, (v) => v.setUint8(gz.length - 6, v.getUint8(gz.length - 6) ^ 0xff));
    expectInvalid(() => parseNifti(damaged), /corrupt gzip/);
    await expectInvalidAsync(readNifti(damaged), /corrupt gzip/);
    const garbage = new Uint8Array([0x1f, 0x8b, ...randomBytes(300)]);
    expectInvalid(() => parseNifti(garbage), /gzip/);
  });

  it('survives random byte damage: every outcome is a volume, ERR_NIFTI_INVALID or ERR_INPUT_TOO_LARGE', () => {
    const random = mulberry32(7);
    const sources = [LPS, NIFTI2, plainBytes('be-float32.nii')];
    let failures = 0;
    for (let trial = 0; trial < 300; trial++) {
      const source = sources[trial % sources.length];
      const bytes = source.slice();
      const hits = 1 + Math.floor(random() * 4);
      for (let h = 0; h < hits; h++) bytes[Math.floor(random() * 560)] = Math.floor(random() * 256);
      const input = trial % 2 === 0 ? bytes : gzipSync(bytes);
      try {
        const image = parseNifti(input);
        expect(image.volume.data.length).toBe(image.volume.shape[0] * image.volume.shape[1] * image.volume.shape[2]);
      } catch (error) {
        failures++;
        expect(error).toBeInstanceOf(SpleenTrtError);
        expect(['ERR_NIFTI_INVALID', 'ERR_INPUT_TOO_LARGE']).toContain((error as SpleenTrtError).code);
      }
    }
    expect(failures).toBeGreaterThan(0);
  });
});

describe('dimensions', () => {
  it.each([0, -1, 8, 100])('dim[0] = %i', (rank) => {
    expectInvalid(() => parseNifti(patched(LPS, (v) => v.setInt16(40, rank, true))), /dim\[0\] = -?\d+ is outside 1\.\.7/);
  });

  it.each([[1, 0], [2, -5], [3, 0]])('dim[%i] = %i', (i, value) => {
    expectInvalid(() => parseNifti(patched(LPS, (v) => v.setInt16(40 + 2 * i, value, true))), new RegExp(`dim\\[${i}\\] = ${value} is not a positive size`));
  });

  it('rejects 2-D images', () => {
    expectInvalid(() => parseNifti(header({ dim: [2, 7, 5, 1, 1, 1, 1, 1] })), /2-D image/);
    expectInvalid(() => parseNifti(header({ dim: [1, 7, 1, 1, 1, 1, 1, 1] })), /1-D image/);
  });

  it('rejects a 4-D file with more than one volume, and 5-D with several', () => {
    expectInvalid(() => parseNifti(header({ dim: [4, 7, 5, 4, 3, 1, 1, 1] })), /3 volumes; only a single 3-D volume/);
    expectInvalid(() => parseNifti(header({ dim: [5, 7, 5, 4, 1, 2, 1, 1] })), /2 volumes/);
  });

  it('accepts trailing singleton dimensions (4-D and 5-D with size 1)', () => {
    expect(parseNifti(header({ dim: [4, 7, 5, 4, 1, 9, 9, 9] })).volume.shape).toEqual([7, 5, 4]);
    expect(parseNifti(header({ dim: [5, 7, 5, 4, 1, 1, 1, 1] })).volume.shape).toEqual([7, 5, 4]);
  });

  it('refuses absurd sizes before allocating (NIfTI-1 32767^3, NIfTI-2 2^31 x 2^31 x 2)', () => {
    // Header bytes only: the image would be 70 TB.
    const absurd = encodeNifti1Header({ ...baseHeader(), dim: [3, 32767, 32767, 32767, 1, 1, 1, 1] });
    expectTooLarge(() => parseNifti(absurd), /35181150961663 voxels exceeds the limit of 268435456/);
    const n2 = patched(NIFTI2, (v) => {
      v.setBigInt64(24, 2n ** 31n, true);
      v.setBigInt64(32, 2n ** 31n, true);
      v.setBigInt64(40, 2n, true);
    });
    expectTooLarge(() => parseNifti(n2), /voxels exceeds the limit/);
    // A NIfTI-2 size beyond 2^53 is not even a safe integer.
    expectInvalid(() => parseNifti(patched(NIFTI2, (v) => v.setBigInt64(24, 2n ** 62n, true))), /dim\[1\].*not a positive size/);
  });

  it('honours options.maxVoxels (7x5x4 = 140 voxels)', async () => {
    expectTooLarge(() => parseNifti(LPS, { maxVoxels: 139 }), /140 voxels exceeds the limit of 139/);
    expect(parseNifti(LPS, { maxVoxels: 140 }).volume.data.length).toBe(140);
    await expect(readNifti(fixturePath('lps-int16-scaled.nii.gz'), { maxVoxels: 10 })).rejects.toMatchObject({ code: 'ERR_INPUT_TOO_LARGE' });
    // Bytes as declared: 140 int16 voxels = 280 bytes.
    expectTooLarge(() => parseNifti(LPS, { maxBytes: 279 }), /280 bytes exceed the limit of 279/);
  });
});

describe('datatype and layout fields', () => {
  it('rejects unsupported and unknown datatypes', () => {
    expectInvalid(() => parseNifti(header({ datatype: 32, bitpix: 64 })), /unsupported datatype complex64/);
    expectInvalid(() => parseNifti(header({ datatype: 128, bitpix: 24 })), /unsupported datatype rgb24/);
    expectInvalid(() => parseNifti(header({ datatype: 999, bitpix: 16 })), /unknown datatype code 999/);
  });

  it('rejects bitpix that does not match the datatype', () => {
    expectInvalid(() => parseNifti(header({ datatype: 4, bitpix: 32 })), /bitpix 32 does not match datatype int16 \(16 bits\)/);
  });

  it.each([0, 100, 348, 351, Number.NaN])('rejects vox_offset %f inside the header', (offset) => {
    expectInvalid(() => parseNifti(patched(LPS, (v) => v.setFloat32(108, offset, true))), /vox_offset .* inside the header/);
  });

  it('rejects vox_offset past the end of the file', () => {
    expectInvalid(() => parseNifti(patched(LPS, (v) => v.setFloat32(108, 4096, true))), /vox_offset 4096 is past the end/);
    expectInvalid(() => parseNifti(patched(NIFTI2, (v) => v.setBigInt64(168, 2n ** 20n, true))), /past the end/);
  });

  it('rejects an absurd vox_offset before inflating anything (it would license a gzip bomb)', () => {
    const gz = gzipSync(patched(LPS, (v) => v.setFloat32(108, 2 ** 40, true)));
    expectInvalid(() => parseNifti(gz), /bytes of extensions before the data/);
    expectInvalid(() => parseNifti(patched(NIFTI2, (v) => v.setBigInt64(168, 2n ** 40n, true))), /extensions/);
  });

  it('reads data at a later vox_offset (after extension bytes)', () => {
    const moved = new Uint8Array(LPS.length + 16);
    moved.set(LPS.subarray(0, 352));
    moved.set(LPS.subarray(352), 368);
    new DataView(moved.buffer).setFloat32(108, 368, true);
    expect(Array.from(parseNifti(moved).volume.data)).toEqual(Array.from(parseNifti(LPS).volume.data));
  });
});

describe('non-finite geometry and scaling', () => {
  it('rejects non-finite pixdim', () => {
    expectInvalid(() => parseNifti(header({ pixdim: [1, Number.NaN, 1, 1, 1, 1, 1, 1] })), /pixdim\[1\] = NaN is not finite/);
    expectInvalid(() => parseNifti(header({ pixdim: [1, 1, 1, Number.POSITIVE_INFINITY, 1, 1, 1, 1] })), /pixdim\[3\] = Infinity/);
  });

  it('rejects a non-finite chosen affine', () => {
    expectInvalid(() => parseNifti(header({ sform_code: 1, srow_x: [1, 0, 0, Number.NaN], srow_y: [0, 1, 0, 0], srow_z: [0, 0, 1, 0] })), /sform affine has non-finite/);
    expectInvalid(() => parseNifti(header({ qform_code: 1, qoffset_y: Number.POSITIVE_INFINITY })), /qform affine has non-finite/);
  });

  it('rejects an invalid quaternion when the qform is the chosen transform', () => {
    expectInvalid(() => parseNifti(header({ qform_code: 1, quatern_b: 0.8, quatern_c: 0.8 })), /not a unit quaternion/);
  });

  it('rejects a non-finite scl_inter with a valid scl_slope, and ignores it when the slope is 0', () => {
    expectInvalid(() => parseNifti(header({ scl_slope: 2, scl_inter: Number.POSITIVE_INFINITY })), /scl_inter is Infinity/);
    expect(parseNifti(header({ scl_slope: 0, scl_inter: Number.NaN })).volume.data[0]).toBe(0);
  });
});

describe('gzip limits', () => {
  it('refuses a gzip stream that inflates far beyond the declared image (gzip bomb)', async () => {
    // A valid 7x5x4 int16 file followed by 64 MiB of zeros: compresses to ~64 KiB.
    const bomb = gzipSync(Buffer.concat([LPS, Buffer.alloc(64 << 20)]), { level: 9 });
    expect(bomb.length).toBeLessThan(1 << 20);
    expectInvalid(() => parseNifti(bomb), /inflates to more than/);
    await expectInvalidAsync(readNifti(bomb), /inflates to more than/);
  });

  it('accepts a little trailing padding after the image', () => {
    const padded = gzipSync(Buffer.concat([LPS, Buffer.alloc(1000)]));
    expect(parseNifti(padded).volume.data.length).toBe(140);
  });

  it('reads the header even behind a long gzip file-name field', () => {
    // FLG.FNAME with a 10 KB name: the header is not within the first 4 KiB of the file.
    const gz = gzipSync(LPS);
    const name = Buffer.alloc(10_000, 0x61);
    const withName = Buffer.concat([gz.subarray(0, 3), Buffer.from([gz[3] | 0x08]), gz.subarray(4, 10), name, Buffer.from([0]), gz.subarray(10)]);
    expect(Array.from(parseNifti(withName).volume.data)).toEqual(Array.from(parseNifti(LPS).volume.data));
  });
});

describe('gzip errors through every inflater', () => {
  // Each configuration of the reader's inflaters (where one is missing here, its configuration
  // falls back to the next, as in use): ISA-L streaming into the decode, libdeflate, zlib only.
  const INFLATERS = { 'isa-l': [true, false], libdeflate: [false, true], zlib: [false, false], auto: [true, true] } as const;

  async function outcome(bytes: Uint8Array, inflater: keyof typeof INFLATERS): Promise<string> {
    const [isal, libdeflate] = INFLATERS[inflater];
    setIsalEnabled(isal);
    setGzipCodecEnabled(libdeflate);
    try {
      const { volume } = await readNifti(bytes);
      return `volume ${Buffer.from(volume.data.buffer, volume.data.byteOffset, volume.data.byteLength).toString('base64')}`;
    } catch (error) {
      expect(error).toBeInstanceOf(SpleenTrtError);
      return `${(error as SpleenTrtError).code}: ${(error as SpleenTrtError).message}`;
    } finally {
      setIsalEnabled(true);
      setGzipCodecEnabled(true);
    }
  }

  const gz = gzipSync(LPS);
  const streams: Record<string, Uint8Array> = {
    'cut at 0.1': gz.subarray(0, Math.floor(gz.length * 0.1)),
    'cut at 0.5': gz.subarray(0, Math.floor(gz.length * 0.5)),
    'cut at 0.9': gz.subarray(0, Math.floor(gz.length * 0.9)),
    'missing its size field': gz.subarray(0, gz.length - 4),
    'damaged CRC-32': patched(gz, (v) => v.setUint8(gz.length - 6, v.getUint8(gz.length - 6) ^ 0xff)),
    'lying ISIZE': patched(gz, (v) => v.setUint32(gz.length - 4, 1000, true)),
    'damaged deflate data': patched(gz, (v) => v.setUint8(gz.length >> 1, v.getUint8(gz.length >> 1) ^ 0xff)),
    'trailing garbage': Buffer.concat([gz, Buffer.from([1, 2, 3, 4, 5])]),
    'a second, truncated member': Buffer.concat([gz, gz.subarray(0, 30)]),
    'inflating far beyond the image': gzipSync(Buffer.concat([LPS, Buffer.alloc(3 << 20)]), { level: 9 }),
    'voxels cut short': gzipSync(LPS.subarray(0, LPS.length - 2)),
    // Accepted ones, for contrast: the same volume every way.
    'two members': Buffer.concat([gzipSync(LPS.subarray(0, 400)), gzipSync(LPS.subarray(400))]),
    'trailing zero bytes': Buffer.concat([gz, Buffer.alloc(64)]),
    'trailing padding inside the stream': gzipSync(Buffer.concat([LPS, Buffer.alloc(1000)])),
  };

  it.each(Object.keys(streams))('%s: the same volume or the same coded error from each', async (name) => {
    const reference = await outcome(streams[name], 'zlib');
    expect(reference).toMatch(/^(volume|ERR_NIFTI_INVALID)/);
    for (const inflater of ['isa-l', 'libdeflate', 'auto'] as const) {
      expect(await outcome(streams[name], inflater), inflater).toBe(reference);
    }
  });
});

describe('files', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-nifti-bad-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports a missing file as ERR_FILE_NOT_FOUND', async () => {
    await expect(readNifti(path.join(dir, 'nope.nii.gz'))).rejects.toMatchObject({ code: 'ERR_FILE_NOT_FOUND', name: 'SpleenTrtError' });
    await expect(readNifti(path.join(dir, 'nope', 'x.nii'))).rejects.toMatchObject({ code: 'ERR_FILE_NOT_FOUND' });
  });

  it('reports a directory as ERR_NIFTI_INVALID', async () => {
    await mkdir(path.join(dir, 'folder.nii'));
    await expectInvalidAsync(readNifti(path.join(dir, 'folder.nii')), /directory/);
  });

  it('detects gzip by content, not by name, and truncation in files', async () => {
    const misnamed = path.join(dir, 'really-gzip.nii');
    await writeFile(misnamed, gzipSync(LPS));
    expect((await readNifti(misnamed)).volume.data.length).toBe(140);
    const cut = path.join(dir, 'cut.nii');
    await writeFile(cut, LPS.subarray(0, 500));
    await expectInvalidAsync(readNifti(cut), /truncated data/);
    const empty = path.join(dir, 'empty.nii.gz');
    await writeFile(empty, new Uint8Array(0));
    await expectInvalidAsync(readNifti(empty), /truncated header/);
  });

  it('refuses a .nii.gz file far bigger than its header\'s image could compress to', async () => {
    const big = path.join(dir, 'big.nii.gz');
    // A 2x2x2 uint8 image, then 3 MiB of incompressible trailing bytes in the same gzip stream.
    const tiny = encodeNifti({ data: new Float32Array(8), shape: [2, 2, 2], affine: new Float64Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]) }, { datatype: 'uint8' });
    await writeFile(big, gzipSync(Buffer.concat([tiny, randomBytes(3 << 20)]), { level: 1 }));
    await expectInvalidAsync(readNifti(big), /more than the \d+-byte image/);
  });

  it('rejects caller mistakes with TypeError / RangeError', async () => {
    await expect(readNifti(42 as unknown as string)).rejects.toThrow(TypeError);
    await expect(readNifti(LPS, { maxVoxels: -1 })).rejects.toThrow(RangeError);
    await expect(readNifti(LPS, { maxVoxels: 1.5 })).rejects.toThrow(RangeError);
    expect(() => parseNifti('x.nii' as unknown as Uint8Array)).toThrow(TypeError);
  });
});
