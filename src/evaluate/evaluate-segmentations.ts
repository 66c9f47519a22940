/**
 * Accuracy on a labelled set: pairs images with labels by file name, segments each image, and
 * scores the mask against its label on the image's own grid (the bundle's metric, spec section 8),
 * with the predicted and true spleen volumes. One failing case is recorded and the rest still run.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { expectedType, SpleenTrtError, throwIfAborted } from '../errors.js';
import { readNifti } from '../nifti/read-nifti.js';
import type { LabelVolume, PipelineRunOptions } from '../segment-volume.js';
import { PREDICTION_COLOR, REFERENCE_COLOR, writePreviewPng } from '../preview/render-preview.js';
import { summarizeMask } from '../volume/mask-summary.js';
import type { Shape3, Vec3, Volume } from '../volume/volume.js';
import { diceCounts, diceFromCounts, meanDice } from './dice.js';

/** What evaluate needs from a segmenter (a Segmenter, or a stand-in in tests). */
export interface SegmenterLike {
  segment(volume: Volume, options?: PipelineRunOptions): Promise<{ mask: LabelVolume }>;
}

/** An image and the label with the same case name. */
export interface CasePair {
  name: string;
  image: string;
  label: string;
}

export interface EvaluationProgress {
  caseIndex: number;
  caseCount: number;
  name: string;
  stage: 'reading' | 'segmenting' | 'scoring' | 'done';
  windowsDone?: number;
  windowsTotal?: number;
}

export interface EvaluateOptions {
  imagesDir: string;
  labelsDir: string;
  segmenter: SegmenterLike;
  /** Write `<previewDir>/<name>.png` per case: label outline green, prediction red (yellow where they meet). */
  previewDir?: string;
  signal?: AbortSignal;
  onProgress?: (progress: EvaluationProgress) => void;
  /** Called once per case as soon as it is scored (or has failed). */
  onCase?: (result: EvaluationCase) => void;
}

/** One case's result. */
export interface EvaluationCase {
  name: string;
  image: string;
  label: string;
  /** Foreground Dice; NaN when the label is empty (or the case failed). */
  dice: number;
  predictedVoxels: number;
  trueVoxels: number;
  intersectionVoxels: number;
  predictedVolumeMl: number;
  trueVolumeMl: number;
  shape?: Shape3;
  spacingMm?: Vec3;
  totalMs: number;
  preview?: string;
  warnings: string[];
  error?: { code: string; message: string };
}

export interface EvaluationReport {
  /** Mean Dice over the cases with a finite Dice; NaN when there are none. */
  meanDice: number;
  /** Cases in the mean. */
  scoredCases: number;
  /** Cases with an empty label (Dice NaN, skipped in the mean). */
  emptyLabelCases: number;
  failedCases: number;
  cases: EvaluationCase[];
}

const NIFTI_NAME = /\.nii(\.gz)?$/i;

/** The case name of a NIfTI file: its name without .nii / .nii.gz. */
export function niftiCaseName(file: string): string {
  return path.basename(file).replace(NIFTI_NAME, '');
}

async function listNifti(dir: string, what: string): Promise<Map<string, string>> {
  const info = await stat(dir).catch(() => null);
  if (!info) throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `${what} directory not found: ${dir}`);
  if (!info.isDirectory()) throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `${what} path is not a directory: ${dir}`);
  const byName = new Map<string, string>();
  // Hidden files are skipped: archives made on macOS carry "._name.nii.gz" resource forks (the
  // MSD Task09 tarball among them) that are not images.
  const names = (await readdir(dir)).filter((n) => NIFTI_NAME.test(n) && !n.startsWith('.')).sort();
  for (const name of names) {
    const key = niftiCaseName(name);
    const previous = byName.get(key);
    if (previous) {
      throw new SpleenTrtError('ERR_NIFTI_INVALID', `${what} directory ${dir} holds two files for case "${key}": ${path.basename(previous)} and ${name}`);
    }
    byName.set(key, path.join(dir, name));
  }
  return byName;
}

