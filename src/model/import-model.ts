/**
 * `spleen-trt import`: turns what a user downloads from the MONAI model zoo (a bundle directory, its
 * `models/model.pt` checkpoint, or an ONNX export) into a model directory the package runs:
 * `model.onnx` (dynamic batch) + `model.json` (pipeline parameters, I/O names, labels, hashes,
 * provenance). The directory appears complete or not at all: everything is written to a temporary
 * sibling, verified with loadModel, then renamed into place.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { expectedRange, expectedType, SpleenTrtError } from '../errors.js';
import { inputFileError, readRegularFile } from '../io/read-regular-file.js';
import { readBundleConfig, type BundleConfig } from './bundle-config.js';
import { buildUnetOnnx } from './build-unet-onnx.js';
import { makeBatchDynamic } from './dynamic-batch.js';
import { inspectOnnx } from './inspect-onnx.js';
import { loadModel, MAX_MODEL_BYTES, sha256Hex } from './load-model.js';
import { BUNDLE_PIPELINE, type ModelManifest, type ModelSource, type PipelineParameters } from './manifest.js';
import { readUnetCheckpoint } from './torch-checkpoint.js';
import { checkUnetConfig, DEFAULT_UNET_CONFIG, type UnetConfig } from './unet-architecture.js';
import { looksLikeZip } from './zip-reader.js';

export interface ImportModelOptions {
  /** The model directory to write. It must not exist or be empty, unless `overwrite`. */
  output: string;
  /** Model name in model.json (default: the bundle's name, else the source file's stem). */
  name?: string;
  /**
   * Network of a bare checkpoint (a bundle directory brings its own network_def); default: the
   * spleen bundle's UNet.
   */
  network?: UnetConfig;
  /** Pipeline parameters of a bare checkpoint or ONNX (a bundle brings its own); default: the spleen bundle's. */
  pipeline?: PipelineParameters;
  /** Label names of a bare checkpoint or ONNX; default background/spleen. */
  labels?: Record<string, string>;
  /** Replace an existing non-empty `output` directory. */
  overwrite?: boolean;
}

export interface ImportModelResult {
  /** Absolute path of the model directory written. */
  modelDir: string;
  manifest: ModelManifest;
  /** Size of model.onnx in bytes. */
  onnxBytes: number;
}

const require = createRequire(import.meta.url);

