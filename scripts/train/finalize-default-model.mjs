#!/usr/bin/env node
// Turns a model directory written by `spleen-trt import <model.pt>` into the embedded default's
// directory (models/spleen-phantom-demo): the manifest says what the weights are and are not, and
// keeps no paths of the machine that trained them. The ONNX file is not touched.
//   node scripts/train/finalize-default-model.mjs <model-dir> --steps <n> --best-step <n> --val-dice <x> --test-dice <x>
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { steps: { type: 'string' }, 'best-step': { type: 'string' }, 'val-dice': { type: 'string' }, 'test-dice': { type: 'string' } },
});
const [dir] = positionals;
if (!dir || !values.steps || !values['best-step'] || !values['val-dice'] || !values['test-dice']) {
  console.error('usage: finalize-default-model.mjs <model-dir> --steps <n> --best-step <n> --val-dice <x> --test-dice <x>');
  process.exit(2);
}
const file = path.join(dir, 'model.json');
const manifest = JSON.parse(readFileSync(file, 'utf8'));
const weightsSha256 = manifest.source?.weightsSha256;
manifest.name = 'spleen-phantom-demo';
manifest.version = '1.0.0';
manifest.description =
  "The MONAI spleen_ct_segmentation bundle's UNet (same architecture and pipeline), trained on synthetic " +
  `phantoms (spleen-trt phantom) by scripts/train/train_demo_model.py: ${values.steps} steps, the weights of step ` +
  `${values['best-step']} (best validation Dice ${values['val-dice']}). Mean Dice ${values['test-dice']} on 10 held-out ` +
  'phantoms through the full pipeline (spleen-trt evaluate).';
manifest.warning =
  'The embedded default model was trained on synthetic phantoms, for demonstration and testing: ' +
  'it is not for clinical CT. Run the bundle\'s real weights with --model (see spleen-trt import).';
manifest.provenance =
  'scripts/train/train_demo_model.py (40 phantoms, seed 1; validation: 3 phantoms, seed 2) -> model.pt -> ' +
  `spleen-trt import (buildUnetOnnx, BatchNorm folded); state_dict sha256 ${weightsSha256}`;
manifest.source = {
  kind: 'checkpoint',
  // The training script's output, relative: no paths of the training machine.
  path: 'model.pt',
  weightsFile: 'model.pt',
  weightsSha256,
  checkpoint: manifest.source?.checkpoint,
  importedAt: manifest.source?.importedAt,
  packageVersion: manifest.source?.packageVersion,
};
writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`wrote ${file}`);