function listSome(names: string[]): string {
  return names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`;
}

/**
 * Pairs every image with the label of the same case name (`x.nii.gz` with `x.nii.gz` or `x.nii`).
 * An image without a label, or a label without an image, is an error naming them all.
 */
export async function pairCases(imagesDir: string, labelsDir: string): Promise<CasePair[]> {
  if (typeof imagesDir !== 'string' || imagesDir === '') throw expectedType('a directory path', 'imagesDir', imagesDir);
  if (typeof labelsDir !== 'string' || labelsDir === '') throw expectedType('a directory path', 'labelsDir', labelsDir);
  const images = await listNifti(imagesDir, 'Images');
  const labels = await listNifti(labelsDir, 'Labels');
  if (images.size === 0) throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `No .nii or .nii.gz files in images directory ${imagesDir}`);
  const noLabel = [...images.keys()].filter((name) => !labels.has(name));
  const noImage = [...labels.keys()].filter((name) => !images.has(name));
  if (noLabel.length > 0 || noImage.length > 0) {
    const parts = [];
    if (noLabel.length > 0) parts.push(`${noLabel.length} image(s) without a label in ${labelsDir}: ${listSome(noLabel)}`);
    if (noImage.length > 0) parts.push(`${noImage.length} label(s) without an image in ${imagesDir}: ${listSome(noImage)}`);
    throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `Images and labels do not pair up by file name: ${parts.join('; ')}`);
  }
  return [...images.keys()].map((name) => ({ name, image: images.get(name)!, label: labels.get(name)! }));
}

/** Label voxels at or above 0.5 are spleen (labels store 0 and 1; float storage is tolerated). */
function labelMask(volume: Volume): Uint8Array {
  const mask = new Uint8Array(volume.data.length);
  for (let n = 0; n < mask.length; n++) mask[n] = volume.data[n] >= 0.5 ? 1 : 0;
  return mask;
}

function maxAbsDifference(a: Float64Array, b: Float64Array): number {
  let max = 0;
  for (let n = 0; n < 12; n++) max = Math.max(max, Math.abs(a[n] - b[n]));
  return max;
}

/** Tolerance on label-vs-image affine differences before a warning (float32 storage of srow). */
const AFFINE_TOLERANCE_MM = 1e-3;

async function evaluateCase(pair: CasePair, index: number, count: number, options: EvaluateOptions): Promise<EvaluationCase> {
  const started = performance.now();
  const progress = (stage: EvaluationProgress['stage'], extra: Partial<EvaluationProgress> = {}) =>
    options.onProgress?.({ caseIndex: index, caseCount: count, name: pair.name, stage, ...extra });
  const result: EvaluationCase = {
    ...pair, dice: NaN, predictedVoxels: 0, trueVoxels: 0, intersectionVoxels: 0, predictedVolumeMl: 0, trueVolumeMl: 0, totalMs: 0, warnings: [],
  };
  progress('reading');
  const { volume } = await readNifti(pair.image);
  const label = (await readNifti(pair.label)).volume;
  if (label.shape.some((n, axis) => n !== volume.shape[axis])) {
    throw new SpleenTrtError(
      'ERR_NIFTI_INVALID',
      `Label ${pair.label} has shape ${label.shape.join('x')} but image ${pair.image} has shape ${volume.shape.join('x')}; the metric needs both on one grid`,
    );
  }
  const affineGap = maxAbsDifference(volume.affine, label.affine);
  if (affineGap > AFFINE_TOLERANCE_MM) {
    result.warnings.push(`label affine differs from the image's by up to ${affineGap.toPrecision(3)} (voxel-wise comparison used)`);
  }
  const reference = labelMask(label);
  throwIfAborted(options.signal);

  progress('segmenting');
  const { mask } = await options.segmenter.segment(volume, {
    signal: options.signal,
    onProgress: (p) => {
      if (p.stage === 'network') progress('segmenting', { windowsDone: p.windowsDone, windowsTotal: p.windowsTotal });
    },
  });
  if (mask.data.length !== reference.length) {
    throw new SpleenTrtError('ERR_INFERENCE_FAILED', `The segmentation of ${pair.image} has ${mask.data.length} voxels, the image ${reference.length}`);
  }

  progress('scoring');
  const counts = diceCounts(mask.data, reference);
  const predicted = summarizeMask(mask.data, volume.shape, volume.affine);
  const truth = summarizeMask(reference, label.shape, label.affine);
  Object.assign(result, {
    dice: diceFromCounts(counts),
    predictedVoxels: counts.predicted,
    trueVoxels: counts.reference,
    intersectionVoxels: counts.intersection,
    predictedVolumeMl: predicted.volumeMl,
    trueVolumeMl: truth.volumeMl,
    shape: volume.shape,
    spacingMm: volume.spacingMm,
  });
  if (options.previewDir) {
    const file = path.join(options.previewDir, `${pair.name}.png`);
    await writePreviewPng(file, volume, [
      { mask: reference, color: REFERENCE_COLOR },
      { mask: mask.data, color: PREDICTION_COLOR },
    ]);
    result.preview = file;
  }
  result.totalMs = performance.now() - started;
  progress('done');
  return result;
}

/**
 * Segments every paired image and scores it against its label.
 * @example
 * await using segmenter = await Segmenter.create();
 * const report = await evaluateSegmentations({ imagesDir: 'images', labelsDir: 'labels', segmenter });
 * console.log(report.meanDice);
 */
export async function evaluateSegmentations(options: EvaluateOptions): Promise<EvaluationReport> {
  if (typeof options !== 'object' || options === null) throw expectedType('an options object', 'options', options);
  if (typeof options.segmenter?.segment !== 'function') throw expectedType('an object with segment()', 'options.segmenter', options.segmenter);
  if (options.previewDir !== undefined && (typeof options.previewDir !== 'string' || options.previewDir === '')) {
    throw expectedType('a directory path', 'options.previewDir', options.previewDir);
  }
  const pairs = await pairCases(options.imagesDir, options.labelsDir);
  if (options.previewDir) {
    await mkdir(options.previewDir, { recursive: true });
  }
  const cases: EvaluationCase[] = [];
  for (const [index, pair] of pairs.entries()) {
    throwIfAborted(options.signal);
    const started = performance.now();
    let result: EvaluationCase;
    try {
      result = await evaluateCase(pair, index, pairs.length, options);
    } catch (error) {
      // An abort ends the whole run; anything else is this case's failure.
      if (error instanceof SpleenTrtError && error.code === 'ERR_ABORTED') throw error;
      const code = error instanceof SpleenTrtError ? error.code : 'ERR_UNEXPECTED';
      result = {
        ...pair, dice: NaN, predictedVoxels: 0, trueVoxels: 0, intersectionVoxels: 0, predictedVolumeMl: 0, trueVolumeMl: 0,
        totalMs: performance.now() - started, warnings: [], error: { code, message: (error as Error).message },
      };
    }
    cases.push(result);
    options.onCase?.(result);
  }
  const scored = cases.filter((c) => !c.error);
  return {
    meanDice: meanDice(scored.map((c) => c.dice)),
    scoredCases: scored.filter((c) => Number.isFinite(c.dice)).length,
    emptyLabelCases: scored.filter((c) => c.trueVoxels === 0).length,
    failedCases: cases.length - scored.length,
    cases,
  };
}