function packageVersion(): string {
  try {
    return (require('../../package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

function invalid(message: string): never {
  throw new SpleenTrtError('ERR_MODEL_INVALID', message);
}

/** A checkpoint or ONNX to import: regular files only, size-checked before reading (finding 5: /dev/zero). */
function readSourceFile(file: string): Promise<Uint8Array> {
  return readRegularFile(file, { what: 'Model source', maxBytes: MAX_MODEL_BYTES });
}

interface CheckedIo {
  inputName: string;
  outputName: string;
  inputChannels: number;
  outputChannels: number;
}

const describeDims = (dims: ReadonlyArray<number | string | null> | null): string =>
  dims === null ? 'no shape' : `[${dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;

/**
 * Checks that an ONNX model is a segmentation network the pipeline can feed: one float input
 * [N, 1, D, H, W] and one float output [N, C, D, H, W], N symbolic, fixed spatial dims (if any)
 * equal to the sliding-window ROI and to each other. `outChannels` fills in a symbolic C.
 */
export function checkSegmentationOnnx(onnx: Uint8Array, roiSize: readonly number[], outChannels?: number): CheckedIo {
  const summary = inspectOnnx(onnx);
  if (summary.inputs.length !== 1 || summary.outputs.length !== 1) {
    invalid(`Expected an ONNX model with one input and one output but it has ${summary.inputs.length} and ${summary.outputs.length}`);
  }
  const [input] = summary.inputs;
  const [output] = summary.outputs;
  const shapes = `input "${input.name}" ${describeDims(input.dims)}, output "${output.name}" ${describeDims(output.dims)}`;
  const fail = (why: string): never => invalid(`ONNX model does not fit the pipeline (${why}): ${shapes}; expected [N, 1, D, H, W] -> [N, C, D, H, W] float32`);
  if (input.elemType !== 1 || output.elemType !== 1) fail('input and output must be float32');
  if (input.dims?.length !== 5 || output.dims?.length !== 5) fail('input and output must be 5-D');
  const inDims = input.dims!;
  const outDims = output.dims!;
  if (typeof inDims[0] === 'number' || typeof outDims[0] === 'number') fail('the batch dimension is static');
  if (typeof inDims[1] === 'number' && inDims[1] !== 1) fail(`the input has ${inDims[1]} channels; the pipeline feeds one CT channel`);
  let channels = typeof outDims[1] === 'number' ? outDims[1] : outChannels;
  if (channels === undefined) fail('the number of output channels is not fixed');
  if (outChannels !== undefined && channels !== outChannels) fail(`the output has ${channels} channels but the bundle's network has ${outChannels}`);
  if (channels! < 2) fail(`the output has ${channels} channel; softmax needs at least 2`);
  for (let k = 0; k < 3; k++) {
    const i = inDims[2 + k];
    const o = outDims[2 + k];
    if (typeof i === 'number' && i !== roiSize[k]) fail(`spatial input size ${describeDims(inDims.slice(2))} is fixed and differs from the ROI [${roiSize.join(', ')}]`);
    if (typeof i === 'number' && typeof o === 'number' && i !== o) fail('the output spatial size differs from the input');
    if (typeof o === 'number' && o !== roiSize[k]) fail(`spatial output size is fixed and differs from the ROI [${roiSize.join(', ')}]`);
  }
  channels = channels!;
  return { inputName: input.name, outputName: output.name, inputChannels: 1, outputChannels: channels };
}

interface Prepared {
  onnx: Uint8Array;
  io: CheckedIo;
  kind: ModelSource['kind'];
  weightsFile: string;
  weightsSha256: string;
  bundle?: BundleConfig;
  network?: UnetConfig;
  checkpoint?: ModelSource['checkpoint'];
  batchRewritten?: boolean;
}

async function prepareFromFile(
  file: string,
  network: UnetConfig,
  pipeline: PipelineParameters,
  bundle: BundleConfig | undefined,
): Promise<Prepared> {
  const bytes = await readSourceFile(file);
  const weightsSha256 = sha256Hex(bytes);
  // A zip is a torch.save checkpoint; a pickle header (0x80, protocol) a legacy one, which the
  // reader refuses with its re-save hint; everything else must decode as ONNX.
  if (looksLikeZip(bytes) || (bytes.length > 1 && bytes[0] === 0x80 && bytes[1] <= 5)) {
    const checkpoint = readUnetCheckpoint(bytes, { config: network, source: file });
    const onnx = buildUnetOnnx(checkpoint.weights, network);
    return {
      onnx,
      io: checkSegmentationOnnx(onnx, pipeline.roiSize, network.outChannels),
      kind: bundle ? 'bundle' : 'checkpoint',
      weightsFile: file,
      weightsSha256,
      bundle,
      network,
      checkpoint: { stateDictPath: checkpoint.path, strippedPrefix: checkpoint.strippedPrefix, convertedDtypes: checkpoint.converted },
    };
  }
  let rewritten: ReturnType<typeof makeBatchDynamic>;
  try {
    rewritten = makeBatchDynamic(bytes);
  } catch (error) {
    if (error instanceof SpleenTrtError && /Not a valid ONNX/.test(error.message)) {
      throw new SpleenTrtError(
        'ERR_MODEL_INVALID',
        `${file} is neither a PyTorch checkpoint (torch.save zip) nor an ONNX model: ${error.message}`,
        { cause: error },
      );
    }
    throw error;
  }
  return {
    onnx: rewritten.onnx,
    io: checkSegmentationOnnx(rewritten.onnx, pipeline.roiSize, bundle?.network.outChannels),
    kind: bundle ? 'bundle' : 'onnx',
    weightsFile: file,
    weightsSha256,
    bundle,
    network: bundle?.network,
    batchRewritten: rewritten.changed,
  };
}

/** The weights file of a bundle directory: models/model.pt, else models/model.onnx. */
function bundleWeights(dir: string): string {
  const models = path.join(dir, 'models');
  for (const name of ['model.pt', 'model.pth', 'model.onnx']) {
    const file = path.join(models, name);
    if (existsSync(file)) return file;
  }
  if (existsSync(path.join(models, 'model.ts'))) {
    invalid(`${models} has only model.ts, a TorchScript archive, which this package cannot read; download the bundle with its models/model.pt`);
  }
  throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `No weights in the bundle: expected ${path.join(models, 'model.pt')} (or model.onnx)`);
}

function checkOptions(source: unknown, options: ImportModelOptions): void {
  if (typeof source !== 'string' || source === '') throw expectedType('a bundle directory, .pt or .onnx path', 'source', source);
  if (typeof options !== 'object' || options === null) throw expectedType('an options object', 'options', options);
  if (typeof options.output !== 'string' || options.output === '') throw expectedType('a directory path', 'options.output', options.output);
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name.trim() === '')) {
    throw expectedType('a non-empty string', 'options.name', options.name);
  }
  if (options.network !== undefined) checkUnetConfig(options.network);
  if (options.labels !== undefined && (typeof options.labels !== 'object' || options.labels === null)) {
    throw expectedType('a record of label names', 'options.labels', options.labels);
  }
}

