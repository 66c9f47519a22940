/**
 * `spleen-trt demo`: the whole job on the embedded default model and a generated sample CT, so a
 * fresh install can be checked with one command and no data. The sample comes with its ground
 * truth, so the demo also says how well the mask matches it (Dice).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { foregroundDice } from '../evaluate/dice.js';
import { makePhantom, readNifti, writeNifti, type PhantomOptions } from '../index.js';
import { caseName, inferCommand } from './infer-command.js';

/**
 * The sample: an average patient, field of view fitted to the body (as an abdominal protocol
 * would), 5 mm slices over 20 cm: 32 windows of 96^3 after resampling.
 */
export function demoPhantomOptions(): PhantomOptions {
  return { seed: 1, shape: [384, 384, 40], spacingMm: [0.9, 0.9, 5.0] };
}

export const DEMO_USAGE = `Usage: spleen-trt demo [-o <dir>] [--json]

Generates a synthetic abdominal CT (384x384x40 at 0.9x0.9x5 mm, LPS int16 like a converted DICOM
series), writes it to <dir>/sample_ct.nii.gz with its ground-truth spleen label, runs 'infer' on
it with the embedded default model and a preview PNG (<dir>/preview.png) of three slices through
the mask, then prints the Dice of the mask against the ground truth.`;

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { output: { type: 'string', short: 'o' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(`${DEMO_USAGE}\n`);
    return 0;
  }
  const outputDir = values.output ?? 'spleen-trt-demo';
  await mkdir(outputDir, { recursive: true });
  const phantom = makePhantom(demoPhantomOptions());
  const input = path.join(outputDir, 'sample_ct.nii.gz');
  await writeNifti(input, phantom.image, { datatype: 'int16' });
  await writeNifti(path.join(outputDir, 'sample_label.nii.gz'), { ...phantom.label, data: Float32Array.from(phantom.label.data) }, { datatype: 'uint8' });
  if (!values.json) process.stderr.write(`sample CT: ${input} (ground truth: sample_label.nii.gz)\n`);
  const preview = path.join(outputDir, 'preview.png');
  const code = await inferCommand([input, '-o', outputDir, '--preview', preview, ...(values.json ? ['--json'] : [])]);
  if (code !== 0 || values.json) return code;
  const name = caseName(input);
  const { volume: mask } = await readNifti(path.join(outputDir, name, `${name}_trans.nii.gz`));
  const predicted = Uint8Array.from(mask.data, (v) => (v > 0.5 ? 1 : 0));
  const dice = foregroundDice(predicted, phantom.label.data);
  process.stderr.write(`Dice against the ground truth: ${dice.toFixed(4)} (1 = identical)\n`);
  return code;
}
