/**
 * Segmenter with `backend: 'onednn'` against `backend: 'onnxruntime'` on the MONAI parity fixtures
 * (seeded weights: logits within 1e-4 of onnxruntime and of MONAI's) and on a phantom with the
 * embedded default model (identical mask). Needs oneDNN 2.x (libdnnl-dev; required in CI).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNifti, Segmenter } from '../../src/index.js';
import { onednnInfo } from '../../src/native/onednn.js';
import { makePhantom } from '../../src/phantom/make-phantom.js';
import { requireTool } from '../helpers/system-tools.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/bundle');
const cases = readdirSync(FIXTURES).filter((n) => existsSync(path.join(FIXTURES, n, 'expected.json')));

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe.runIf(requireTool(onednnInfo().available, 'oneDNN 2.x (libdnnl-dev)'))("Segmenter backend 'onednn'", () => {
  describe('on the MONAI parity fixtures (seeded weights)', () => {
    let onednn: Segmenter;
    let ort: Segmenter;
    beforeAll(async () => {
      onednn = await Segmenter.create({ backend: 'onednn', model: 'builtin:seeded' });
      ort = await Segmenter.create({ backend: 'onnxruntime', model: 'builtin:seeded' });
    });
    afterAll(async () => {
      await onednn?.close();
      await ort?.close();
    });

    it('says which CPU backend runs', () => {
      expect(onednn.info.backend).toBe('onednn');
      expect(onednn.info.backendDescription).toMatch(/^oneDNN 2\.\d+\.\d+ CPU fp32/);
    });

    it.each(cases)('%s: logits within 1e-4 of onnxruntime and of MONAI, the same mask', async (name) => {
      const dir = path.join(FIXTURES, name);
      const { volume } = await readNifti(path.join(dir, `${name}.nii.gz`));
      const a = await onednn.segment(volume, { keepStages: true });
      const b = await ort.segment(volume, { keepStages: true });
      expect(maxAbsDiff(a.stages!.logits.data, b.stages!.logits.data)).toBeLessThanOrEqual(1e-4);
      const { stride } = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as { stride: number };
      const bytes = gunzipSync(readFileSync(path.join(dir, 'logits.bin.gz')));
      const monai = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      let max = 0;
      for (let s = 0; s < monai.length; s++) max = Math.max(max, Math.abs(a.stages!.logits.data[s * stride] - monai[s]));
      expect(max).toBeLessThanOrEqual(1e-4);
      expect(Buffer.from(a.mask.data).equals(Buffer.from(b.mask.data))).toBe(true);
    });
  });

  it('gives the identical mask on a phantom with the embedded model', async () => {
    const { image } = makePhantom({ seed: 5, shape: [64, 64, 20], spacingMm: [2.5, 2.5, 5] });
    const onednn = await Segmenter.create({ backend: 'onednn' });
    const ort = await Segmenter.create({ backend: 'onnxruntime' });
    try {
      const a = await onednn.segment(image);
      const b = await ort.segment(image);
      expect(b.summary.voxelCount).toBeGreaterThan(0);
      expect(a.summary.voxelCount).toBe(b.summary.voxelCount);
      expect(Buffer.from(a.mask.data).equals(Buffer.from(b.mask.data))).toBe(true);
    } finally {
      await onednn.close();
      await ort.close();
    }
  });
});
