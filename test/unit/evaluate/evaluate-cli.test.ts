/**
 * `spleen-trt evaluate` and `infer --preview` with the real pipeline (the embedded model, a small
 * phantom): evaluate's Dice and volumes must equal what the mask that `infer` writes gives when
 * scored here, voxel by voxel, and both commands write decodable previews.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { evaluateCommand } from '../../../src/cli/evaluate-command.js';
import { inferCommand } from '../../../src/cli/infer-command.js';
import { UsageError } from '../../../src/cli/usage-error.js';
import { readNifti, writeNifti } from '../../../src/nifti/index.js';
import { makePhantom } from '../../../src/phantom/make-phantom.js';

async function quietly<T>(run: () => Promise<T>): Promise<{ value: T; stdout: string; stderr: string }> {
  let stdout = '', stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  try {
    return { value: await run(), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('spleen-trt evaluate', () => {
  let root: string;
  const phantom = makePhantom({ shape: [48, 40, 12], spacingMm: [3, 3, 8], seed: 6 });

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-evaluate-cli-'));
    await mkdir(path.join(root, 'images'));
    await mkdir(path.join(root, 'labels'));
    await writeNifti(path.join(root, 'images', 'p6.nii.gz'), phantom.image, { datatype: 'int16' });
    await writeNifti(path.join(root, 'labels', 'p6.nii.gz'), { ...phantom.label, data: Float32Array.from(phantom.label.data) }, { datatype: 'uint8' });
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('reports the Dice and volumes of the mask infer writes, and previews from both commands', async () => {
    const report = path.join(root, 'report');
    const previews = path.join(root, 'previews');
    const evaluated = await quietly(() =>
      evaluateCommand(['--images', path.join(root, 'images'), '--labels', path.join(root, 'labels'), '-o', report, '--preview-dir', previews, '--backend', 'onnxruntime', '--threads', '2']),
    );
    expect(evaluated.value).toBe(0);
    expect(evaluated.stderr).toMatch(/p6\.nii\.gz: Dice \d\.\d{4}, [\d.]+ mL predicted \/ [\d.]+ mL true/);
    expect(evaluated.stderr).toMatch(/mean Dice \d\.\d{4} over 1 case\(s\)/);
    const json = JSON.parse(await readFile(`${report}.json`, 'utf8'));
    const csv = await readFile(`${report}.csv`, 'utf8');
    expect(csv.split('\n')[1]).toMatch(/^p6,/);

    const inferOut = path.join(root, 'infer');
    const previewFile = path.join(root, 'infer-preview.png');
    const inferred = await quietly(() => inferCommand([path.join(root, 'images', 'p6.nii.gz'), '-o', inferOut, '--preview', previewFile, '--backend', 'onnxruntime', '--threads', '2', '--json']));
    expect(inferred.value).toBe(0);
    expect(JSON.parse(inferred.stdout).files[0].preview).toBe(previewFile);
    const mask = (await readNifti(path.join(inferOut, 'p6', 'p6_trans.nii.gz'))).volume.data;

    // Score infer's mask against the label here.
    let both = 0, predicted = 0, truth = 0;
    for (let n = 0; n < mask.length; n++) {
      const p = mask[n] === 1;
      const g = phantom.label.data[n] === 1;
      if (p) predicted++;
      if (g) truth++;
      if (p && g) both++;
    }
    const c = json.cases[0];
    expect(c.predictedVoxels).toBe(predicted);
    expect(c.trueVoxels).toBe(truth);
    expect(c.intersectionVoxels).toBe(both);
    expect(c.dice).toBeCloseTo((2 * both) / (predicted + truth), 12);
    expect(c.trueVolumeMl).toBeCloseTo((truth * 3 * 3 * 8) / 1000, 9);
    expect(c.predictedVolumeMl).toBeCloseTo((predicted * 3 * 3 * 8) / 1000, 9);
    expect(json.meanDice).toBeCloseTo(c.dice, 12);
    expect(json.model.name).toBeTypeOf('string');

    expect(await readdir(previews)).toEqual(['p6.png']);
    for (const file of [path.join(previews, 'p6.png'), previewFile]) {
      const png = await readFile(file);
      expect(Array.from(png.subarray(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
      expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
    }
  });

  it('exits 1 when a case fails and names it', async () => {
    const dir = await mkdtemp(path.join(root, 'bad-'));
    await mkdir(path.join(dir, 'images'));
    await mkdir(path.join(dir, 'labels'));
    await writeNifti(path.join(dir, 'images', 'x.nii.gz'), phantom.image, { datatype: 'int16' });
    const wrong = { data: new Float32Array(8), shape: [2, 2, 2] as [number, number, number], spacingMm: phantom.image.spacingMm, affine: phantom.image.affine };
    await writeNifti(path.join(dir, 'labels', 'x.nii.gz'), wrong, { datatype: 'uint8' });
    const run = await quietly(() => evaluateCommand(['--images', path.join(dir, 'images'), '--labels', path.join(dir, 'labels'), '-o', path.join(dir, 'r'), '--backend', 'onnxruntime']));
    expect(run.value).toBe(1);
    expect(run.stderr).toMatch(/x\.nii\.gz: error ERR_NIFTI_INVALID: Label .* has shape 2x2x2/);
    expect(run.stderr).toMatch(/1 failed/);
  });

  it('treats missing or stray arguments as usage errors', async () => {
    await expect(evaluateCommand(['--images', 'a'])).rejects.toThrow(UsageError);
    await expect(evaluateCommand(['--labels', 'b'])).rejects.toThrow(/--images/);
    await expect(evaluateCommand(['--images', 'a', '--labels', 'b', 'c'])).rejects.toThrow(/no positional arguments/);
    await expect(evaluateCommand(['--images', 'a', '--labels', 'b', '--backend', 'gpu'])).rejects.toThrow(/--backend expects/);
  });
});
