/**
 * `spleen-trt infer <file|dir>... -o <dir>`: the bundle's inference on each NIfTI, written as
 * `<dir>/<name>/<name>_trans.nii.gz` (the bundle's SaveImaged layout), or on a DICOM series (a
 * folder or zip; src/dicom/ reads it and writes its SEG and STL). One bad file is reported
 * and the rest still run; the exit code says whether any failed. Output names and the
 * write-all-or-nothing rule of each case live in infer-outputs.ts.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { errorCode } from '../errors.js';
import { Segmenter, writeNifti, type LabelVolume, type SegmentResult } from '../index.js';
import { readCaseInput, type CaseInput } from '../dicom/read-input.js';
import type { SeriesSummary } from '../dicom/select-series.js';
import { writeDicomOutputs, type DicomOutputsReport, type OutputFormat } from '../dicom/write-outputs.js';
import { writeError } from '../write-file-atomic.js';
import { expandInputs, NIFTI_NAME } from './infer-inputs.js';
import { formatOfOutputFile, isOutputFile, OutputPlan, OutputUnit, type CaseOutputs } from './infer-outputs.js';
import { PREDICTION_COLOR, writePreviewPng } from '../preview/render-preview.js';
import { ProgressLine } from './progress.js';
import { joinNegativeNumbers, parseChoiceFlag, parseNumberFlag, UsageError } from './usage-error.js';
import { MAX_OVERLAP } from '../segmenter.js';
import { readAhead, readAheadWanted } from '../io/read-ahead.js';

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
  --backend <b>               auto | onnxruntime | onednn | tensorrt (default: auto)
  --threads <n>               CPU threads for onnxruntime (default: all cores)
  --overlap <x>               sliding-window overlap in [0, 0.9] (default: 0.5)
  --sw-batch-size <n>         windows per network call (default: 4)
  --mode <m>                  constant | gaussian window blending (default: constant)
  --output-dtype <t>          float32 (bundle-compatible, default) | uint8
  --save-stages               also write preprocessed.nii.gz, logits.nii.gz, probability.nii.gz
                              (next to the mask)
  --preview <png>             also write a PNG: three slices through the mask, outlined in red
                              (several inputs: <png> with _<name> before .png)
  --json                      print one JSON document with each file's result and timings
  --verbose                   print stacks with errors`;

export { caseName } from './infer-outputs.js';

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

interface CaseWriteOptions {
  format: OutputFormat;
  stl: boolean;
  outputDtype: 'float32' | 'uint8';
  model: Segmenter['manifest'];
}

/**
 * Writes one case's files as a unit (infer-outputs.ts): the mask and/or SEG, the STL, the stages and
 * the preview, all of them or none and no new directory. Returns the main output and the DICOM side.
 */
async function writeCase(plan: CaseOutputs, input: CaseInput, result: SegmentResult, options: CaseWriteOptions): Promise<{ output: string; dicom: DicomOutputsReport }> {
  const unit = new OutputUnit(plan.caseDir);
  try {
    await unit.open();
    const dicom = await writeDicomOutputs({
      mask: result.mask,
      paths: plan,
      series: options.format === 'nifti' ? undefined : input.dicom,
      stl: options.stl,
      model: options.model,
      stage: (final) => unit.stage(final),
    });
    if (options.format !== 'dicom-seg') await writeMaskNifti(unit.stage(plan.mask), result.mask, options.outputDtype);
    const stages = result.stages;
    if (plan.stages && stages) {
      await writeNifti(unit.stage(plan.stages['preprocessed.nii.gz']), stages.preprocessed);
      await writeNifti(unit.stage(plan.stages['logits.nii.gz']), stages.logits);
      await writeNifti(unit.stage(plan.stages['probability.nii.gz']), stages.probability);
    }
    if (plan.preview) {
      await mkdir(path.dirname(plan.preview), { recursive: true }).catch((error: unknown) => {
        throw writeError(error, plan.preview!);
      });
      await writePreviewPng(unit.stage(plan.preview), input.volume, [{ mask: result.mask.data, color: PREDICTION_COLOR }]);
    }
    await unit.commit();
    return { output: options.format === 'dicom-seg' ? plan.seg : plan.mask, dicom };
  } catch (error) {
    await unit.abort();
    throw writeError(error, plan.caseDir);
  }
}

