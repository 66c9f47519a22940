/**
 * Parity with MONAI 1.4.0 on the fixtures of scripts/fixtures/make_volume_fixtures.py: the bundle's
 * Orientationd + Spacingd + ScaleIntensityRanged, and Invertd on a 2-channel probability map.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { applyIntensityWindow } from '../../../src/volume/intensity.js';
import { invertPreprocessing } from '../../../src/volume/invert-preprocessing.js';
import { invertOrientation, orientToRas } from '../../../src/volume/orientation.js';
import { invertSpacing, resampleToSpacing } from '../../../src/volume/spacing.js';
import type { Shape3, Vec3, Volume } from '../../../src/volume/volume.js';

const dir = fileURLToPath(new URL('../../fixtures/volume/', import.meta.url));

interface PipelineCase {
  name: string;
  inputShape: Shape3;
  inputAffine: number[];
  orientedShape: Shape3;
  orientedAffine: number[];
  preprocessedShape: Shape3;
  preprocessedAffine: number[];
  spacingSkipped: boolean;
  sections: [string, number][];
}

interface ShapeCase {
  shape: Shape3;
  affine: number[];
  outShape: Shape3;
  outAffine: number[];
  skipped: boolean;
}

const pipeline = JSON.parse(readFileSync(`${dir}pipeline.json`, 'utf8')) as { pixdim: Vec3; cases: PipelineCase[] };
const shapes = JSON.parse(readFileSync(`${dir}shapes.json`, 'utf8')) as {
  pixdim: Vec3;
  intensityCount: number;
  cases: ShapeCase[];
};

function readFloat32(path: string): Float32Array {
  const buf = readFileSync(path);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function sectionsOf(c: PipelineCase): Record<string, Float32Array> {
  const all = readFloat32(`${dir}${c.name}.bin`);
  const out: Record<string, Float32Array> = {};
  let offset = 0;
  for (const [name, count] of c.sections) {
    out[name] = all.subarray(offset, offset + count);
    offset += count;
  }
  expect(offset).toBe(all.length);
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function volumeOf(data: Float32Array, shape: Shape3, affine: number[]): Volume {
  const a = Float64Array.from(affine);
  const norm = (c: number) => Math.hypot(a[c], a[4 + c], a[8 + c]);
  return { data, shape, spacingMm: [norm(0), norm(1), norm(2)], affine: a };
}

describe('MONAI parity: preprocessing and Invertd', () => {
  it('has the expected fixture set', () => {
    expect(pipeline.cases.map((c) => c.name)).toEqual([
      'lps', 'ras', 'permuted', 'oblique', 'oblique-permuted', 'sheared', 'sheared-centred', 'skip', 'ties',
      'upsample',
    ]);
  });

  for (const c of pipeline.cases) {
    describe(c.name, () => {
      const s = sectionsOf(c);
      const input = volumeOf(s.input, c.inputShape, c.inputAffine);
      const { volume: oriented, orientation } = orientToRas(input);
      const { volume: resampled, resampling } = resampleToSpacing(oriented, pipeline.pixdim);

      it('orients like Orientationd', () => {
        expect(oriented.shape).toEqual(c.orientedShape);
        expect(maxAbsDiff(oriented.affine, c.orientedAffine)).toBeLessThanOrEqual(1e-6);
        expect(maxAbsDiff(oriented.data, s.oriented)).toBe(0);
      });

      it('resamples and windows like Spacingd + ScaleIntensityRanged', () => {
        expect(resampled.shape).toEqual(c.preprocessedShape);
        expect(resampling.skipped).toBe(c.spacingSkipped);
        expect(maxAbsDiff(resampled.affine, c.preprocessedAffine)).toBeLessThanOrEqual(1e-6);
        const windowed = applyIntensityWindow(resampled.data);
        expect(maxAbsDiff(windowed, s.preprocessed)).toBeLessThanOrEqual(1e-5);
      });

      it('inverts a 2-channel map like Invertd', () => {
        const back = invertOrientation(invertSpacing(s.pred, 2, resampling), 2, oriented.shape, orientation);
        expect(back.length).toBe(2 * c.inputShape[0] * c.inputShape[1] * c.inputShape[2]);
        expect(maxAbsDiff(back, s.inverted)).toBeLessThanOrEqual(1e-5);
      });

      it('inverts in one pass (invertPreprocessing) like Invertd', () => {
        const back = invertPreprocessing(s.pred, 2, resampling, orientation);
        expect(maxAbsDiff(back, s.inverted)).toBeLessThanOrEqual(1e-5);
      });
    });
  }
});

describe('MONAI parity: Spacing output grid', () => {
  it.each(shapes.cases.map((c, i) => [i, c] as const))('case %i', (_i, c) => {
    const data = new Float32Array(c.shape[0] * c.shape[1] * c.shape[2]);
    const { volume, resampling } = resampleToSpacing(volumeOf(data, c.shape, c.affine), shapes.pixdim);
    expect(volume.shape).toEqual(c.outShape);
    expect(resampling.skipped).toBe(c.skipped);
    expect(maxAbsDiff(volume.affine, c.outAffine)).toBeLessThanOrEqual(1e-6);
  });
});

describe('MONAI parity: ScaleIntensityRange', () => {
  it('matches bit for bit, including the window edges, infinities and NaN', () => {
    const n = shapes.intensityCount;
    const all = readFloat32(`${dir}intensity.bin`);
    expect(all.length).toBe(2 * n);
    const got = applyIntensityWindow(all.subarray(0, n));
    const want = all.subarray(n);
    let mismatches = 0;
    for (let i = 0; i < n; i++) if (!Object.is(got[i], want[i])) mismatches++;
    expect(mismatches).toBe(0);
  });
});
