/**
 * `spleen-trt infer <file|dir>... -o <dir>`: the bundle's inference on each NIfTI, written as
 * `<dir>/<name>/<name>_trans.nii.gz` (the bundle's SaveImaged layout), or on a DICOM series (a
 * folder or zip; src/dicom/ reads it and writes its SEG and STL). One bad file is reported
 * and the rest still run; the exit code says whether any failed.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Segmenter, SpleenTrtError, writeNifti, type LabelVolume, type SegmentResult } from '../index.js';
import { readCaseInput } from '../dicom/read-input.js';
import type { SeriesSummary } from '../dicom/select-series.js';
import { caseOutputPaths, formatOfOutputFile, isOutputFile, writeDicomOutputs, type DicomOutputsReport } from '../dicom/write-outputs.js';
import { PREDICTION_COLOR, writePreviewPng } from '../preview/render-preview.js';
import { ProgressLine } from './progress.js';
import { parseChoiceFlag, parseNumberFlag, UsageError } from './usage-error.js';

export const INFER_USAGE = `Usage: spleen-trt infer <file|dir>... [-o <dir>] [options]

Segments the spleen in NIfTI CT volumes (.nii, .nii.gz; a directory of them means every NIfTI in
it) or in a DICOM CT series (a folder of DICOM files, any nesting, or a .zip of one).
Writes <dir>/<name>/<name>_trans.nii.gz on the input's own grid, as the MONAI bundle does; for
DICOM, <name> is series-<SeriesInstanceUID> and the SEG is <name>_seg.dcm.

Options:
  -o, --output <dir|file>     output directory (default: ./spleen-trt-output); with one input,
                              a name ending in .nii, .nii.gz or .dcm is the mask / SEG file itself
  --output-format <f>         nifti | dicom-seg | both (default: dicom-seg for DICOM input, else
                              nifti; with -o <file>, its extension)
  --stl                       also write the spleen's surface as binary STL (patient LPS mm)
  --series <uid>              the SeriesInstanceUID to read (default: the ORIGINAL/PRIMARY axial
                              CT series with the most slices)
  --model <dir|file.onnx>     model directory or ONNX (default: the embedded model)
  --backend <b>               auto | onnxruntime | tensorrt (default: auto)
  --threads <n>               CPU threads for onnxruntime (default: all cores)
  --overlap <x>               sliding-window overlap in [0, 1) (default: 0.5)
  --sw-batch-size <n>         windows per network call (default: 4)
  --mode <m>                  constant | gaussian window blending (default: constant)
  --output-dtype <t>          float32 (bundle-compatible, default) | uint8
  --save-stages               also write preprocessed.nii.gz, logits.nii.gz, probability.nii.gz
                              (next to the mask)
  --preview <png>             also write a PNG: three slices through the mask, outlined in red
                              (several inputs: <png> with _<name> before .png)
  --json                      print one JSON document with each file's result and timings
  --verbose                   print stacks with errors`;

const NIFTI_NAME = /\.nii(\.gz)?$/i;

/** The input's name as the bundle uses it: the file name without .nii / .nii.gz. */
export function caseName(file: string): string {
  return path.basename(file).replace(NIFTI_NAME, '');
}

async function expandInputs(inputs: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    const info = await stat(input).catch(() => null);
    if (info?.isDirectory()) {
      const names = (await readdir(input)).filter((n) => NIFTI_NAME.test(n)).sort();
      // A directory without NIfTI files is one DICOM input (read by src/dicom/).
      files.push(...(names.length === 0 ? [input] : names.map((n) => path.join(input, n))));
    } else {
      // Missing files are reported per file by the reader, with the other files still running.
      files.push(input);
    }
  }
  return files;
}

