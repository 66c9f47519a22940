/**
 * The addon's label-map DEFLATE encoder (native/core/run_deflate.cc) and the writer's use of it:
 * every segment inflated by zlib (an independent decoder) to the stored stream computed here in
 * TS, CRC-32s equal to zlib.crc32, random runs, words, datatypes and piece boundaries; the mask
 * .nii.gz read back by gunzip, `gzip -t` and nibabel; data without runs left to zlib.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setGzipCodecEnabled } from '../../src/native/gzip-codec.js';
import { adviseHugePages } from '../../src/native/memory.js';
import { runDeflate, setRunDeflateEnabled, type RunDeflate } from '../../src/native/run-deflate.js';
import { gzipPieces } from '../../src/nifti/gzip-pieces.js';
import { encodeNifti, niftiPieces, writeNifti } from '../../src/nifti/write-nifti.js';
import type { NiftiWriteDatatype } from '../../src/nifti/nifti-voxels.js';
import { mulberry32 } from '../../src/phantom/make-phantom.js';
import type { Shape3 } from '../../src/volume/volume.js';
import { hasCommand, hasPythonModules, requireTool, SYSTEM_PYTHON } from '../helpers/system-tools.js';
import { ensureAddonBuilt } from './native-test-helpers.js';

let encoder: RunDeflate;
beforeAll(() => {
  ensureAddonBuilt();
  encoder = runDeflate()!;
}, 600_000);

const affine = Float64Array.from([-0.8, 0, 0, 10, 0, -0.8, 0, 20, 0, 0, 2.5, -30, 0, 0, 0, 1]);

/**
 * C-order labels ([c][i][j][k]) whose file-order stream (i fastest) is runs of random lengths
 * (geometric around `meanRun`) of labels drawn from `labelCount` values.
 */
function runLabels(shape: Shape3, channels: number, meanRun: number, labelCount: number, seed: number): Uint8Array {
  const random = mulberry32(seed);
  const [n0, n1, n2] = shape;
  const count = n0 * n1 * n2 * channels;
  const labels = new Uint8Array(count);
  let label = 0;
  let left = 0;
  for (let f = 0; f < count; f++) {
    if (left === 0) {
      label = Math.floor(random() * labelCount);
      left = 1 + Math.floor(-Math.log(1 - random()) * meanRun);
    }
    left--;
    // file index f = ((c * n2 + k) * n1 + j) * n0 + i
    const i = f % n0;
    const j = Math.floor(f / n0) % n1;
    const p = Math.floor(f / (n0 * n1));
    const c = Math.floor(p / n2);
    const k = p % n2;
    labels[((c * n0 + i) * n1 + j) * n2 + k] = label;
  }
  return labels;
}

/** The stored stream of planes [begin, end): words[label] for each voxel in file order. */
function storedStream(labels: Uint8Array, shape: Shape3, begin: number, end: number, words: Uint8Array, width: number): Uint8Array {
  const [n0, n1, n2] = shape;
  const out = new Uint8Array((end - begin) * n0 * n1 * width);
  let o = 0;
  for (let p = begin; p < end; p++) {
    const c = Math.floor(p / n2);
    const k = p % n2;
    for (let j = 0; j < n1; j++) {
      for (let i = 0; i < n0; i++) {
        const v = labels[((c * n0 + i) * n1 + j) * n2 + k];
        out.set(words.subarray(v * width, (v + 1) * width), o);
        o += width;
      }
    }
  }
  return out;
}

/** 256 random words; some labels share a word, some words are all zero bytes. */
function randomWords(width: number, seed: number): Uint8Array {
  const random = mulberry32(seed);
  const words = new Uint8Array(256 * width);
  for (let v = 0; v < 256; v++) {
    const kind = random();
    if (kind < 0.2) continue; // zero word
    if (kind < 0.4 && v > 0) {
      words.copyWithin(v * width, (v - 1) * width, v * width); // same word as the label before
      continue;
    }
    for (let b = 0; b < width; b++) words[v * width + b] = Math.floor(random() * 256);
  }
  return words;
}

