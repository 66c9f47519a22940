/**
 * The .nii.gz inflation through libdeflate (dlopen'd by the addon) and its zlib fallback: the same
 * bytes either way, every kind of stream libdeflate does not take exactly handed to zlib (with
 * zlib's errors), the fallback forced by SPLEEN_TRT_NO_LIBDEFLATE=1 in a fresh process, and the
 * written .nii.gz read back by nibabel (an independent gzip + NIfTI reader).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gzipCodec, gzipCodecStatus, setGzipCodecEnabled } from '../../src/native/gzip-codec.js';
import { gzipPieces } from '../../src/nifti/gzip-pieces.js';
import { gunzipCappedAsync } from '../../src/nifti/nifti-gzip.js';
import { readNifti, writeNifti } from '../../src/nifti/index.js';
import { mulberry32 } from '../../src/phantom/make-phantom.js';
import { hasPythonModules, requireTool, SYSTEM_PYTHON } from '../helpers/system-tools.js';
import { ensureAddonBuilt } from './native-test-helpers.js';

const LIBDEFLATE = '/usr/lib/x86_64-linux-gnu/libdeflate.so.0';

beforeAll(() => ensureAddonBuilt(), 600_000);

/** Compressible, non-trivial bytes: runs and noise, like a CT's voxel data. */
function sampleBytes(length: number, seed: number): Uint8Array {
  const random = mulberry32(seed);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = random() < 0.7 ? (i >> 9) & 0xff : Math.floor(random() * 256);
  return bytes;
}

async function inflateBothWays(gz: Uint8Array, maxBytes: number): Promise<{ libdeflate: Uint8Array | Error; zlib: Uint8Array | Error }> {
  const run = async (): Promise<Uint8Array | Error> => gunzipCappedAsync(gz, maxBytes).catch((error: Error) => error);
  setGzipCodecEnabled(true);
  const libdeflate = await run();
  setGzipCodecEnabled(false);
  try {
    return { libdeflate, zlib: await run() };
  } finally {
    setGzipCodecEnabled(true);
  }
}

const libdeflateHere = requireTool(process.platform !== 'linux' || spawnSync('test', ['-e', LIBDEFLATE]).status === 0, 'libdeflate0');

describe.runIf(libdeflateHere && process.platform === 'linux')('libdeflate inflation (gzipCodec)', () => {
  it('is loaded from the system library', () => {
    expect(gzipCodec()).not.toBeNull();
    expect(gzipCodecStatus()).toMatchObject({ libdeflate: true, reason: expect.stringContaining('libdeflate.so.0') });
  });

  it('gives zlib\'s bytes for streams of every level, and for empty and tiny inputs', async () => {
    const data = sampleBytes(3_000_001, 1);
    for (const input of [data, data.subarray(0, 1), new Uint8Array(0)]) {
      for (const level of [1, 6, 9]) {
        const gz = zlib.gzipSync(input, { level });
        const { libdeflate, zlib: reference } = await inflateBothWays(gz, input.length + 100);
        expect(libdeflate).toBeInstanceOf(Uint8Array);
        expect(Buffer.compare(libdeflate as Uint8Array, reference as Uint8Array)).toBe(0);
        expect(Buffer.compare(libdeflate as Uint8Array, input)).toBe(0);
      }
    }
    // The codec itself refuses a size other than the stream's.
    const gz = zlib.gzipSync(data);
    await expect(gzipCodec()!.gunzip(gz, data.length - 1)).rejects.toThrow(/libdeflate/);
    await expect(gzipCodec()!.gunzip(gz, data.length + 1)).rejects.toThrow(/libdeflate/);
  });

  it('leaves what it does not take exactly to zlib: several members, trailing bytes, a lying ISIZE, corruption, truncation', async () => {
    const a = sampleBytes(200_000, 2);
    const b = sampleBytes(100_000, 3);
    const twoMembers = Buffer.concat([zlib.gzipSync(a), zlib.gzipSync(b)]);
    const trailing = Buffer.concat([zlib.gzipSync(a), Buffer.alloc(300)]);
    const lying = Buffer.from(zlib.gzipSync(a));
    lying.writeUInt32LE(1000, lying.length - 4);
    const corrupt = Buffer.from(zlib.gzipSync(a));
    corrupt[corrupt.length >> 1] ^= 0xff;
    const truncated = zlib.gzipSync(a).subarray(0, 5000);
    for (const gz of [twoMembers, trailing, lying, corrupt, truncated]) {
      const { libdeflate, zlib: reference } = await inflateBothWays(gz, 400_000);
      if (reference instanceof Error) {
        expect(libdeflate).toBeInstanceOf(Error);
        expect((libdeflate as Error & { code?: string }).code).toBe((reference as Error & { code?: string }).code);
        expect((libdeflate as Error).message).toBe(reference.message);
      } else {
        expect(Buffer.compare(libdeflate as Uint8Array, reference)).toBe(0);
      }
    }
  });

  it('gives the writer\'s CRC-32 (gzipPieces) the bytes zlib.crc32 gives, so the file is the same byte for byte', async () => {
    const data = sampleBytes(1_000_003, 5);
    const lengths = [352, 400_000, 0, 399_651, 200_000];
    const starts = lengths.map((_, i) => lengths.slice(0, i).reduce((a, b) => a + b, 0));
    const source = { count: lengths.length, length: (i: number) => lengths[i], fill: (i: number, into: Uint8Array) => into.set(data.subarray(starts[i], starts[i] + lengths[i])) };
    for (const crc of [0, 1, 0xffffffff, 0x12345678]) {
      expect(await gzipCodec()!.crc32(crc, data)).toBe(zlib.crc32(data, crc));
    }
    setGzipCodecEnabled(false);
    const withZlib = await gzipPieces(source, 1, 2).finally(() => setGzipCodecEnabled(true));
    const withLibdeflate = await gzipPieces(source, 1, 2);
    expect(Buffer.compare(withLibdeflate, withZlib)).toBe(0);
    expect(Buffer.compare(zlib.gunzipSync(withLibdeflate), data)).toBe(0);
  });

  it('never allocates past the cap the NIfTI header allows (an ISIZE over it goes to zlib, which refuses it)', async () => {
    const a = sampleBytes(500_000, 4);
    const { libdeflate, zlib: reference } = await inflateBothWays(zlib.gzipSync(a), 100_000);
    expect(reference).toBeInstanceOf(Error);
    expect((libdeflate as Error & { code?: string }).code).toBe('ERR_NIFTI_INVALID');
  });
});

