/**
 * `spleen-trt import <bundle-dir | model.pt | model.onnx> -o <model-dir>`: writes a model directory
 * (model.onnx with a dynamic batch + model.json) from what the MONAI model zoo hands out.
 */
import { parseArgs } from 'node:util';
import { importModel, type UnetConfig } from '../index.js';
import { parseNumberFlag, UsageError } from './usage-error.js';

export const IMPORT_USAGE = `Usage: spleen-trt import <bundle-dir | model.pt | model.onnx> -o <model-dir> [options]

Converts a MONAI bundle (its configs/ and models/model.pt), a torch.save checkpoint of the UNet's
state_dict, or an ONNX export (onnx_export or trt_export --use_onnx) into a model directory:
model.onnx (dynamic batch) and model.json (pipeline parameters, labels, sha256, provenance).
Run it with: spleen-trt infer --model <model-dir> <ct.nii.gz>

Options:
  -o, --output <dir>          model directory to write (must be new or empty, see --overwrite)
  --name <name>               model name in model.json (default: the bundle's name or file stem)
  --overwrite                 replace an existing model directory
  --json                      print the written manifest as JSON
  --verbose                   print stacks with errors

A bare checkpoint (not a bundle directory) is read as the spleen bundle's UNet unless given:
  --channels <c,c,...>        e.g. 16,32,64,128,256
  --strides <s,s,...>         e.g. 2,2,2,2 (default: 2 per level)
  --num-res-units <n>         e.g. 2
  --out-channels <n>          e.g. 2`;

function parseList(value: string | undefined, flag: string): number[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(',').map((s) => Number(s.trim()));
  if (items.length === 0 || items.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`${flag} expects comma-separated positive integers, got "${value}"`);
  return items;
}

export async function importCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      name: { type: 'string' },
      overwrite: { type: 'boolean' },
      channels: { type: 'string' },
      strides: { type: 'string' },
      'num-res-units': { type: 'string' },
      'out-channels': { type: 'string' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${IMPORT_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('import needs exactly one source: a bundle directory, a .pt checkpoint or an .onnx file');
  if (!values.output) throw new UsageError('import needs -o <model-dir>');
  const channels = parseList(values.channels, '--channels');
  const strides = parseList(values.strides, '--strides');
  const numResUnits = parseNumberFlag(values['num-res-units'], '--num-res-units', (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0');
  const outChannels = parseNumberFlag(values['out-channels'], '--out-channels', (n) => Number.isInteger(n) && n >= 2, 'an integer >= 2');
  let network: UnetConfig | undefined;
  if (channels || strides || numResUnits !== undefined || outChannels !== undefined) {
    const levels = channels?.length ?? 5;
    network = {
      inChannels: 1,
      outChannels: outChannels ?? 2,
      channels: channels ?? [16, 32, 64, 128, 256],
      strides: strides ?? Array<number>(levels - 1).fill(2),
      kernelSize: 3,
      upKernelSize: 3,
      numResUnits: numResUnits ?? 2,
    };
  }
  const result = await importModel(positionals[0], { output: values.output, name: values.name, overwrite: values.overwrite, network });
  const m = result.manifest;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ modelDir: result.modelDir, manifest: m }, null, 2)}\n`);
    return 0;
  }
  const p = m.pipeline;
  const lines = [
    `wrote ${result.modelDir}`,
    `  model      ${m.name} v${m.version} (${m.source?.kind ?? 'import'})`,
    `  onnx       model.onnx, ${(result.onnxBytes / 1e6).toFixed(1)} MB, ${m.input.name} [N, ${m.input.channels}, D, H, W] -> ${m.output.name} [N, ${m.output.channels}, D, H, W], sha256 ${m.onnx.sha256.slice(0, 16)}...`,
    `  weights    ${m.source?.weightsFile ?? positionals[0]}, sha256 ${m.source?.weightsSha256.slice(0, 16) ?? '?'}...`,
    `  pipeline   pixdim ${p.pixdimMm.join(' x ')} mm, window [${p.intensity.aMin}, ${p.intensity.aMax}] -> [${p.intensity.bMin}, ${p.intensity.bMax}]${p.intensity.clip ? ' clipped' : ''}, ROI ${p.roiSize.join('x')}, sw batch ${p.swBatchSize}, overlap ${p.overlap}, ${p.mode}`,
    `  labels     ${Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(', ')}`,
  ];
  if (m.warning) lines.push(`  warning    ${m.warning}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
