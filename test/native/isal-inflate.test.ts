/**
 * The .nii.gz read through ISA-L (dlopen'd by the addon), its voxels decoded while it inflates:
 * the same bits as the libdeflate / zlib path for every datatype, scaling, layout and member
 * structure it takes (checked that it took them), the other path for everything it refuses (with
 * that path's coded errors), several reads at once, and SPLEEN_TRT_NO_ISAL=1 in a fresh process.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SpleenTrtError } from '../../src/errors.js';
import { gzipCodecStatus, isalInflater, setGzipCodecEnabled, setIsalEnabled, type IsalInflater } from '../../src/native/gzip-codec.js';
import { setVolumeKernelsEnabled } from '../../src/native/volume-kernels.js';
import { encodeNifti1Header, type NiftiHeader } from '../../src/nifti/nifti-header.js';
import { readNifti, readNiftiChannels } from '../../src/nifti/index.js';
import { mulberry32 } from '../../src/phantom/make-phantom.js';
import { requireTool } from '../helpers/system-tools.js';
import { ensureAddonBuilt } from './native-test-helpers.js';

const LIBISAL = '/usr/lib/x86_64-linux-gnu/libisal.so.2';

beforeAll(() => ensureAddonBuilt(), 600_000);

const isalHere = process.platform === 'linux' && requireTool(existsSync(LIBISAL), 'libisal2');

interface Layout {
  type: 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64' | 'int64';
  shape: [number, number, number];
  channels?: number;
  slope?: number;
  inter?: number;
  voxOffset?: number;
  bigEndian?: boolean;
}

const TYPES: Record<Layout['type'], { code: number; bytes: number }> = {
  uint8: { code: 2, bytes: 1 }, int16: { code: 4, bytes: 2 }, int32: { code: 8, bytes: 4 }, float32: { code: 16, bytes: 4 },
  float64: { code: 64, bytes: 8 }, int8: { code: 256, bytes: 1 }, uint16: { code: 512, bytes: 2 }, uint32: { code: 768, bytes: 4 },
  int64: { code: 1024, bytes: 8 },
};

/** A NIfTI-1 file (not compressed) with CT-like voxels: smooth structure plus noise, every value of the type's range used. */
function niftiFile(layout: Layout, seed: number): Uint8Array {
  const { type, shape, channels = 1, slope = 1, inter = 0, voxOffset = 352, bigEndian = false } = layout;
  const { code, bytes } = TYPES[type];
  const header: NiftiHeader = {
    version: 1, littleEndian: !bigEndian, sizeof_hdr: 348, dim_info: 0, dim: [channels > 1 ? 4 : 3, shape[0], shape[1], shape[2], channels, 1, 1, 1],
    intent_p1: 0, intent_p2: 0, intent_p3: 0, intent_code: 0, datatype: code, bitpix: bytes * 8, slice_start: 0,
    pixdim: [1, 0.8, 0.8, 2.5, 1, 1, 1, 1], vox_offset: voxOffset, scl_slope: slope, scl_inter: inter, slice_end: 0, slice_code: 0,
    xyzt_units: 2, cal_max: 0, cal_min: 0, slice_duration: 0, toffset: 0, glmax: 0, glmin: 0, descrip: '',
    aux_file: '', qform_code: 0, sform_code: 0, quatern_b: 0, quatern_c: 0, quatern_d: 0, qoffset_x: 0,
    qoffset_y: 0, qoffset_z: 0, srow_x: [0, 0, 0, 0], srow_y: [0, 0, 0, 0], srow_z: [0, 0, 0, 0],
    intent_name: '', magic: 'n+1',
  };
  const count = shape[0] * shape[1] * shape[2] * channels;
  const out = new Uint8Array(voxOffset + count * bytes);
  out.set(encodeNifti1Header(header));
  const view = new DataView(out.buffer);
  const random = mulberry32(seed);
  const le = !bigEndian;
  for (let v = 0; v < count; v++) {
    const smooth = Math.sin(v / 997) * 0.6 + (random() - 0.5) * 0.4;  // in (-0.8, 0.8)
    const at = voxOffset + v * bytes;
    switch (type) {
      case 'int8': view.setInt8(at, Math.round(smooth * 127)); break;
      case 'uint8': view.setUint8(at, Math.round((smooth + 1) * 127)); break;
      case 'int16': view.setInt16(at, Math.round(smooth * 32767), le); break;
      case 'uint16': view.setUint16(at, Math.round((smooth + 1) * 32767), le); break;
      case 'int32': view.setInt32(at, Math.round(smooth * 2 ** 31), le); break;
      case 'uint32': view.setUint32(at, Math.round((smooth + 1) * 2 ** 31), le); break;
      case 'float32': view.setFloat32(at, smooth * 3000 + 1e-7 * v, le); break;
      case 'float64': view.setFloat64(at, smooth * 3000 + 1e-9 * v, le); break;
      case 'int64': view.setBigInt64(at, BigInt(Math.round(smooth * 2 ** 40)), le); break;
    }
  }
  return out;
}