describe('zlib fallback forced with SPLEEN_TRT_NO_LIBDEFLATE=1', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-gzip-codec-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reads a .nii.gz to the same voxels as the libdeflate path, in a fresh process', async () => {
    const shape: [number, number, number] = [61, 47, 23];
    const random = mulberry32(9);
    const data = Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, () => Math.round(random() * 2000 - 1000) | 0);
    const affine = Float64Array.from([-0.8, 0, 0, 10, 0, -0.8, 0, 20, 0, 0, 2.5, -30, 0, 0, 0, 1]);
    const file = path.join(dir, 'ct.nii.gz');
    await writeNifti(file, { data, shape, spacingMm: [0.8, 0.8, 2.5], affine }, { datatype: 'int16' });
    const here = await readNifti(file);
    // The built package (npm test builds dist/ first), in a process whose addon never opened libdeflate.
    const script = path.join(dir, 'read.mjs');
    const source = path.resolve('dist/nifti/index.js');
    const codec = path.resolve('dist/native/gzip-codec.js');
    await writeFile(
      script,
      `import { readNifti } from ${JSON.stringify(source)};\nimport { gzipCodecStatus } from ${JSON.stringify(codec)};\n` +
        `const { volume } = await readNifti(${JSON.stringify(file)});\n` +
        `process.stdout.write(JSON.stringify({ status: gzipCodecStatus(), data: Buffer.from(volume.data.buffer).toString('base64') }));\n`,
    );
    const child = spawnSync(process.execPath, [script], {
      encoding: 'utf8',
      // ISA-L off too (where installed it reads first): zlib alone.
      env: { ...process.env, SPLEEN_TRT_NO_LIBDEFLATE: '1', SPLEEN_TRT_NO_ISAL: '1' },
      maxBuffer: 64 << 20,
    });
    expect(child.stderr).toBe('');
    const result = JSON.parse(child.stdout) as { status: { libdeflate: boolean; reason: string }; data: string };
    expect(result.status.libdeflate).toBe(false);
    expect(result.status.reason).toMatch(/^zlib \(libdeflate unavailable: switched off \(SPLEEN_TRT_NO_LIBDEFLATE=1\)\)/);
    expect(Buffer.from(result.data, 'base64').equals(Buffer.from(here.volume.data.buffer))).toBe(true);
    expect(Array.from(here.volume.data)).toEqual(Array.from(data));
  });
});

const nibabelHere = requireTool(hasPythonModules('nibabel', 'numpy'), 'python3-nibabel');

describe.runIf(nibabelHere)('written .nii.gz read back by nibabel', () => {
  it('a mask (float32, gzip level 1, written in several pieces) is one gzip member that nibabel reads to the same voxels', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-nibabel-'));
    try {
      const shape: [number, number, number] = [160, 150, 120];
      const random = mulberry32(11);
      const labels = Uint8Array.from({ length: shape[0] * shape[1] * shape[2] }, (_, i) => ((i >> 12) % 3 === 0 && random() < 0.9 ? 1 : 0));
      const affine = Float64Array.from([-0.7, 0, 0, 10, 0, -0.7, 0, 20, 0, 0, 1, -30, 0, 0, 0, 1]);
      const mask = path.join(dir, 'mask.nii.gz');
      await writeNifti(mask, { data: labels, shape, spacingMm: [0.7, 0.7, 1], affine }, { datatype: 'float32', gzipLevel: 1 });
      const code = [
        'import sys, gzip, hashlib, nibabel as nib, numpy as np',
        'img = nib.load(sys.argv[1])',
        'a = np.asarray(img.dataobj)',
        // C order with i slowest, as the package's volumes are.
        'print(a.dtype, a.shape, hashlib.sha256(np.ascontiguousarray(a.astype(np.uint8)).tobytes()).hexdigest())',
        // One gzip member: Python's single-member reader sees the whole file.
        'raw = open(sys.argv[1], "rb").read()',
        'import zlib; d = zlib.decompressobj(31); out = d.decompress(raw); print(len(out), len(d.unused_data))',
      ].join('\n');
      const child = spawnSync(SYSTEM_PYTHON, ['-c', code, mask], { encoding: 'utf8' });
      expect(child.stderr).toBe('');
      const [first, second] = child.stdout.trim().split('\n');
      const { createHash } = await import('node:crypto');
      expect(first).toBe(`float32 (${shape.join(', ')}) ${createHash('sha256').update(labels).digest('hex')}`);
      expect(second).toBe(`${352 + labels.length * 4} 0`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