async function prepare(source: string, options: ImportModelOptions): Promise<{ prepared: Prepared; pipeline: PipelineParameters; labels: Record<string, string> }> {
  const info = await stat(source).catch((error: NodeJS.ErrnoException) => {
    throw inputFileError(error, source, 'Model source');
  });
  if (info.isDirectory()) {
    const bundle = await readBundleConfig(source);
    const prepared = await prepareFromFile(bundleWeights(source), bundle.network, bundle.pipeline, bundle);
    return { prepared, pipeline: bundle.pipeline, labels: bundle.labels };
  }
  const network = options.network ?? DEFAULT_UNET_CONFIG;
  const pipeline = options.pipeline ?? BUNDLE_PIPELINE;
  const prepared = await prepareFromFile(source, network, pipeline, undefined);
  const labels = options.labels ?? { '0': 'background', '1': 'spleen' };
  return { prepared, pipeline, labels };
}

function buildManifest(source: string, options: ImportModelOptions, p: Prepared, pipeline: PipelineParameters, labels: Record<string, string>, onnxSha256: string): ModelManifest {
  const absolute = path.resolve(source);
  const version = packageVersion();
  const importedAt = new Date().toISOString();
  const stem = path.basename(absolute).replace(/\.(pt|pth|ckpt|onnx)$/i, '');
  const name = options.name ?? p.bundle?.name ?? stem;
  const relWeights = p.kind === 'bundle' ? path.relative(absolute, p.weightsFile) : path.basename(p.weightsFile);
  const what = p.checkpoint
    ? `PyTorch checkpoint ${relWeights}${p.checkpoint.stateDictPath ? ` (state_dict under "${p.checkpoint.stateDictPath}")` : ''} built into ONNX by buildUnetOnnx`
    : `ONNX ${relWeights}${p.batchRewritten ? ' (static batch rewritten to dynamic)' : ''}`;
  const from = p.bundle ? `MONAI bundle "${p.bundle.name}" v${p.bundle.version} (${absolute}): ${what}` : `${what} (${absolute})`;
  const outputChannels = p.io.outputChannels;
  const fullLabels: Record<string, string> = {};
  for (let c = 0; c < outputChannels; c++) fullLabels[String(c)] = labels[String(c)] ?? (c === 0 ? 'background' : `label ${c}`);
  const sourceInfo: ModelSource = {
    kind: p.kind,
    path: absolute,
    weightsFile: path.resolve(p.weightsFile),
    weightsSha256: p.weightsSha256,
    ...(p.bundle ? { bundle: { name: p.bundle.name, version: p.bundle.version, ...(p.bundle.monaiVersion ? { monaiVersion: p.bundle.monaiVersion } : {}) } } : {}),
    ...(p.checkpoint ? { checkpoint: p.checkpoint } : {}),
    ...(p.batchRewritten !== undefined ? { batchRewritten: p.batchRewritten } : {}),
    importedAt,
    packageVersion: version,
  };
  return {
    name,
    version: p.bundle?.version ?? '0',
    description: p.bundle?.description ?? `Imported from ${path.basename(absolute)}`,
    ...(p.bundle?.intendedUse ? { warning: p.bundle.intendedUse } : {}),
    labels: fullLabels,
    input: { name: p.io.inputName, channels: p.io.inputChannels },
    output: { name: p.io.outputName, channels: outputChannels },
    pipeline,
    onnx: { file: 'model.onnx', sha256: onnxSha256 },
    provenance: `Imported by spleen-trt ${version} at ${importedAt} from ${from}; weights sha256 ${p.weightsSha256}`,
    ...(p.network ? { network: { architecture: 'monai-unet' as const, ...p.network, channels: [...p.network.channels], strides: [...p.network.strides] } } : {}),
    source: sourceInfo,
  };
}

