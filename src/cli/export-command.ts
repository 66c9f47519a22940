/**
 * `spleen-trt export`: builds a TensorRT plan (+ its JSON sidecar) from an ONNX model, the
 * counterpart of the MONAI bundle's `trt_export`. Nothing is written unless the build succeeds.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildEngine, loadModel, type BuildEngineOptions } from '../index.js';
import { tensorRtModel } from '../model/load-model.js';
import { ProgressLine } from './progress.js';
import { parseChoiceFlag, parseNumberFlag, UsageError } from './usage-error.js';

export const EXPORT_USAGE = `Usage: spleen-trt export (--onnx <file> | --model <dir|default>) -o <plan> [options]

Builds a TensorRT engine (plan) from an ONNX model and writes it with a JSON sidecar <plan>.json
(ONNX sha256, TensorRT version, GPU, precision, profile, build options). A static batch of 1 is
made dynamic first. Needs TensorRT and an NVIDIA GPU; the plan runs only with the TensorRT version
and GPU model that built it (see --version-compatible, --hardware-compat).

Options:
  --onnx <file>              the ONNX model: [N, 1, d0, d1, d2] -> [N, C, d0, d1, d2] float32
  --model <dir|default>      a model directory (model.json + ONNX), or the embedded default model
  -o, --output <plan>        the plan file to write
  --precision <p>            fp32 (true fp32, TF32 off) | tf32 | fp16 (default: fp32)
  --dynamic-batch <a,b,c>    profile batch sizes min,opt,max (default: 1,4,8)
  --roi-size <x,y,z>         window size where the ONNX leaves it symbolic (default: the model's, else 96,96,96)
  --timing-cache <file>      TensorRT timing cache to read and update (faster rebuilds)
  --workspace <size>         builder workspace limit: bytes, or e.g. 512MiB, 4GiB, 2GB (default: TensorRT's)
  --opt-level <0-5>          builder optimization level (default: 3)
  --version-compatible       the plan also runs on later TensorRT versions of the same major
  --hardware-compat <h>      none | ampere+ (runs on any GPU of compute capability 8.0 or later)
  --device <n>               CUDA device index (default: 0)
  --json                     print the result (paths, sidecar, builder log) as JSON
  --verbose                  print the builder's log and error stacks`;

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 2 ** 10,
  kib: 2 ** 10,
  kb: 1e3,
  m: 2 ** 20,
  mib: 2 ** 20,
  mb: 1e6,
  g: 2 ** 30,
  gib: 2 ** 30,
  gb: 1e9,
  t: 2 ** 40,
  tib: 2 ** 40,
  tb: 1e12,
};

/**
 * A byte count from "4GiB", "512MiB", "2GB", "1.5G" or "1048576" (IEC units and bare K/M/G/T are
 * powers of 1024, SI units KB/MB/GB/TB powers of 1000); throws a UsageError naming `flag`.
 */
export function parseByteSize(text: string, flag = '--workspace'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new UsageError(`${flag} expects a size like 4GiB, 512MiB or a byte count, got "${text}"`);
  const bytes = Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new UsageError(`${flag} expects a whole, positive number of bytes, got "${text}"`);
  return bytes;
}

/** "a,b,c" as three integers checked by `check`; throws a UsageError naming `flag`. */
function parseTriple(text: string | undefined, flag: string, check: (v: number[]) => boolean, what: string): [number, number, number] | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(',').map((p) => p.trim());
  const values = parts.map(Number);
  if (parts.length !== 3 || parts.some((p) => !/^\d+$/.test(p)) || !check(values)) throw new UsageError(`${flag} expects ${what}, got "${text}"`);
  return [values[0], values[1], values[2]];
}