export async function inferCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinNegativeNumbers(argv, ['--threads', '--overlap', '--sw-batch-size']),
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
  const backend = parseChoiceFlag(values.backend, '--backend', ['auto', 'onnxruntime', 'onednn', 'tensorrt'] as const);
  const mode = parseChoiceFlag(values.mode, '--mode', ['constant', 'gaussian'] as const);
  const outputDtype = parseChoiceFlag(values['output-dtype'], '--output-dtype', ['float32', 'uint8'] as const) ?? 'float32';
  const threads = parseNumberFlag(values.threads, '--threads', (n) => Number.isInteger(n) && n >= 1 && n <= 1024, 'an integer in 1..1024');
  const overlap = parseNumberFlag(values.overlap, '--overlap', (n) => n >= 0 && n <= MAX_OVERLAP, `a number in [0, ${MAX_OVERLAP}]`);
  const swBatchSize = parseNumberFlag(values['sw-batch-size'], '--sw-batch-size', (n) => Number.isInteger(n) && n >= 1 && n <= 64, 'an integer in 1..64');
  const outputDir = values.output ?? 'spleen-trt-output';
  const inputs = await expandInputs(positionals);
  const files = inputs.map((i) => i.file);
  // `-o mask.nii.gz` (or `-o seg.dcm`) with one input names that file; otherwise -o is a directory.
  const outputFile = isOutputFile(outputDir) ? outputDir : undefined;
  const outputFormat = parseChoiceFlag(values['output-format'], '--output-format', ['nifti', 'dicom-seg', 'both'] as const) ?? (outputFile ? formatOfOutputFile(outputFile) : undefined);
  if (outputFormat && outputFormat !== 'nifti' && files.some((f) => NIFTI_NAME.test(f))) {
    throw new UsageError(`--output-format ${outputFormat} needs DICOM inputs: a SEG references the source images`);
  }
  if (outputFile && files.length !== 1) {
    throw new UsageError(`-o ${outputDir} names one file, but there are ${files.length} inputs: give a directory`);
  }
  if (inputs.every((i) => 'error' in i)) throw new UsageError(inputs.map((i) => ('error' in i ? i.error.message : '')).join('; '));
  // Before anything runs: unique case names, and no output that is an input.
  const plan = new OutputPlan(files, { outputDir, outputFile, saveStages: values['save-stages'] === true, preview: values.preview });

  const progress = new ProgressLine();
  await using segmenter = await Segmenter.create({ model: values.model, backend, threads, overlap, swBatchSize, mode });
  if (!values.json) {
    const { info } = segmenter;
    process.stderr.write(`model ${info.model.name} (${info.model.source}), backend ${info.backendDescription}\n`);
    if (info.model.warning) process.stderr.write(`warning: ${info.model.warning}\n`);
  }

  const reports: FileReport[] = [];
  // The next file is read while this one is in the network where that helps (read-ahead.ts).
  const reader = readAhead(readAheadWanted(segmenter.info.backend), (file: string) => readCaseInput(file, { seriesUid: values.series }));
  for (const [index, file] of files.entries()) {
    const label = `[${index + 1}/${files.length}] ${path.basename(file)}`;
    const started = performance.now();
    try {
      const early = inputs[index];
      if ('error' in early) throw early.error;
      progress.update(`${label}: reading`);
      const input = await reader.read(file);
      if (input.dicom && !values.json) process.stderr.write(`${label}: read ${input.dicom.selectionReason}\n`);
      // A DICOM case is named from its series UID (never a file or patient name), known only now.
      const casePlan = input.name === undefined ? plan.cases[index] : plan.bindCaseName(index, input.name);
      const readMs = performance.now() - started;
      const next = index + 1 < files.length && !('error' in inputs[index + 1]) ? files[index + 1] : undefined;
      if (next !== undefined) reader.prefetch(next);
      const result = await segmenter.segment(input.volume, {
        keepStages: values['save-stages'],
        onProgress: (p) => progress.update(p.stage === 'network' ? `${label}: network ${p.windowsDone}/${p.windowsTotal} windows` : `${label}: ${p.stage}`),
      });
      progress.update(`${label}: writing`);
      const writeStarted = performance.now();
      const format = outputFormat ?? (input.dicom ? 'dicom-seg' : 'nifti');
      const { output, dicom: dicomOutputs } = await writeCase(casePlan, input, result, { format, stl: values.stl === true, outputDtype, model: segmenter.manifest });
      const preview = casePlan.preview;
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
      const code = errorCode(error);
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
