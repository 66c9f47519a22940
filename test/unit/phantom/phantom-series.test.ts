/**
 * A phantom series: the random acquisition settings stay in the ranges the issue names, cover every
 * storage kind, and `spleen-trt phantom` writes exactly what makePhantom draws for each case.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { phantomCommand } from '../../../src/cli/phantom-command.js';
import { UsageError } from '../../../src/cli/usage-error.js';
import { readNifti } from '../../../src/nifti/index.js';
import { makePhantom } from '../../../src/phantom/make-phantom.js';
import { caseSeed, samplePhantomOptions } from '../../../src/phantom/sample-phantom-options.js';

describe('samplePhantomOptions', () => {
  const samples = Array.from({ length: 300 }, (_, n) => samplePhantomOptions(caseSeed(9, n)));

  it('is deterministic and keeps spacing, slices and grid in range', () => {
    expect(samplePhantomOptions(caseSeed(9, 3))).toEqual(samples[3]);
    for (const options of samples) {
      const code = options.orientation!;
      const slice = [...code].findIndex((c) => c === 'S' || c === 'I');
      expect(slice).toBeGreaterThanOrEqual(0);
      options.spacingMm!.forEach((s, axis) => {
        if (axis === slice) {
          expect(s).toBeGreaterThanOrEqual(1);
          expect(s).toBeLessThanOrEqual(5);
        } else {
          expect(s).toBeGreaterThanOrEqual(0.6);
          expect(s).toBeLessThanOrEqual(1);
        }
      });
      options.shape!.forEach((n, axis) => {
        expect(Number.isInteger(n)).toBe(true);
        if (axis === slice) {
          // The bundle's 96^3 training crops need 192 mm once resampled to 2 mm slices.
          expect(n * options.spacingMm![axis]).toBeGreaterThanOrEqual(192);
          expect(n).toBeLessThanOrEqual(220);
        } else {
          expect(n).toBeGreaterThanOrEqual(320);
          expect(n).toBeLessThanOrEqual(512);
        }
      });
    }
  });

  it('covers LPS, RAS, permuted and oblique storage, both contrast phases, scaled and plain int16', () => {
    const codes = new Set(samples.map((o) => o.orientation));
    expect(codes.has('LPS')).toBe(true);
    expect(codes.has('RAS')).toBe(true);
    // Permuted: the slice axis is not the last one.
    expect(samples.some((o) => !/[SI]$/.test(o.orientation!))).toBe(true);
    expect(samples.some((o) => o.obliqueDeg!.some((d) => d !== 0))).toBe(true);
    expect(new Set(samples.map((o) => o.contrast))).toEqual(new Set(['none', 'portal-venous']));
    expect(samples.some((o) => o.storage === undefined)).toBe(true);
    expect(samples.some((o) => o.storage?.sclSlope === 0.5)).toBe(true);
    expect(samples.some((o) => o.storage?.sclSlope === 1 && o.storage.sclInter === -1024)).toBe(true);
    const fov = samples.map((o) => Math.min(...o.shape!.map((n, a) => n * o.spacingMm![a])));
    expect(Math.max(...fov) - Math.min(...fov)).toBeGreaterThan(60);
  });

  it('applies grid overrides and gives distinct case seeds', () => {
    const o = samplePhantomOptions(5, { shape: [10, 11, 12], spacingMm: [4, 4, 4] });
    expect(o.shape).toEqual([10, 11, 12]);
    expect(o.spacingMm).toEqual([4, 4, 4]);
    const seeds = new Set(Array.from({ length: 2000 }, (_, n) => caseSeed(1, n)));
    expect(seeds.size).toBe(2000);
    expect(caseSeed(1, 0)).not.toBe(caseSeed(2, 0));
    expect(() => samplePhantomOptions(-1)).toThrow(RangeError);
  });
});

describe('spleen-trt phantom', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('writes images, labels and a manifest that match makePhantom case by case', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-phantom-'));
    dirs.push(dir);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let code: number;
    try {
      code = await phantomCommand(['-o', dir, '--count', '3', '--seed', '4', '--shape', '40x36x16', '--spacing', '6x6x12']);
    } finally {
      stderr.mockRestore();
    }
    expect(code).toBe(0);
    const names = ['phantom_4_000.nii.gz', 'phantom_4_001.nii.gz', 'phantom_4_002.nii.gz'];
    expect((await readdir(path.join(dir, 'images'))).sort()).toEqual(names);
    expect((await readdir(path.join(dir, 'labels'))).sort()).toEqual(names);
    const manifest = JSON.parse(await readFile(path.join(dir, 'phantoms.json'), 'utf8'));
    expect(manifest.cases).toHaveLength(3);
    for (const [n, name] of names.entries()) {
      const expected = makePhantom(samplePhantomOptions(caseSeed(4, n), { shape: [40, 36, 16], spacingMm: [6, 6, 12] }));
      const image = await readNifti(path.join(dir, 'images', name));
      const label = await readNifti(path.join(dir, 'labels', name));
      expect(image.rawDatatype).toBe('int16');
      expect(label.rawDatatype).toBe('uint8');
      expect(Buffer.from(image.volume.data.buffer).equals(Buffer.from(expected.image.data.buffer))).toBe(true);
      expect(Array.from(label.volume.data)).toEqual(Array.from(expected.label.data));
      const record = manifest.cases[n];
      expect(record.name).toBe(name.replace('.nii.gz', ''));
      expect(record.seed).toBe(caseSeed(4, n));
      expect(record.spleenVoxels).toBe(expected.label.data.reduce((a, b) => a + b, 0));
      expect(record.spleenVolumeMl).toBeCloseTo((record.spleenVoxels * 6 * 6 * 12) / 1000, 1);
      const scaled = record.storage !== null && record.storage.sclSlope !== 1;
      if (record.storage) expect(image.header.scl_inter).toBe(record.storage.sclInter);
      if (scaled) expect(image.header.scl_slope).toBe(record.storage.sclSlope);
    }
  });

  it('refuses malformed flags as usage errors', async () => {
    await expect(phantomCommand(['--shape', '10x10'])).rejects.toThrow(UsageError);
    await expect(phantomCommand(['--spacing', '1x0x1'])).rejects.toThrow(/--spacing expects/);
    await expect(phantomCommand(['--count', '0'])).rejects.toThrow(/--count expects/);
    await expect(phantomCommand(['extra'])).rejects.toThrow(UsageError);
  });
});
