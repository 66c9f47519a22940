/**
 * evaluate on a labelled folder with a stand-in segmenter whose masks are known: a label against
 * itself (Dice 1), a box shifted by one voxel (Dice 0.75 by hand), a phantom's spleen shifted by
 * one voxel (overlap counted here by coordinates), and an empty label (NaN, left out of the mean);
 * pairing errors, a shape mismatch, the CSV/JSON report and the previews.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpleenTrtError } from '../../../src/errors.js';
import { evaluateSegmentations, pairCases, type SegmenterLike } from '../../../src/evaluate/evaluate-segmentations.js';
import { formatEvaluationCsv, writeEvaluationReport } from '../../../src/evaluate/write-evaluation-report.js';
import { encodeNifti, writeNifti } from '../../../src/nifti/index.js';
import { makePhantom } from '../../../src/phantom/make-phantom.js';
import type { LabelVolume } from '../../../src/segment-volume.js';
import type { Shape3, Volume } from '../../../src/volume/volume.js';

const SHAPE: Shape3 = [24, 20, 10];
const SPACING: [number, number, number] = [2, 2, 3];
const N = SHAPE[0] * SHAPE[1] * SHAPE[2];
const at = (i: number, j: number, k: number) => (i * SHAPE[1] + j) * SHAPE[2] + k;

/** A box i 5..8, j 6..9, k lo..lo+3: 4 x 4 x 4 = 64 voxels. */
function box(kLo: number): Uint8Array {
  const mask = new Uint8Array(N);
  for (let i = 5; i <= 8; i++) for (let j = 6; j <= 9; j++) for (let k = kLo; k <= kLo + 3; k++) mask[at(i, j, k)] = 1;
  return mask;
}

function asVolume(image: Volume, mask: Uint8Array): Volume {
  return { ...image, data: Float32Array.from(mask) };
}

/** Returns the masks it was given, in call order, and records the order of the images it saw. */
class ScriptedSegmenter implements SegmenterLike {
  calls: number[] = [];
  constructor(private readonly masks: Uint8Array[]) {}
  async segment(volume: Volume): Promise<{ mask: LabelVolume }> {
    this.calls.push(volume.data[0]);
    const data = this.masks[this.calls.length - 1];
    return { mask: { data, shape: volume.shape, spacingMm: volume.spacingMm, affine: volume.affine } };
  }
}