export interface FileReport {
  input: string;
  ok: boolean;
  output?: string;
  preview?: string;
  /** DICOM input: which series was read and why, and the SEG written. */
  dicom?: { seriesInstanceUid: string; selection: string; inventory: SeriesSummary[]; seg?: DicomOutputsReport['seg'] };
  /** --stl: the surface mesh written, its area and enclosed volume. */
  stl?: DicomOutputsReport['stl'];
  error?: { code: string; message: string };
  summary?: SegmentResult['summary'];
  windowCount?: number;
  timings?: SegmentResult['timings'] & { readMs: number; writeMs: number; totalMs: number };
}

/**
 * Writes a label mask as the bundle's SaveImaged does: float32 {0, 1} (or uint8), gzip level 1
 * (nibabel's default; on the demo mask level 6 took 3.5x longer, 50 ms, for a file 3x smaller).
 */
export async function writeMaskNifti(file: string, mask: LabelVolume, datatype: 'float32' | 'uint8' = 'float32'): Promise<void> {
  await writeNifti(file, mask, { datatype, gzipLevel: 1 });
}

/** The preview file of one input: `file` itself, or `<file stem>_<name>.png` when there are several inputs. */
function previewPath(file: string, name: string, inputs: number): string {
  return inputs === 1 ? file : file.replace(/(\.png)?$/i, `_${name}.png`);
}

async function writeStages(dir: string, result: SegmentResult): Promise<void> {
  const stages = result.stages;
  if (!stages) return;
  await writeNifti(path.join(dir, 'preprocessed.nii.gz'), stages.preprocessed);
  await writeNifti(path.join(dir, 'logits.nii.gz'), stages.logits);
  await writeNifti(path.join(dir, 'probability.nii.gz'), stages.probability);
}

