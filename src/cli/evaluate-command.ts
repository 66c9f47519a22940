/**
 * `spleen-trt evaluate --images <dir> --labels <dir> [-o report]`: the pipeline on every image,
 * the bundle's metric (foreground Dice on the image's grid) per case and the mean, the predicted
 * and true spleen volumes; a CSV and a JSON report. Exit 1 when any case failed.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { evaluateSegmentations, formatEvaluationJson, Segmenter, writeEvaluationReport, type EvaluationCase } from '../index.js';
import { ProgressLine } from './progress.js';
import { parseChoiceFlag, parseNumberFlag, UsageError } from './usage-error.js';

export const EVALUATE_USAGE = `Usage: spleen-trt evaluate --images <dir> --labels <dir> [-o <report>] [options]

Segments every NIfTI in --images, pairs it with the label of the same file name in --labels,
and scores it as the MONAI bundle does: foreground Dice on the image's own grid (NaN for an
empty label, left out of the mean). Writes <report>.csv and <report>.json with each case's
Dice and its predicted and true spleen volume in mL.

Options:
  --images <dir>            CT volumes (.nii, .nii.gz)
  --labels <dir>            ground-truth labels with the same file names (1 = spleen)
  -o, --output <report>     report path without extension (default: ./spleen-trt-evaluation)
  --model <dir|file.onnx>   model directory or ONNX (default: the embedded model)
  --backend <b>             auto | onnxruntime | onednn | tensorrt (default: auto)
  --threads <n>             CPU threads for onnxruntime (default: all cores)
  --preview-dir <dir>       also write <dir>/<name>.png: label outlined green, prediction red
  --json                    print the JSON report on stdout
  --verbose                 print stacks with errors`;

function describeCase(c: EvaluationCase): string {
  if (c.error) return `error ${c.error.code}: ${c.error.message}`;
  const dice = Number.isNaN(c.dice) ? 'Dice n/a (empty label)' : `Dice ${c.dice.toFixed(4)}`;
  return `${dice}, ${c.predictedVolumeMl.toFixed(1)} mL predicted / ${c.trueVolumeMl.toFixed(1)} mL true (${(c.totalMs / 1000).toFixed(1)} s)`;
}

export async function evaluateCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      images: { type: 'string' },
      labels: { type: 'string' },
      output: { type: 'string', short: 'o' },
      model: { type: 'string' },
      backend: { type: 'string' },
      threads: { type: 'string' },
      'preview-dir': { type: 'string' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${EVALUATE_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`evaluate takes no positional arguments, got "${positionals[0]}" (use --images and --labels)`);
  if (!values.images) throw new UsageError('evaluate needs --images <dir>');
  if (!values.labels) throw new UsageError('evaluate needs --labels <dir>');
  const backend = parseChoiceFlag(values.backend, '--backend', ['auto', 'onnxruntime', 'onednn', 'tensorrt'] as const);
  const threads = parseNumberFlag(values.threads, '--threads', (n) => Number.isInteger(n) && n >= 1 && n <= 1024, 'an integer >= 1');
  const output = values.output ?? 'spleen-trt-evaluation';

  const progress = new ProgressLine();
  await using segmenter = await Segmenter.create({ model: values.model, backend, threads });
  const { info } = segmenter;
  if (!values.json) {
    process.stderr.write(`model ${info.model.name} (${info.model.source}), backend ${info.backendDescription}\n`);
    if (info.model.warning) process.stderr.write(`warning: ${info.model.warning}\n`);
  }
  const report = await evaluateSegmentations({
    imagesDir: values.images,
    labelsDir: values.labels,
    segmenter,
    previewDir: values['preview-dir'],
    onProgress: (p) => {
      const label = `[${p.caseIndex + 1}/${p.caseCount}] ${p.name}`;
      progress.update(p.windowsTotal ? `${label}: network ${p.windowsDone}/${p.windowsTotal} windows` : `${label}: ${p.stage}`);
    },
    onCase: (c) => {
      progress.clear();
      const file = path.basename(c.image);
      process.stderr.write(`${file}: ${describeCase(c)}\n`);
      for (const warning of c.warnings) process.stderr.write(`${file}: warning: ${warning}\n`);
    },
  });
  const context = {
    createdAt: new Date().toISOString(),
    images: path.resolve(values.images),
    labels: path.resolve(values.labels),
    model: info.model,
    backend: info.backend,
    pipeline: info.pipeline,
  };
  const files = await writeEvaluationReport(output, report, context);
  if (values.json) {
    process.stdout.write(formatEvaluationJson(report, { ...context, files }));
  } else {
    const mean = Number.isNaN(report.meanDice) ? 'n/a' : report.meanDice.toFixed(4);
    const skipped = report.emptyLabelCases > 0 ? `, ${report.emptyLabelCases} with an empty label skipped` : '';
    const failed = report.failedCases > 0 ? `, ${report.failedCases} failed` : '';
    process.stderr.write(`mean Dice ${mean} over ${report.scoredCases} case(s)${skipped}${failed} -> ${files.csv}, ${files.json}\n`);
  }
  return report.failedCases > 0 ? 1 : 0;
}
