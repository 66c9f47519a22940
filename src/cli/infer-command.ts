/**
 * `spleen-trt infer <file|dir>... -o <dir>`: the bundle's inference on each NIfTI, written as
 * `<dir>/<name>/<name>_trans.nii.gz` (the bundle's SaveImaged layout). One bad file is reported
 * and the rest still run; the exit code says whether any failed.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { errorCode } from '../errors.js';
import { readNifti, Segmenter, writeNifti, type LabelVolume, type SegmentResult, type Volume } from '../index.js';
import { writeError } from '../write-file-atomic.js';
import { expandInputs, NIFTI_NAME } from './infer-inputs.js';
import { OutputUnit, planOutputs, type CaseOutputs } from './infer-outputs.js';
import { PREDICTION_COLOR, writePreviewPng } from '../preview/render-preview.js';
import { ProgressLine } from './progress.js';
import { joinNegativeNumbers, parseChoiceFlag, parseNumberFlag, UsageError } from './usage-error.js';
import { MAX_OVERLAP } from '../segmenter.js';
import { readAhead, readAheadWanted } from './read-ahead.js';

export const INFER_USAGE = `Usage: spleen-trt infer <file|dir>... [-o <dir>] [options]

Segments the spleen in NIfTI CT volumes (.nii, .nii.gz; a directory means every NIfTI in it).
Writes <dir>/<name>/<name>_trans.nii.gz on the input's own grid, as the MONAI bundle does.

Options:
  -o, --output <dir|file>     output directory (default: ./spleen-trt-output); with one input,
                              a name ending in .nii or .nii.gz is the mask file itself
  --model <dir|file.onnx>     model directory or ONNX (default: the embedded model)
  --backend <b>               auto | onnxruntime | tensorrt (default: auto)
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

/** Writes one case's files as a unit (infer-outputs.ts): all of them, or none and no new directory. */
async function writeCase(plan: CaseOutputs, volume: Volume, result: SegmentResult, outputDtype: 'float32' | 'uint8'): Promise<void> {
  const unit = new OutputUnit(plan.caseDir);
  try {
    await unit.open();
    await writeMaskNifti(unit.stage(plan.mask), result.mask, outputDtype);
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
      await writePreviewPng(unit.stage(plan.preview), volume, [{ mask: result.mask.data, color: PREDICTION_COLOR }]);
    }
    await unit.commit();
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
  const threads = parseNumberFlag(values.threads, '--threads', (n) => Number.isInteger(n) && n >= 1 && n <= 1024, 'an integer in 1..1024');
  const overlap = parseNumberFlag(values.overlap, '--overlap', (n) => n >= 0 && n <= MAX_OVERLAP, `a number in [0, ${MAX_OVERLAP}]`);
  const swBatchSize = parseNumberFlag(values['sw-batch-size'], '--sw-batch-size', (n) => Number.isInteger(n) && n >= 1 && n <= 64, 'an integer in 1..64');
  const outputDir = values.output ?? 'spleen-trt-output';
  const inputs = await expandInputs(positionals);
  const files = inputs.map((i) => i.file);
  // `-o mask.nii.gz` with one input names the mask file itself; otherwise -o is a directory.
  const outputFile = NIFTI_NAME.test(outputDir) ? outputDir : undefined;
  if (outputFile && files.length !== 1) {
    throw new UsageError(`-o ${outputDir} names one file, but there are ${files.length} inputs: give a directory`);
  }
  if (inputs.every((i) => 'error' in i)) throw new UsageError(inputs.map((i) => ('error' in i ? i.error.message : '')).join('; '));
  // Before anything runs: unique case names, and no output that is an input.
  const plans = planOutputs(files, { outputDir, outputFile, saveStages: values['save-stages'] === true, preview: values.preview });

  const progress = new ProgressLine();
  await using segmenter = await Segmenter.create({ model: values.model, backend, threads, overlap, swBatchSize, mode });
  if (!values.json) {
    const { info } = segmenter;
    process.stderr.write(`model ${info.model.name} (${info.model.source}), backend ${info.backendDescription}\n`);
    if (info.model.warning) process.stderr.write(`warning: ${info.model.warning}\n`);
  }

  const reports: FileReport[] = [];
  // The next file is read while this one is in the network where that helps (read-ahead.ts).
  const reader = readAhead(readAheadWanted(segmenter.info.backend), async (file: string) => (await readNifti(file)).volume);
  for (const [index, file] of files.entries()) {
    const label = `[${index + 1}/${files.length}] ${path.basename(file)}`;
    const started = performance.now();
    const plan = plans[index];
    try {
      const early = inputs[index];
      if ('error' in early) throw early.error;
      progress.update(`${label}: reading`);
      const volume = await reader.read(file);
      const readMs = performance.now() - started;
      const next = index + 1 < files.length && !('error' in inputs[index + 1]) ? files[index + 1] : undefined;
      if (next !== undefined) reader.prefetch(next);
      const result = await segmenter.segment(volume, {
        keepStages: values['save-stages'],
        onProgress: (p) => progress.update(p.stage === 'network' ? `${label}: network ${p.windowsDone}/${p.windowsTotal} windows` : `${label}: ${p.stage}`),
      });
      progress.update(`${label}: writing`);
      const writeStarted = performance.now();
      await writeCase(plan, volume, result, outputDtype);
      const output = plan.mask;
      const preview = plan.preview;
      const writeMs = performance.now() - writeStarted;
      const totalMs = performance.now() - started;
      progress.clear();
      reports.push({ input: file, ok: true, output, preview, summary: result.summary, windowCount: result.windowCount, timings: { ...result.timings, readMs, writeMs, totalMs } });
      if (!values.json) {
        const s = result.summary;
        const where = s.empty ? 'no spleen found' : `${s.volumeMl.toFixed(1)} mL, ${s.voxelCount} voxels`;
        process.stderr.write(`${label}: ${where} -> ${output} (${(totalMs / 1000).toFixed(2)} s)\n`);
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
