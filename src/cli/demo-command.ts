/**
 * `spleen-trt demo`: the whole job on the embedded default model and a generated sample CT, so a
 * fresh install can be checked with one command and no data.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makePhantom, writeNifti } from '../index.js';
import { inferCommand } from './infer-command.js';

export const DEMO_USAGE = `Usage: spleen-trt demo [-o <dir>] [--json]

Generates a synthetic abdominal CT (256x256x60 at 0.8x0.8x5 mm, LPS int16 like a converted DICOM
series), writes it to <dir>/sample_ct.nii.gz with its ground-truth spleen label, then runs
'infer' on it with the embedded default model, with a preview PNG (<dir>/preview.png) of three
slices through the mask.`;

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
  const phantom = makePhantom({ seed: 1 });
  const input = path.join(outputDir, 'sample_ct.nii.gz');
  await writeNifti(input, phantom.image, { datatype: 'int16' });
  await writeNifti(path.join(outputDir, 'sample_label.nii.gz'), { ...phantom.label, data: Float32Array.from(phantom.label.data) }, { datatype: 'uint8' });
  if (!values.json) process.stderr.write(`sample CT: ${input} (ground truth: sample_label.nii.gz)\n`);
  const preview = path.join(outputDir, 'preview.png');
  return inferCommand([input, '-o', outputDir, '--preview', preview, ...(values.json ? ['--json'] : [])]);
}
