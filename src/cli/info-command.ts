/** `spleen-trt info`: version, backends available and why not, threads, GPUs. */
import { parseArgs } from 'node:util';
import { getRuntimeInfo, type RuntimeInfo } from '../index.js';

type LoadedNative = Extract<RuntimeInfo['native'], { available: true }>;

/**
 * Both halves of TensorRT support, since either can be missing: the addon compiled with TensorRT's
 * headers (a prebuild made with them, or a source build that found them), and the library at run time.
 */
function tensorRtLine(native: LoadedNative): string {
  const headers = native.compiledWith.tensorrtHeaders;
  const compiled =
    headers === null
      ? 'not compiled in (this addon was built without TensorRT headers; to add it: npm rebuild spleen-trt --build-from-source where TensorRT is installed, with TENSORRT_ROOT=<dir> if its headers are not in a standard place)'
      : `compiled in (headers ${headers})`;
  const trt = native.tensorrt;
  if (trt.available) return `${compiled}, library ${trt.version} at ${trt.libraryPath}`;
  const missing = /not found/i.test(trt.reason ?? '');
  return `${compiled}, library ${missing ? 'not found' : 'not usable'} (${trt.reason ?? 'unknown'})`;
}

export async function infoCommand(argv: string[]): Promise<number> {
  // Strict: an unknown flag (`info --bogus`) is a usage error, exit 2, not silently ignored.
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, verbose: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write('Usage: spleen-trt info [--json]\n\nVersions, which backends run here and why not, CPU threads, GPUs.\n');
    return 0;
  }
  const info = await getRuntimeInfo();
  if (values.json) {
    process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    return 0;
  }
  const lines = [
    `spleen-trt ${info.packageVersion} on node ${info.node} (${info.platform})`,
    `cpu: ${info.cpu.model}, ${info.cpu.cores} threads available`,
    `onnxruntime: ${info.onnxruntime.available ? `yes, ${info.onnxruntime.version}` : `no (${info.onnxruntime.reason})`}`,
  ];
  const native = info.native;
  if ('cuda' in native) {
    lines.push(`native addon: loaded from ${native.addonPath} (N-API ${native.napiBuildVersion} build, N-API ${native.napiVersion} here)`);
    lines.push(`cuda driver: ${native.cuda.driverAvailable ? `yes, version ${native.cuda.driverVersion}` : `no (${native.cuda.reason})`}`);
    for (const gpu of native.cuda.devices) {
      lines.push(`  gpu ${gpu.index}: ${gpu.name}, compute ${gpu.computeCapability}, ${(gpu.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB`);
    }
    lines.push(`tensorrt: ${tensorRtLine(native)}`);
  } else {
    lines.push(`native addon: not loaded (${native.reason})`);
  }
  lines.push(`cpu stages: ${info.cpuKernels.reason}`);
  lines.push(`.nii.gz inflation: ${info.gzip.reason}`);
  const dnn = info.onednn;
  lines.push(`onednn: ${dnn.available ? `yes, ${dnn.version} (${dnn.isa}) at ${dnn.path}` : `no (${dnn.reason})`}`);
  lines.push(`cpu backend (auto): ${info.cpuBackend.name} (${info.cpuBackend.reason})`);
  lines.push(`tensorrt backend: ${info.tensorrt.usable ? 'usable' : `not usable (${info.tensorrt.reason})`}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