/** The voxels' bits, for an exact comparison (NaN payloads and signed zeros included). */
function bits(data: Float32Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** readNiftiChannels through the other path (ISA-L off: libdeflate where present, else zlib). */
async function readWithoutIsal(input: string | Uint8Array): Promise<Float32Array> {
  setIsalEnabled(false);
  try {
    return (await readNiftiChannels(input)).volume.data;
  } finally {
    setIsalEnabled(true);
  }
}

/** Reads `input` with ISA-L on, watching its inflateDecode: the voxels and whether ISA-L took the stream. */
async function readWithIsal(input: string | Uint8Array): Promise<{ data: Float32Array; streamed: boolean[] }> {
  const isal = isalInflater() as IsalInflater;
  const spy = vi.spyOn(isal, 'inflateDecode');
  try {
    const { volume } = await readNiftiChannels(input);
    const streamed = await Promise.all(spy.mock.results.map((r) => (r.value as Promise<void>).then(() => true, () => false)));
    return { data: volume.data, streamed };
  } finally {
    spy.mockRestore();
  }
}

describe.runIf(isalHere)('ISA-L streamed read (inflate and decode overlapped)', () => {
  afterEach(() => {
    setIsalEnabled(true);
    setGzipCodecEnabled(true);
    setVolumeKernelsEnabled(true);
  });

  it('is loaded from the system library and named by the codec status', () => {
    expect(isalInflater()).not.toBeNull();
    const status = gzipCodecStatus();
    expect(status).toMatchObject({ inflater: 'isa-l', isal: true });
    expect(status.reason).toMatch(/^ISA-L \(.*libisal\.so\.2\)/);
    setIsalEnabled(false);
    expect(isalInflater()).toBeNull();
    expect(gzipCodecStatus()).toMatchObject({ inflater: 'libdeflate', isal: false, reason: expect.stringMatching(/ISA-L not used \(switched off\)/) });
    setIsalEnabled(true);
    // With the TS loops forced, the TS loops decode: ISA-L is not used.
    setVolumeKernelsEnabled(false);
    expect(isalInflater()).toBeNull();
    expect(gzipCodecStatus().reason).toMatch(/CPU kernels are off/);
  });

  const layouts: Layout[] = [
    { type: 'int16', shape: [7, 5, 4] },
    { type: 'int16', shape: [160, 144, 70], slope: 1, inter: -1024 },
    { type: 'uint8', shape: [128, 96, 33] },
    { type: 'int8', shape: [40, 31, 50], slope: -2 },
    { type: 'uint16', shape: [90, 70, 45], slope: 0.5, inter: 10 },
    { type: 'int32', shape: [64, 50, 37], slope: 1e-3 },
    { type: 'uint32', shape: [30, 20, 17] },
    { type: 'float32', shape: [100, 80, 40], inter: 0.25 },
    { type: 'float64', shape: [48, 40, 35], slope: 3, inter: -7 },
    // Odd vox_offsets: the voxels must still be read at their alignment.
    { type: 'int16', shape: [33, 17, 19], voxOffset: 355 },
    { type: 'float64', shape: [21, 13, 18], voxOffset: 357, slope: 2 },
    // Several channels: slabs cross from one channel into the next.
    { type: 'int16', shape: [160, 128, 30], channels: 3, slope: 2, inter: 1 },
    { type: 'float32', shape: [1, 1, 1] },
  ];

  it.each(layouts.map((layout, i) => [`${layout.type} ${layout.shape.join('x')}${layout.channels ? `x${layout.channels}` : ''} slope ${layout.slope ?? 1} inter ${layout.inter ?? 0} vox_offset ${layout.voxOffset ?? 352}`, layout, i] as const))(
    '%s: the same bits as the other path, and ISA-L took it',
    async (_, layout, i) => {
      const file = niftiFile(layout, 100 + i);
      const gz = zlib.gzipSync(file, { level: 6 });
      const { data, streamed } = await readWithIsal(gz);
      expect(streamed).toEqual([true]);
      const other = await readWithoutIsal(gz);
      expect(bits(data).equals(bits(other))).toBe(true);
      // And zlib with the TS loops, an independent decode.
      setIsalEnabled(false);
      setGzipCodecEnabled(false);
      setVolumeKernelsEnabled(false);
      const tsLoops = (await readNiftiChannels(gz)).volume.data;
      expect(bits(data).equals(bits(tsLoops))).toBe(true);
    },
  );

  it('takes several members (pigz, bgzip, cat a.gz b.gz), cut anywhere, and gives the same bits', async () => {
    const file = niftiFile({ type: 'int16', shape: [256, 256, 48], slope: 1, inter: -1024 }, 7);
    const reference = await readWithoutIsal(zlib.gzipSync(file));
    const cuts = [
      [200],  // inside the NIfTI header
      [352, 352, 353],  // an empty member, then one starting mid-voxel
      [file.length >> 1],
      Array.from({ length: Math.ceil(file.length / 65280) - 1 }, (_, m) => (m + 1) * 65280),  // bgzip-sized members
    ];
    for (const at of cuts) {
      const bounds = [0, ...at, file.length];
      const gz = Buffer.concat(bounds.slice(1).map((end, m) => zlib.gzipSync(file.subarray(bounds[m], end), { level: 1 + (m % 9) })));
      const { data, streamed } = await readWithIsal(gz);
      expect(streamed, `cut at ${at.slice(0, 3).join(', ')}`).toEqual([true]);
      expect(bits(data).equals(bits(reference))).toBe(true);
    }
  });

  it('reads a file and its bytes the same way, and several files at once', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-isal-'));
    try {
      const files = await Promise.all([0, 1, 2, 3].map(async (n) => {
        const file = path.join(dir, `ct-${n}.nii.gz`);
        await writeFile(file, zlib.gzipSync(niftiFile({ type: 'int16', shape: [150, 120, 30 + n] }, 50 + n), { level: 1 }));
        return file;
      }));
      const references = await Promise.all(files.map((file) => readWithoutIsal(file)));
      const isal = isalInflater() as IsalInflater;
      const spy = vi.spyOn(isal, 'inflateDecode');
      const together = await Promise.all(files.map((file) => readNifti(file)));
      expect(spy).toHaveBeenCalledTimes(4);
      await Promise.all(spy.mock.results.map((r) => expect(r.value).resolves.toBeUndefined()));
      spy.mockRestore();
      together.forEach(({ volume }, n) => expect(bits(volume.data).equals(bits(references[n]))).toBe(true));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('leaves what it does not decode as stored to the other path: big-endian and int64 files', async () => {
    for (const layout of [{ type: 'int16', shape: [40, 30, 20], bigEndian: true, slope: 2 }, { type: 'int64', shape: [20, 10, 9] }] as Layout[]) {
      const gz = zlib.gzipSync(niftiFile(layout, 3));
      const { data, streamed } = await readWithIsal(gz);
      expect(streamed).toEqual([]);
      expect(bits(data).equals(bits(await readWithoutIsal(gz)))).toBe(true);
    }
  });

  it('refuses bad streams (then the other path gives its coded error) and never a partial volume', async () => {
    const file = niftiFile({ type: 'int16', shape: [128, 128, 48] }, 9);
    const gz = zlib.gzipSync(file);
    const bad: Record<string, Uint8Array> = {
      truncated: gz.subarray(0, gz.length >> 1),
      'damaged CRC': Buffer.from(gz).fill(gz[gz.length - 6] ^ 1, gz.length - 6, gz.length - 5),
      'damaged ISIZE': Buffer.from(gz).fill(gz[gz.length - 1] ^ 1, gz.length - 1),
      'damaged deflate data': Buffer.from(gz).fill(0x55, gz.length >> 1, (gz.length >> 1) + 8),
      'voxels cut short': zlib.gzipSync(file.subarray(0, file.length - 1)),
      'too long': zlib.gzipSync(Buffer.concat([file, Buffer.alloc(2 << 20)])),
      'trailing garbage': Buffer.concat([gz, Buffer.from('not gzip')]),
    };
    for (const [name, stream] of Object.entries(bad)) {
      const isal = isalInflater() as IsalInflater;
      const spy = vi.spyOn(isal, 'inflateDecode');
      const error = await readNifti(stream).then(() => null, (e: unknown) => e);
      expect(spy, name).toHaveBeenCalledTimes(1);
      await expect(spy.mock.results[0].value, name).rejects.toThrow();
      spy.mockRestore();
      expect(error, name).toBeInstanceOf(SpleenTrtError);
      setIsalEnabled(false);
      setGzipCodecEnabled(false);
      const zlibError = await readNifti(stream).then(() => null, (e: unknown) => e);
      setIsalEnabled(true);
      setGzipCodecEnabled(true);
      expect((error as SpleenTrtError).code, name).toBe((zlibError as SpleenTrtError).code);
      expect((error as SpleenTrtError).message, name).toBe((zlibError as SpleenTrtError).message);
    }
    // Trailing zero bytes: zlib ignores them, ISA-L refuses, the other path reads the volume.
    const padded = Buffer.concat([gz, Buffer.alloc(100)]);
    const { data, streamed } = await readWithIsal(padded);
    expect(streamed).toEqual([false]);
    expect(bits(data).equals(bits(await readWithoutIsal(gz)))).toBe(true);
  });

  it('checks its arguments on the JS thread', () => {
    const isal = isalInflater() as IsalInflater;
    const gz = zlib.gzipSync(new Uint8Array(1000));
    const out = new Float32Array(8);
    expect(() => isal.inflateDecode(gz, 1000, 352, 'int64' as 'int16', [2, 2, 2], 1, 1, 0, out)).toThrow(RangeError);
    expect(() => isal.inflateDecode(gz, 1000, 352, 'int16', [2, 2, 2], 1, 1, 0, new Float32Array(7))).toThrow(RangeError);
    expect(() => isal.inflateDecode(gz, 300, 352, 'int16', [2, 2, 2], 1, 1, 0, out)).toThrow(RangeError);
    expect(() => isal.inflateDecode(gz, 1000, -1, 'int16', [2, 2, 2], 1, 1, 0, out)).toThrow(RangeError);
    expect(() => isal.inflateDecode(new Int16Array(4) as unknown as Uint8Array, 1000, 352, 'int16', [2, 2, 2], 1, 1, 0, out)).toThrow(TypeError);
  });
});

describe('SPLEEN_TRT_NO_ISAL=1', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-no-isal-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('leaves ISA-L unopened in a fresh process, which reads the same voxels through the other path', async () => {
    const file = path.join(dir, 'ct.nii.gz');
    await writeFile(file, zlib.gzipSync(niftiFile({ type: 'int16', shape: [61, 47, 23], slope: 1, inter: -1024 }, 4)));
    const here = await readNifti(file);
    const script = path.join(dir, 'read.mjs');
    await writeFile(
      script,
      `import { readNifti } from ${JSON.stringify(path.resolve('dist/nifti/index.js'))};\n` +
        `import { gzipCodecStatus } from ${JSON.stringify(path.resolve('dist/native/gzip-codec.js'))};\n` +
        `const { volume } = await readNifti(${JSON.stringify(file)});\n` +
        `process.stdout.write(JSON.stringify({ status: gzipCodecStatus(), data: Buffer.from(volume.data.buffer, volume.data.byteOffset, volume.data.byteLength).toString('base64') }));\n`,
    );
    const child = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, SPLEEN_TRT_NO_ISAL: '1' }, maxBuffer: 64 << 20 });
    expect(child.stderr).toBe('');
    const result = JSON.parse(child.stdout) as { status: { isal: boolean; reason: string }; data: string };
    expect(result.status.isal).toBe(false);
    if (existsSync(LIBISAL)) expect(result.status.reason).toMatch(/ISA-L not used \(unavailable: switched off \(SPLEEN_TRT_NO_ISAL=1\)\)/);
    expect(Buffer.from(result.data, 'base64').equals(bits(here.volume.data))).toBe(true);
  });
});