describe('run encoder: segments and CRC-32', () => {
  it('crc32Combine agrees with zlib.crc32 over random splits', () => {
    const random = mulberry32(1);
    const data = Uint8Array.from({ length: 70_000 }, () => Math.floor(random() * 256));
    for (const split of [0, 1, 7, 4096, 65_536, 70_000]) {
      const a = data.subarray(0, split);
      const b = data.subarray(split);
      expect(encoder.crc32Combine(zlib.crc32(a), zlib.crc32(b), b.length)).toBe(zlib.crc32(data));
    }
  });

  it('inflates (zlib) to the stored stream, with its CRC-32 and length, for random runs, words, shapes and piece boundaries', async () => {
    const random = mulberry32(2);
    for (let trial = 0; trial < 40; trial++) {
      const width = [1, 2, 4, 8][trial % 4];
      const shape: Shape3 = trial === 0 ? [1, 1, 1] : [1 + Math.floor(random() * 40), 1 + Math.floor(random() * 30), 1 + Math.floor(random() * 12)];
      const channels = 1 + Math.floor(random() * 3) * (trial % 5 === 0 ? 1 : 0);
      // Runs from a few voxels (literal-heavy) to longer than a plane (matches across rows and planes).
      const meanRun = [1, 3, 50, 700, 5000][trial % 5];
      const labels = runLabels(shape, channels, meanRun, 1 + Math.floor(random() * 6), 100 + trial);
      const words = randomWords(width, 200 + trial);
      const planes = shape[2] * channels;
      // Random cuts, empty ranges included.
      const cuts = [0, planes, ...Array.from({ length: Math.floor(random() * 4) }, () => Math.floor(random() * (planes + 1)))].sort((x, y) => x - y);
      const segments = await Promise.all(
        cuts.slice(1).map((end, r) => encoder.deflateLabelPlanes(labels, shape, channels, cuts[r], end, words, width, r === cuts.length - 2, 1e12)),
      );
      const expected = storedStream(labels, shape, 0, planes, words, width);
      let crc = 0;
      let length = 0;
      for (let r = 0; r < segments.length; r++) {
        const segment = segments[r]!;
        const alone = storedStream(labels, shape, cuts[r], cuts[r + 1], words, width);
        expect(segment.length).toBe(alone.length);
        expect(segment.crc).toBe(zlib.crc32(alone));
        crc = encoder.crc32Combine(crc, segment.crc, segment.length);
        length += segment.length;
      }
      const stream = Buffer.concat(segments.map((s) => s!.deflated));
      // One deflate stream: inflateRaw stops at the final block, so trailing garbage would show.
      const inflated = zlib.inflateRawSync(stream);
      expect(Buffer.compare(inflated, expected), `trial ${trial}: ${shape.join('x')}x${channels}, width ${width}`).toBe(0);
      expect(crc).toBe(zlib.crc32(expected));
      expect(length).toBe(expected.length);
    }
  });

  it('CRC-32 of long runs of non-zero words (the GF(2) power and sum) matches zlib', async () => {
    const shape: Shape3 = [300, 200, 7];
    const labels = new Uint8Array(shape[0] * shape[1] * shape[2]).fill(1);
    labels[12345] = 2;
    for (const width of [1, 2, 4, 8]) {
      const words = randomWords(width, 9);
      words.fill(0x5a, width, 2 * width);
      const segment = (await encoder.deflateLabelPlanes(labels, shape, 1, 0, 7, words, width, true, 1e12))!;
      const expected = storedStream(labels, shape, 0, 7, words, width);
      expect(segment.crc).toBe(zlib.crc32(expected));
      expect(Buffer.compare(zlib.inflateRawSync(segment.deflated), expected)).toBe(0);
      // 2 bits per 258-byte match: far below zlib's level 1 on the same bytes.
      expect(segment.deflated.length).toBeLessThan(zlib.deflateRawSync(expected, { level: 1 }).length);
    }
  });

  it('gives up (null) once the output passes maxOutput, as on noise', async () => {
    const shape: Shape3 = [64, 64, 8];
    const labels = runLabels(shape, 1, 1, 200, 5);
    const words = randomWords(4, 6);
    expect(await encoder.deflateLabelPlanes(labels, shape, 1, 0, 8, words, 4, true, 4096)).toBeNull();
    expect(await encoder.deflateLabelPlanes(labels, shape, 1, 0, 8, words, 4, true, 1e9)).not.toBeNull();
  });

  it('refuses bad arguments with TypeError / RangeError before any work', () => {
    const labels = new Uint8Array(24);
    const words = new Uint8Array(1024);
    expect(() => encoder.deflateLabelPlanes(labels, [2, 3, 5], 1, 0, 1, words, 4, true, 100)).toThrow(RangeError);
    expect(() => encoder.deflateLabelPlanes(labels, [2, 3, 4], 1, 0, 5, words, 4, true, 100)).toThrow(RangeError);
    expect(() => encoder.deflateLabelPlanes(labels, [2, 3, 4], 1, 3, 2, words, 4, true, 100)).toThrow(RangeError);
    expect(() => encoder.deflateLabelPlanes(labels, [2, 3, 4], 1, 0, 4, words, 3, true, 100)).toThrow(RangeError);
    expect(() => encoder.deflateLabelPlanes(labels, [2, 3, 4], 1, 0, 4, words.subarray(1), 4, true, 100)).toThrow(RangeError);
    expect(() => encoder.deflateLabelPlanes(new Float32Array(24) as unknown as Uint8Array, [2, 3, 4], 1, 0, 4, words, 4, true, 100)).toThrow(TypeError);
  });
});