async function isEmptyDir(dir: string): Promise<boolean> {
  return (await readdir(dir)).length === 0;
}

/**
 * Imports a MONAI bundle directory, a `torch.save` checkpoint of the UNet's state_dict, or an ONNX
 * export into a model directory (`model.onnx` + `model.json`) that `loadModel` and `Segmenter` run.
 * Throws ERR_FILE_NOT_FOUND / ERR_MODEL_INVALID (naming what does not fit) and leaves no partial
 * directory behind.
 * @example
 * await importModel('spleen_ct_segmentation', { output: 'models/spleen' });
 * const segmenter = await Segmenter.create({ model: 'models/spleen' });
 */
export async function importModel(source: string, options: ImportModelOptions): Promise<ImportModelResult> {
  checkOptions(source, options);
  const modelDir = path.resolve(options.output);
  const existing = await stat(modelDir).catch(() => null);
  if (existing && !existing.isDirectory()) throw expectedRange('a directory path (a file is in the way)', 'options.output', options.output);
  if (existing && !options.overwrite && !(await isEmptyDir(modelDir))) {
    throw expectedRange('a new or empty directory (or overwrite: true)', 'options.output', options.output);
  }

  const { prepared, pipeline, labels } = await prepare(source, options);
  const onnxSha256 = sha256Hex(prepared.onnx);
  const manifest = buildManifest(source, options, prepared, pipeline, labels, onnxSha256);

  const parent = path.dirname(modelDir);
  await mkdir(parent, { recursive: true });
  const staging = await mkdtemp(path.join(parent, `.${path.basename(modelDir)}.import-`));
  let backup: string | undefined;
  try {
    // mkdtemp makes it owner-only; the finished directory gets a plain directory's mode.
    await chmod(staging, 0o755);
    await writeFile(path.join(staging, 'model.onnx'), prepared.onnx);
    await writeFile(path.join(staging, 'model.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    // What was written must load exactly as any later run will load it.
    const loaded = await loadModel(staging);
    if (loaded.sha256 !== onnxSha256) invalid(`internal: model.onnx read back with sha256 ${loaded.sha256}`);
    if (existing) {
      if (await isEmptyDir(modelDir)) {
        await rm(modelDir, { recursive: true });
      } else {
        backup = `${staging}.previous`;
        await rename(modelDir, backup);
      }
    }
    await rename(staging, modelDir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (backup && !existsSync(modelDir)) await rename(backup, modelDir).catch(() => undefined);
    throw error;
  }
  if (backup) await rm(backup, { recursive: true, force: true });
  return { modelDir, manifest, onnxBytes: prepared.onnx.length };
}