describe('evaluateSegmentations', () => {
  let root: string;
  let images: string;
  let labels: string;
  const phantom = makePhantom({ shape: SHAPE, spacingMm: SPACING, seed: 8 });
  // A CT-like image whose first voxel tells the stand-in which case it is.
  const imageFor = (marker: number): Volume => {
    const data = phantom.image.data.slice();
    data[0] = marker;
    return { ...phantom.image, data };
  };
  // The phantom's spleen shifted by +1 along i, and its Dice counted here by coordinates.
  const spleen = phantom.label.data;
  const shifted = new Uint8Array(N);
  let overlap = 0, spleenCount = 0, shiftedCount = 0;
  for (let i = 0; i < SHAPE[0]; i++) for (let j = 0; j < SHAPE[1]; j++) for (let k = 0; k < SHAPE[2]; k++) {
    if (!spleen[at(i, j, k)]) continue;
    spleenCount++;
    if (i + 1 < SHAPE[0]) {
      shifted[at(i + 1, j, k)] = 1;
      shiftedCount++;
      if (spleen[at(i + 1, j, k)]) overlap++;
    }
  }
  const spleenShiftDice = (2 * overlap) / (spleenCount + shiftedCount);

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-evaluate-'));
    images = path.join(root, 'images');
    labels = path.join(root, 'labels');
    await mkdir(images);
    await mkdir(labels);
    const cases: [string, number, Uint8Array][] = [
      ['case_a', 1001, box(2)],
      ['case_b', 1002, box(2)],
      ['case_c', 1003, new Uint8Array(N)],
      ['case_d', 1004, spleen],
    ];
    for (const [name, marker, label] of cases) {
      await writeNifti(path.join(images, `${name}.nii.gz`), imageFor(marker), { datatype: 'int16' });
      // One label uncompressed: pairing goes by case name, not by extension.
      const labelFile = path.join(labels, name === 'case_b' ? `${name}.nii` : `${name}.nii.gz`);
      await writeNifti(labelFile, asVolume(phantom.image, label), { datatype: 'uint8' });
    }
    // A macOS resource fork, as in the MSD tarball: not an image.
    await writeFile(path.join(images, '._case_a.nii.gz'), 'junk');
    await writeFile(path.join(images, 'notes.txt'), 'not an image');
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('pairs by case name in sorted order, skipping hidden and non-NIfTI files', async () => {
    const pairs = await pairCases(images, labels);
    expect(pairs.map((p) => p.name)).toEqual(['case_a', 'case_b', 'case_c', 'case_d']);
    expect(path.basename(pairs[1].label)).toBe('case_b.nii');
  });

  it('scores known masks: 1, 0.75 by hand, NaN for the empty label, the shifted spleen, and their mean', async () => {
    const segmenter = new ScriptedSegmenter([box(2), box(3), box(2), shifted]);
    const report = await evaluateSegmentations({ imagesDir: images, labelsDir: labels, segmenter });
    expect(segmenter.calls).toEqual([1001, 1002, 1003, 1004]);
    const [a, b, c, d] = report.cases;
    expect(a.dice).toBe(1);
    // Boxes k 2..5 and k 3..6: overlap 4 x 4 x 3 = 48, Dice 2 * 48 / (64 + 64).
    expect(b.dice).toBe(0.75);
    expect(b.intersectionVoxels).toBe(48);
    expect(c.dice).toBeNaN();
    expect(c.trueVoxels).toBe(0);
    expect(d.dice).toBeCloseTo(spleenShiftDice, 12);
    expect(d.dice).toBeGreaterThan(0.3);
    expect(d.dice).toBeLessThan(1);
    expect(report.meanDice).toBeCloseTo((1 + 0.75 + spleenShiftDice) / 3, 12);
    expect(report.scoredCases).toBe(3);
    expect(report.emptyLabelCases).toBe(1);
    expect(report.failedCases).toBe(0);
    // 64 voxels of 2 x 2 x 3 mm = 768 mm^3 = 0.768 mL.
    expect(a.predictedVolumeMl).toBeCloseTo(0.768, 12);
    expect(a.trueVolumeMl).toBeCloseTo(0.768, 12);
    expect(c.predictedVolumeMl).toBeCloseTo(0.768, 12);
    expect(d.trueVolumeMl).toBeCloseTo((spleenCount * 12) / 1000, 12);
    expect(report.cases.every((x) => x.warnings.length === 0)).toBe(true);
  });

  it('writes a CSV and a JSON report (nan / null for the empty label) and a preview per case', async () => {
    const segmenter = new ScriptedSegmenter([box(2), box(3), box(2), shifted]);
    const previewDir = path.join(root, 'previews');
    const report = await evaluateSegmentations({ imagesDir: images, labelsDir: labels, segmenter, previewDir });
    const files = await writeEvaluationReport(path.join(root, 'out', 'report.json'), report, { model: 'stand-in' });
    expect(files).toEqual({ csv: path.join(root, 'out', 'report.csv'), json: path.join(root, 'out', 'report.json') });
    const rows = (await readFile(files.csv, 'utf8')).trim().split('\n').map((r) => r.split(','));
    expect(rows[0].slice(0, 4)).toEqual(['name', 'dice', 'predicted_volume_ml', 'true_volume_ml']);
    expect(rows.slice(1).map((r) => [r[0], r[1]])).toEqual([['case_a', '1'], ['case_b', '0.75'], ['case_c', 'nan'], ['case_d', String(Math.round(spleenShiftDice * 1e6) / 1e6)]]);
    const json = JSON.parse(await readFile(files.json, 'utf8'));
    expect(json.model).toBe('stand-in');
    expect(json.cases[2].dice).toBeNull();
    expect(json.meanDice).toBeCloseTo(report.meanDice, 12);
    expect((await readdir(previewDir)).sort()).toEqual(['case_a.png', 'case_b.png', 'case_c.png', 'case_d.png']);
    const png = await readFile(path.join(previewDir, 'case_b.png'));
    expect(Array.from(png.subarray(1, 4))).toEqual([0x50, 0x4e, 0x47]);
    // No temporary files left next to the report.
    expect((await readdir(path.join(root, 'out'))).sort()).toEqual(['report.csv', 'report.json']);
  });

  it('records a shape mismatch as that case failing and scores the others', async () => {
    const dir = await mkdtemp(path.join(root, 'mismatch-'));
    await mkdir(path.join(dir, 'images'));
    await mkdir(path.join(dir, 'labels'));
    await writeNifti(path.join(dir, 'images', 'good.nii.gz'), imageFor(1), { datatype: 'int16' });
    await writeNifti(path.join(dir, 'labels', 'good.nii.gz'), asVolume(phantom.image, box(2)), { datatype: 'uint8' });
    await writeNifti(path.join(dir, 'images', 'wrong.nii.gz'), imageFor(2), { datatype: 'int16' });
    const small = { data: new Float32Array(8), shape: [2, 2, 2] as Shape3, spacingMm: SPACING, affine: phantom.image.affine };
    await writeNifti(path.join(dir, 'labels', 'wrong.nii.gz'), small, { datatype: 'uint8' });
    const report = await evaluateSegmentations({ imagesDir: path.join(dir, 'images'), labelsDir: path.join(dir, 'labels'), segmenter: new ScriptedSegmenter([box(2)]) });
    expect(report.failedCases).toBe(1);
    expect(report.cases[0].dice).toBe(1);
    expect(report.cases[1].error?.code).toBe('ERR_NIFTI_INVALID');
    expect(report.cases[1].error?.message).toMatch(/shape 2x2x2 but image .* has shape 24x20x10/);
    expect(report.meanDice).toBe(1);
    expect(formatEvaluationCsv(report)).toMatch(/wrong,nan,.*ERR_NIFTI_INVALID/);
  });

  it('names every unpaired file before segmenting anything', async () => {
    const dir = await mkdtemp(path.join(root, 'unpaired-'));
    await mkdir(path.join(dir, 'images'));
    await mkdir(path.join(dir, 'labels'));
    const bytes = encodeNifti(imageFor(1), { datatype: 'int16' });
    await writeFile(path.join(dir, 'images', 'spleen_1.nii'), bytes);
    await writeFile(path.join(dir, 'images', 'spleen_2.nii'), bytes);
    await writeFile(path.join(dir, 'labels', 'spleen_2.nii'), bytes);
    await writeFile(path.join(dir, 'labels', 'spleen_2_seg.nii'), bytes);
    const segmenter = new ScriptedSegmenter([]);
    const error = await evaluateSegmentations({ imagesDir: path.join(dir, 'images'), labelsDir: path.join(dir, 'labels'), segmenter }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpleenTrtError);
    expect((error as SpleenTrtError).code).toBe('ERR_FILE_NOT_FOUND');
    expect((error as SpleenTrtError).message).toMatch(/1 image\(s\) without a label .*: spleen_1; 1 label\(s\) without an image .*: spleen_2_seg/);
    expect(segmenter.calls).toEqual([]);

    await writeFile(path.join(dir, 'labels', 'spleen_1.nii.gz'), bytes);
    await writeFile(path.join(dir, 'labels', 'spleen_1.nii'), bytes);
    await expect(pairCases(path.join(dir, 'images'), path.join(dir, 'labels'))).rejects.toThrow(/two files for case "spleen_1"/);
    await expect(pairCases(path.join(dir, 'nowhere'), path.join(dir, 'labels'))).rejects.toThrow(/Images directory not found/);
  });

  it('rejects a missing segmenter as a caller mistake', async () => {
    await expect(evaluateSegmentations({ imagesDir: images, labelsDir: labels, segmenter: {} as SegmenterLike })).rejects.toThrow(TypeError);
  });
});