/** The deflate body between gzip's 10-byte header and 8-byte trailer, inflated as ONE raw stream. */
function inflateBodyAsOneStream(gz: Uint8Array): Uint8Array {
  return zlib.inflateRawSync(gz.subarray(10, gz.length - 8));
}

async function gzipBothWays(volume: Parameters<typeof niftiPieces>[0], options: Parameters<typeof niftiPieces>[1], pieceBytes?: number) {
  const withRuns = await gzipPieces(niftiPieces(volume, options, pieceBytes), 1, 3);
  setRunDeflateEnabled(false);
  try {
    return { withRuns, withZlib: await gzipPieces(niftiPieces(volume, options, pieceBytes), 1, 3) };
  } finally {
    setRunDeflateEnabled(true);
  }
}

describe('writer: label maps through the run encoder', () => {
  const shape: Shape3 = [61, 47, 23];
  const mask = runLabels(shape, 1, 400, 2, 31);
  const cases: { name: string; datatype: NiftiWriteDatatype; byteOrder?: 'little' | 'big'; scaling?: { slope: number; inter: number }; channels?: number }[] = [
    { name: 'float32', datatype: 'float32' },
    { name: 'uint8', datatype: 'uint8' },
    { name: 'int16 big-endian', datatype: 'int16', byteOrder: 'big' },
    { name: 'int32', datatype: 'int32' },
    { name: 'float64 big-endian', datatype: 'float64', byteOrder: 'big' },
    { name: 'int16 with scaling (label 0 is not a zero word)', datatype: 'int16', scaling: { slope: 0.5, inter: -3 } },
    { name: 'float32, 3 channels, pieces crossing channels', datatype: 'float32', channels: 3 },
  ];
  for (const c of cases) {
    it(`gzips to encodeNifti's bytes, one member, smaller than zlib level 1: ${c.name}`, async () => {
      const channels = c.channels ?? 1;
      const data = channels === 1 ? mask : runLabels(shape, channels, 400, 3, 32);
      const volume = { data, shape, affine, channels };
      const options = { datatype: c.datatype, byteOrder: c.byteOrder, scaling: c.scaling };
      // Small pieces: several run-encoded ranges, each of several pieces.
      const { withRuns, withZlib } = await gzipBothWays(volume, options, 5 * shape[0] * shape[1]);
      const expected = Buffer.from(encodeNifti(volume, options));
      expect(Buffer.compare(zlib.gunzipSync(withRuns), expected)).toBe(0);
      expect(Buffer.compare(inflateBodyAsOneStream(withRuns), expected)).toBe(0);
      expect(Buffer.compare(zlib.gunzipSync(withZlib), expected)).toBe(0);
      // The run encoder did the image (zlib alone writes a larger file).
      expect(withRuns.length).toBeLessThan(withZlib.length);
    });
  }

  it('writes the same file with libdeflate off (the header piece\'s CRC-32 then from zlib.crc32)', async () => {
    const volume = { data: mask, shape, affine };
    const { withRuns } = await gzipBothWays(volume, { datatype: 'float32' });
    setGzipCodecEnabled(false);
    try {
      const again = await gzipPieces(niftiPieces(volume, { datatype: 'float32' }), 1, 3);
      expect(Buffer.compare(again, withRuns)).toBe(0);
    } finally {
      setGzipCodecEnabled(true);
    }
  });

  it('leaves a label map without runs to zlib (same file as with the encoder off)', async () => {
    const noise = runLabels(shape, 1, 1, 250, 33);
    const { withRuns, withZlib } = await gzipBothWays({ data: noise, shape, affine }, { datatype: 'float32' });
    expect(Buffer.compare(withRuns, withZlib)).toBe(0);
  });

  it('a 1-voxel label map', async () => {
    const volume = { data: Uint8Array.of(1), shape: [1, 1, 1] as Shape3, affine };
    const { withRuns } = await gzipBothWays(volume, { datatype: 'float32' });
    expect(Buffer.compare(zlib.gunzipSync(withRuns), Buffer.from(encodeNifti(volume, { datatype: 'float32' })))).toBe(0);
  });

  it('a failing segment rejects gzipPieces after the others settle; nothing is written', async () => {
    const source = niftiPieces({ data: mask, shape, affine }, {}, 5 * shape[0] * shape[1]);
    let settled = 0;
    source.deflateRange = async (first) => {
      await new Promise((resolve) => setTimeout(resolve, first * 2));
      settled++;
      if (first === 1) throw new Error('segment failed');
      return null;
    };
    await expect(gzipPieces(source, 1, 3)).rejects.toThrow('segment failed');
    expect(settled).toBe(3);
  });

  const gzipHere = requireTool(hasCommand('gzip'), 'gzip');
  const nibabelHere = requireTool(hasPythonModules('nibabel', 'numpy'), 'python3-nibabel');
  describe.runIf(gzipHere && nibabelHere)('read back by gzip and nibabel', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-run-deflate-'));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('a 512x512-plane mask written by writeNifti: gzip -t, one member, nibabel reads the same voxels', async () => {
      const big: Shape3 = [512, 512, 9];
      const labels = new Uint8Array(big[0] * big[1] * big[2]);
      // An ellipsoid, as a spleen mask is.
      for (let i = 0; i < big[0]; i++) for (let j = 0; j < big[1]; j++) for (let k = 0; k < big[2]; k++) {
        if (((i - 300) / 60) ** 2 + ((j - 200) / 90) ** 2 + ((k - 4) / 4) ** 2 < 1) labels[(i * big[1] + j) * big[2] + k] = 1;
      }
      for (const datatype of ['float32', 'uint8'] as const) {
        const file = path.join(dir, `mask-${datatype}.nii.gz`);
        await writeNifti(file, { data: labels, shape: big, affine }, { datatype, gzipLevel: 1 });
        expect(spawnSync('gzip', ['-t', file]).status).toBe(0);
        const code = [
          'import sys, hashlib, zlib, nibabel as nib, numpy as np',
          'a = np.asarray(nib.load(sys.argv[1]).dataobj)',
          'print(a.dtype, a.shape, hashlib.sha256(np.ascontiguousarray(a.astype(np.uint8)).tobytes()).hexdigest())',
          'd = zlib.decompressobj(31); out = d.decompress(open(sys.argv[1], "rb").read()); print(len(out), len(d.unused_data), d.eof)',
        ].join('\n');
        const child = spawnSync(SYSTEM_PYTHON, ['-c', code, file], { encoding: 'utf8' });
        expect(child.stderr).toBe('');
        const [first, second] = child.stdout.trim().split('\n');
        expect(first).toBe(`${datatype} (${big.join(', ')}) ${createHash('sha256').update(labels).digest('hex')}`);
        expect(second).toBe(`${352 + labels.length * (datatype === 'float32' ? 4 : 1)} 0 True`);
        const gz = await readFile(file);
        expect(Buffer.compare(zlib.gunzipSync(gz), Buffer.from(encodeNifti({ data: labels, shape: big, affine }, { datatype })))).toBe(0);
      }
      // Only the two files: no temporary left behind.
      expect((await readdir(dir)).sort()).toEqual(['mask-float32.nii.gz', 'mask-uint8.nii.gz']);
    });
  });
});

