/**
 * End-to-end parity with the real MONAI bundle pipeline (MONAI 1.4.0, torch), on inputs written by
 * nibabel and the embedded default model's weights; fixtures from
 * scripts/fixtures/make_bundle_parity_fixtures.py. Set SPLEEN_TRT_PARITY_DIR to a folder of more
 * cases in the same layout to check those too.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNifti, Segmenter, type SegmentResult } from '../../../src/index.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/bundle');
const dirs = [FIXTURES, process.env.SPLEEN_TRT_PARITY_DIR].filter((d): d is string => Boolean(d) && existsSync(d!));
const cases = dirs.flatMap((dir) => readdirSync(dir).filter((n) => existsSync(path.join(dir, n, 'expected.json'))).map((n) => path.join(dir, n)));

interface Expected {
  stride: number;
  preprocessedShape: number[];
  preprocessedAffine: number[][];
  originalShape: number[];
  maskAffine: number[][];
  maskVoxels: number;
}

function readFloats(file: string): Float32Array {
  const bytes = gunzipSync(readFileSync(file));
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function maxAbsDiffStrided(actual: Float32Array, expectedSamples: Float32Array, stride: number): number {
  let max = 0;
  for (let s = 0; s < expectedSamples.length; s++) max = Math.max(max, Math.abs(actual[s * stride] - expectedSamples[s]));
  return max;
}

function expectAffine(actual: Float64Array, expected: number[][]): void {
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(Math.abs(actual[r * 4 + c] - expected[r][c])).toBeLessThanOrEqual(1e-6);
}

describe.runIf(cases.length > 0)('parity with the MONAI bundle pipeline', () => {
  let segmenter: Segmenter;
  beforeAll(async () => {
    // The fixtures were made with the seeded weights (scripts/reference/export-weights.mjs).
    segmenter = await Segmenter.create({ backend: 'onnxruntime', model: 'builtin:seeded' });
  });
  afterAll(() => segmenter?.close());

  describe.each(cases)('%s', (caseDir) => {
    const name = path.basename(caseDir);
    const expected = JSON.parse(readFileSync(path.join(caseDir, 'expected.json'), 'utf8')) as Expected;
    let result: SegmentResult;
    let withoutStages: SegmentResult;
    beforeAll(async () => {
      const { volume } = await readNifti(path.join(caseDir, `${name}.nii.gz`));
      result = await segmenter.segment(volume, { keepStages: true });
      // Without stages the postprocessing skips what the logits already decide (decided-region.ts).
      withoutStages = await segmenter.segment(volume);
    });

    it('gives the identical mask with and without keepStages', () => {
      expect(withoutStages.stages).toBeUndefined();
      expect(Buffer.from(withoutStages.mask.data).equals(Buffer.from(result.mask.data))).toBe(true);
    });

    it('preprocesses to the same grid and values (<= 1e-5)', () => {
      const pre = result.stages!.preprocessed;
      expect(pre.shape).toEqual(expected.preprocessedShape);
      expectAffine(pre.affine, expected.preprocessedAffine);
      const samples = readFloats(path.join(caseDir, 'preprocessed.bin.gz'));
      expect(samples.length).toBe(Math.ceil(pre.data.length / expected.stride));
      expect(maxAbsDiffStrided(pre.data, samples, expected.stride)).toBeLessThanOrEqual(1e-5);
    });

    it('gives the same logits for the same weights (<= 1e-4)', () => {
      const logits = result.stages!.logits;
      const samples = readFloats(path.join(caseDir, 'logits.bin.gz'));
      expect(samples.length).toBe(Math.ceil(logits.data.length / expected.stride));
      expect(maxAbsDiffStrided(logits.data, samples, expected.stride)).toBeLessThanOrEqual(1e-4);
    });

    it('gives the same foreground probability on the original grid (<= 1e-4)', () => {
      const probability = result.stages!.probability;
      expect(probability.shape).toEqual(expected.originalShape);
      const samples = readFloats(path.join(caseDir, 'probability.bin.gz'));
      expect(maxAbsDiffStrided(probability.data, samples, expected.stride)).toBeLessThanOrEqual(1e-4);
    });

    it('gives the same mask (>= 99.9 % voxel agreement) on the same geometry', () => {
      const { mask } = result;
      expect(mask.shape).toEqual(expected.originalShape);
      expectAffine(mask.affine, expected.maskAffine);
      const reference = gunzipSync(readFileSync(path.join(caseDir, 'mask.bin.gz')));
      expect(reference.length).toBe(mask.data.length);
      let disagree = 0;
      for (let i = 0; i < reference.length; i++) if (reference[i] !== mask.data[i]) disagree++;
      expect(disagree / reference.length).toBeLessThanOrEqual(0.001);
      expect(result.summary.voxelCount).toBeGreaterThan(0);
      expect(Math.abs(result.summary.voxelCount - expected.maskVoxels)).toBeLessThanOrEqual(reference.length * 0.001);
    });
  });
});