export async function inferCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      model: { type: 'string' },
      backend: { type: 'string' },
      threads: { type: 'string' },
      overlap: { type: 'string' },
      'sw-batch-size': { type: 'string' },
      mode: { type: 'string' },
      'output-dtype': { type: 'string' },
      'save-stages': { type: 'boolean' },
      'output-format': { type: 'string' },
      stl: { type: 'boolean' },
      series: { type: 'string' },
      preview: { type: 'string' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${INFER_USAGE}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('infer needs at least one input file or directory');
  const backend = parseChoiceFlag(values.backend, '--backend', ['auto', 'onnxruntime', 'tensorrt'] as const);
  const mode = parseChoiceFlag(values.mode, '--mode', ['constant', 'gaussian'] as const);
  const outputDtype = parseChoiceFlag(values['output-dtype'], '--output-dtype', ['float32', 'uint8'] as const) ?? 'float32';
  const threads = parseNumberFlag(values.threads, '--threads', (n) => Number.isInteger(n) && n >= 1 && n <= 1024, 'an integer >= 1');
  const overlap = parseNumberFlag(values.overlap, '--overlap', (n) => n >= 0 && n < 1, 'a number in [0, 1)');
  const swBatchSize = parseNumberFlag(values['sw-batch-size'], '--sw-batch-size', (n) => Number.isInteger(n) && n >= 1 && n <= 64, 'an integer in 1..64');
  const outputDir = values.output ?? 'spleen-trt-output';
  const files = await expandInputs(positionals);
  // `-o mask.nii.gz` with one input names the mask file itself; otherwise -o is a directory.
  const outputFile = isOutputFile(outputDir) ? outputDir : undefined;
  const outputFormat = parseChoiceFlag(values['output-format'], '--output-format', ['nifti', 'dicom-seg', 'both'] as const) ?? (outputFile ? formatOfOutputFile(outputFile) : undefined);
  if (outputFormat && outputFormat !== 'nifti' && files.some((f) => NIFTI_NAME.test(f))) {
    throw new UsageError(`--output-format ${outputFormat} needs DICOM inputs: a SEG references the source images`);
  }
  if (outputFile && files.length !== 1) {
    throw new UsageError(`-o ${outputDir} names one file, but there are ${files.length} inputs: give a directory`);
  }

  const progress = new ProgressLine();
  await using segmenter = await Segmenter.create({ model: values.model, backend, threads, overlap, swBatchSize, mode });
  if (!values.json) {
    const { info } = segmenter;
    process.stderr.write(`model ${info.model.name} (${info.model.source}), backend ${info.backendDescription}\n`);
    if (info.model.warning) process.stderr.write(`warning: ${info.model.warning}\n`);
  }

  const reports: FileReport[] = [];
  for (const [index, file] of files.entries()) {
    const label = `[${index + 1}/${files.length}] ${path.basename(file)}`;
    const started = performance.now();
    try {
      progress.update(`${label}: reading`);
      const input = await readCaseInput(file, { seriesUid: values.series });
      const { volume } = input;
      if (input.dicom && !values.json) process.stderr.write(`${label}: read ${input.dicom.selectionReason}\n`);
      const readMs = performance.now() - started;
      const result = await segmenter.segment(volume, {
        keepStages: values['save-stages'],
        onProgress: (p) => progress.update(p.stage === 'network' ? `${label}: network ${p.windowsDone}/${p.windowsTotal} windows` : `${label}: ${p.stage}`),
      });
      progress.update(`${label}: writing`);
      const writeStarted = performance.now();
      const name = input.name ?? caseName(file);
      const caseDir = outputFile ? path.dirname(outputFile) : path.join(outputDir, name);
      const paths = caseOutputPaths(caseDir, name, outputFile);
      const format = outputFormat ?? (input.dicom ? 'dicom-seg' : 'nifti');
      await mkdir(caseDir, { recursive: true });
      const dicomOutputs = await writeDicomOutputs({
        mask: result.mask,
        paths,
        series: format === 'nifti' ? undefined : input.dicom,
        stl: values.stl === true,
        model: segmenter.manifest,
      });
      const output = format === 'dicom-seg' ? paths.seg : paths.nifti;
      if (format !== 'dicom-seg') await writeMaskNifti(paths.nifti, result.mask, outputDtype);
      await writeStages(caseDir, result);
      const preview = values.preview ? previewPath(values.preview, name, files.length) : undefined;
      if (preview) await writePreviewPng(preview, volume, [{ mask: result.mask.data, color: PREDICTION_COLOR }]);
      const writeMs = performance.now() - writeStarted;
      const totalMs = performance.now() - started;
      progress.clear();
      const dicom = input.dicom && { seriesInstanceUid: input.dicom.seriesInstanceUid, selection: input.dicom.selectionReason, inventory: input.dicom.inventory, seg: dicomOutputs.seg };
      reports.push({ input: file, ok: true, output, preview, dicom, stl: dicomOutputs.stl, summary: result.summary, windowCount: result.windowCount, timings: { ...result.timings, readMs, writeMs, totalMs } });
      if (!values.json) {
        const s = result.summary;
        const where = s.empty ? 'no spleen found' : `${s.volumeMl.toFixed(1)} mL, ${s.voxelCount} voxels`;
        process.stderr.write(`${label}: ${where} -> ${output} (${(totalMs / 1000).toFixed(2)} s)\n`);
        const seg = dicomOutputs.seg;
        if (seg && seg.path !== output) process.stderr.write(`${label}: DICOM SEG (${seg.frames} frames) -> ${seg.path}\n`);
        const stl = dicomOutputs.stl;
        if (stl) process.stderr.write(`${label}: surface ${stl.surfaceAreaMm2.toFixed(0)} mm^2, ${stl.volumeMl.toFixed(1)} mL enclosed -> ${stl.path}\n`);
      }
    } catch (error) {
      progress.clear();
      const code = error instanceof SpleenTrtError ? error.code : 'ERR_UNEXPECTED';
      const message = (error as Error).message;
      reports.push({ input: file, ok: false, error: { code, message } });
      process.stderr.write(`${label}: error ${code}: ${message}\n`);
      if (values.verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    }
  }
  if (values.json) {
    const { info } = segmenter;
    process.stdout.write(`${JSON.stringify({ backend: info.backend, model: info.model, pipeline: info.pipeline, files: reports }, null, 2)}\n`);
  }
  return reports.every((r) => r.ok) ? 0 : 1;
}