describe('huge-page advice', () => {
  const thp = (() => {
    try {
      return spawnSync('cat', ['/sys/kernel/mm/transparent_hugepage/enabled'], { encoding: 'utf8' }).stdout;
    } catch {
      return '';
    }
  })();
  const anonHuge = async (): Promise<number> => Number(/AnonHugePages:\s+(\d+)/.exec(await readFile('/proc/self/smaps_rollup', 'utf8'))?.[1] ?? 0);

  it.runIf(process.platform === 'linux' && /\[(always|madvise)\]/.test(thp))('backs an advised fresh buffer with 2 MiB pages once it is written', async () => {
    const before = await anonHuge();
    const buffer = Buffer.allocUnsafeSlow(32 << 20);
    adviseHugePages(buffer);
    buffer.fill(1);
    // At least part of the 32 MiB (its 2 MiB-aligned interior) in huge pages.
    expect((await anonHuge()) - before).toBeGreaterThanOrEqual(8 << 10);
    expect(buffer[buffer.length - 1]).toBe(1);
  });

  it('ignores small views and refuses what is not a typed array', () => {
    expect(() => adviseHugePages(new Uint8Array(16))).not.toThrow();
    expect(() => adviseHugePages({} as unknown as Uint8Array)).toThrow(TypeError);
  });
});