function formatBytes(n: number): string {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${(n / 2 ** 10).toFixed(1)} KiB`;
}

export async function exportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      onnx: { type: 'string' },
      model: { type: 'string' },
      output: { type: 'string', short: 'o' },
      precision: { type: 'string' },
      'dynamic-batch': { type: 'string' },
      'roi-size': { type: 'string' },
      'timing-cache': { type: 'string' },
      workspace: { type: 'string' },
      'opt-level': { type: 'string' },
      'version-compatible': { type: 'boolean' },
      'hardware-compat': { type: 'string' },
      device: { type: 'string' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${EXPORT_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`export takes no positional arguments, got "${positionals[0]}" (use --onnx <file>)`);
  if ((values.onnx === undefined) === (values.model === undefined)) throw new UsageError('export needs exactly one of --onnx <file> and --model <dir|default>');
  if (values.output === undefined || values.output === '') throw new UsageError('export needs -o <plan>');
  const precision = parseChoiceFlag(values.precision, '--precision', ['fp32', 'tf32', 'fp16'] as const) ?? 'fp32';
  const dynamicBatch = parseTriple(
    values['dynamic-batch'],
    '--dynamic-batch',
    ([a, b, c]) => a >= 1 && a <= b && b <= c && c <= 256,
    'three batch sizes min,opt,max with 1 <= min <= opt <= max <= 256',
  );
  const roiSize = parseTriple(values['roi-size'], '--roi-size', (v) => v.every((n) => n >= 1 && n <= 4096), 'three sizes x,y,z in 1..4096');
  const workspaceBytes = values.workspace === undefined ? undefined : parseByteSize(values.workspace);
  const optLevel = parseNumberFlag(values['opt-level'], '--opt-level', (n) => Number.isInteger(n) && n >= 0 && n <= 5, 'an integer in 0..5');
  const hardwareCompat = parseChoiceFlag(values['hardware-compat'], '--hardware-compat', ['none', 'ampere+'] as const);
  const device = parseNumberFlag(values.device, '--device', (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer');
  if (values['timing-cache'] === '') throw new UsageError('--timing-cache expects a file path');

  const source: Pick<BuildEngineOptions, 'onnx' | 'onnxPath' | 'spatialShape'> = {};
  if (values.model !== undefined) {
    const model = tensorRtModel(await loadModel(values.model));
    source.onnx = model.onnx;
    source.spatialShape = roiSize ?? model.manifest.pipeline.roiSize;
  } else {
    source.onnxPath = values.onnx;
    source.spatialShape = roiSize;
  }

  const progress = new ProgressLine();
  const controller = new AbortController();
  const onSigint = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  const started = performance.now();
  let result;
  try {
    result = await buildEngine({
      ...source,
      output: values.output,
      precision,
      dynamicBatch,
      timingCache: values['timing-cache'],
      workspaceBytes,
      optLevel,
      versionCompatible: values['version-compatible'] ?? false,
      hardwareCompat,
      device,
      signal: controller.signal,
      onProgress: (p) => progress.update(`export: ${p.phase}${p.total > 1 ? ` ${p.current}/${p.total}` : ''}`),
    });
  } finally {
    process.removeListener('SIGINT', onSigint);
    progress.clear();
  }
  const seconds = (performance.now() - started) / 1000;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ plan: result.planPath, sidecarPath: result.sidecarPath, timingCache: result.timingCachePath ?? null, seconds, sidecar: result.sidecar, log: result.log }, null, 2)}\n`);
    return 0;
  }
  if (values.verbose) for (const line of result.log) process.stderr.write(`tensorrt: ${line}\n`);
  const s = result.sidecar;
  process.stderr.write(
    `wrote ${result.planPath} (${formatBytes(s.plan.bytes)}) and ${path.basename(result.sidecarPath)}: TensorRT ${s.tensorrtVersion}, ` +
      `${s.precision}${s.onnx.fp16Converted ? ' (fp16 ONNX)' : ''}, batch ${s.profile.min}/${s.profile.opt}/${s.profile.max}, ` +
      `${s.spatialShape.join('x')}, ${s.gpu.name} (compute ${s.gpu.computeCapability}), ${seconds.toFixed(1)} s\n`,
  );
  if (result.timingCachePath) process.stderr.write(`timing cache: ${result.timingCachePath}\n`);
  return 0;
}
