/**
 * Resolves the `model` option into ONNX bytes plus a manifest: the embedded default, a model
 * directory (model.json + ONNX), or a bare .onnx file (run with the bundle's parameters).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectedType, SpleenTrtError } from '../errors.js';
import { inputFileError, readRegularFile } from '../io/read-regular-file.js';
import { buildUnetOnnx, ONNXRUNTIME_CPU_OPTIONS } from './build-unet-onnx.js';
import { BUNDLE_PIPELINE, parseManifest, type ModelManifest } from './manifest.js';
import { optimizeOnnxForCpu } from './optimize-onnx-for-cpu.js';
import { seededUnetWeights } from './seeded-weights.js';

export interface LoadedModel {
  manifest: ModelManifest;
  onnx: Uint8Array;
  /** sha256 of the ONNX bytes, hex. */
  sha256: string;
  /** Where it came from: a path, or `builtin:<name>`. */
  source: string;
}

/** Seed of the seeded test model's weights (`builtin:seeded`); changing it changes its results. */
export const DEFAULT_MODEL_SEED = 20261127;

export const SEEDED_MODEL_WARNING =
  'The builtin:seeded model has seeded random weights (no training): its masks are meaningless. ' +
  'It exists to exercise the pipeline end to end; run real weights with --model <dir|model.onnx>.';

/**
 * The embedded default model's directory (model.json + model.onnx), shipped in the package next to
 * dist/ (and src/ under the tests): the bundle's UNet trained on phantoms, see its model.json.
 */
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../../models/spleen-phantom-demo/', import.meta.url));

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Which graph of the same weights to build: each backend runs a different form fastest. */
export type DefaultModelGraph = 'onnxruntime' | 'tensorrt';

const defaultModels = new Map<DefaultModelGraph, LoadedModel>();
const seededModels = new Map<DefaultModelGraph, LoadedModel>();

/** The parsed model.json text; not JSON or not a valid manifest is ERR_MODEL_INVALID. */
function parseManifestText(text: string, manifestPath: string): ModelManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SpleenTrtError('ERR_MODEL_INVALID', `Model manifest ${manifestPath} is not valid JSON`, { cause: error });
  }
  return parseManifest(json, manifestPath);
}

/** sha256 of a model directory's ONNX, checked against its manifest (ERR_MODEL_INVALID if it differs). */
function checkedSha256(onnx: Uint8Array, onnxPath: string, manifest: ModelManifest, manifestPath: string): string {
  const sha256 = sha256Hex(onnx);
  if (manifest.onnx.sha256 && manifest.onnx.sha256 !== sha256) {
    throw new SpleenTrtError('ERR_MODEL_INVALID', `ONNX ${onnxPath} has sha256 ${sha256} but ${manifestPath} expects ${manifest.onnx.sha256}`);
  }
  return sha256;
}

/**
 * A builtin model directory (the embedded default's) as `graph`: read synchronously, checked like
 * any model directory; a missing or damaged file is ERR_MODEL_INVALID saying so.
 */
export function loadBuiltinModelDirectory(dir: string, graph: DefaultModelGraph): LoadedModel {
  const manifestPath = path.join(dir, 'model.json');
  let stored: Uint8Array;
  let manifest: ModelManifest;
  try {
    manifest = parseManifestText(readFileSync(manifestPath, 'utf8'), manifestPath);
    const onnxPath = path.join(dir, manifest.onnx.file);
    stored = new Uint8Array(readFileSync(onnxPath));
    checkedSha256(stored, onnxPath, manifest, manifestPath);
  } catch (error) {
    throw new SpleenTrtError(
      'ERR_MODEL_INVALID',
      `The embedded model in ${dir} is damaged (${(error as Error).message}); reinstall the package or pass --model`,
      { cause: error },
    );
  }
  const onnx = graph === 'onnxruntime' ? optimizeOnnxForCpu(stored).onnx : stored;
  const sha256 = sha256Hex(onnx);
  return { manifest: { ...manifest, onnx: { ...manifest.onnx, sha256 } }, onnx, sha256, source: 'builtin:default' };
}

/**
 * The embedded default (`builtin:default`): the bundle's UNet trained on synthetic phantoms
 * (models/spleen-phantom-demo). 'onnxruntime' (default) gives the CPU form of its graph (folded
 * BN, LeakyRelu, fused sub-pixel ConvTranspose: optimize-onnx-for-cpu.ts), 'tensorrt' the stored
 * torch-export-like graph, which TensorRT handles best. Read once per graph, then cached.
 */
export function loadDefaultModel(graph: DefaultModelGraph = 'onnxruntime'): LoadedModel {
  let model = defaultModels.get(graph);
  if (!model) {
    model = loadBuiltinModelDirectory(DEFAULT_MODEL_DIR, graph);
    defaultModels.set(graph, model);
  }
  return model;
}

/**
 * `builtin:seeded`: the bundle's UNet with deterministic seeded weights, built in memory. Its masks
 * mean nothing; tests and the MONAI parity fixtures use it because it needs no file and its
 * weights are reproducible from one number. Graphs as for loadDefaultModel.
 */
export function loadSeededModel(graph: DefaultModelGraph = 'onnxruntime'): LoadedModel {
  const cached = seededModels.get(graph);
  if (cached) return cached;
  const options = graph === 'onnxruntime' ? ONNXRUNTIME_CPU_OPTIONS : {};
  const onnx = buildUnetOnnx(seededUnetWeights(DEFAULT_MODEL_SEED), undefined, options);
  const sha256 = sha256Hex(onnx);
  const model: LoadedModel = {
    manifest: {
      name: 'spleen-unet-seeded',
      version: '0.1.0',
      description: "The bundle's 3-D UNet (spec section 6) with deterministic seeded weights.",
      warning: SEEDED_MODEL_WARNING,
      labels: { '0': 'background', '1': 'spleen' },
      input: { name: 'input_0', channels: 1 },
      output: { name: 'output_0', channels: 2 },
      pipeline: BUNDLE_PIPELINE,
      onnx: { file: 'model.onnx', sha256 },
      provenance: `seededUnetWeights(${DEFAULT_MODEL_SEED}) through buildUnetOnnx(${graph === 'onnxruntime' ? 'ONNXRUNTIME_CPU_OPTIONS' : 'default options'})`,
    },
    onnx,
    sha256,
    source: 'builtin:seeded',
  };
  seededModels.set(graph, model);
  return model;
}

/**
 * The model's graph in the form onnxruntime's CPU provider runs fastest (optimize-onnx-for-cpu.ts;
 * the builtin models come in that form already). Bytes the rewriter cannot read go to onnxruntime
 * as they are, so that its own error reaches the user.
 */
export function onnxRuntimeGraph(model: LoadedModel): Uint8Array {
  if (model.source.startsWith('builtin:')) return model.onnx;
  try {
    return optimizeOnnxForCpu(model.onnx).onnx;
  } catch (error) {
    if (error instanceof SpleenTrtError) return model.onnx;
    throw error;
  }
}

/** The model as TensorRT should build it: a builtin model's torch-export-like graph, else as loaded. */
export function tensorRtModel(model: LoadedModel): LoadedModel {
  if (model.source === 'builtin:default') return loadDefaultModel('tensorrt');
  if (model.source === 'builtin:seeded') return loadSeededModel('tensorrt');
  return model;
}

/** Largest model file read (an ONNX cannot exceed 2 GiB; the bundle's is 19 MB). */
export const MAX_MODEL_BYTES = 1024 ** 3;
/** Largest model.json read. */
const MAX_MANIFEST_BYTES = 1 << 20;

/** A model file: regular files only (a FIFO or /dev/zero would block or never end), size-checked before reading. */
function readModelFile(file: string, what: string, maxBytes = MAX_MODEL_BYTES): Promise<Uint8Array> {
  return readRegularFile(file, { what, maxBytes });
}

/**
 * The manifest's ONNX path, kept inside the model directory: no absolute path, no `..`, and no
 * symbolic link that resolves outside it (a model.json must not make the loader read /etc/passwd).
 */
export async function containedModelPath(dir: string, file: string, manifestPath: string): Promise<string> {
  const refuse = (why: string): never => {
    throw new SpleenTrtError('ERR_MODEL_INVALID', `${manifestPath}: "onnx.file" ${JSON.stringify(file)} ${why}; it must name a file inside the model directory`);
  };
  if (file.includes('\0')) refuse('contains a NUL byte');
  if (path.isAbsolute(file) || path.win32.isAbsolute(file)) refuse('is an absolute path');
  if (file.split(/[\\/]/).includes('..')) refuse('leaves the directory with ".."');
  const joined = path.join(dir, file);
  let real: string;
  let realDir: string;
  try {
    [real, realDir] = await Promise.all([realpath(joined), realpath(dir)]);
  } catch (error) {
    throw inputFileError(error, joined, 'model ONNX');
  }
  const rel = path.relative(realDir, real);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) refuse(`resolves (through a symbolic link) to ${real}, outside ${realDir}`);
  return joined;
}

/**
 * Loads a model directory (model.json next to its ONNX) or a bare .onnx file; undefined, 'default'
 * or 'builtin:default' = the embedded default; 'builtin:seeded' = the seeded test model.
 */
export async function loadModel(spec?: string): Promise<LoadedModel> {
  if (spec === undefined || spec === 'default' || spec === 'builtin:default') return loadDefaultModel();
  if (spec === 'builtin:seeded') return loadSeededModel();
  if (typeof spec !== 'string' || spec === '') throw expectedType('a model path', 'model', spec);
  if (spec.includes('\0')) throw new SpleenTrtError('ERR_FILE_UNREADABLE', `Model path ${JSON.stringify(spec)} contains a NUL byte`);
  const info = await stat(spec).catch((error: NodeJS.ErrnoException) => {
    throw inputFileError(error, spec, 'Model');
  });
  if (info.isDirectory()) {
    const manifestPath = path.join(spec, 'model.json');
    const manifest = parseManifestText(new TextDecoder().decode(await readModelFile(manifestPath, 'model manifest', MAX_MANIFEST_BYTES)), manifestPath);
    const onnxPath = await containedModelPath(spec, manifest.onnx.file, manifestPath);
    const onnx = await readModelFile(onnxPath, 'model ONNX');
    const sha256 = checkedSha256(onnx, onnxPath, manifest, manifestPath);
    return { manifest, onnx, sha256, source: path.resolve(spec) };
  }
  const onnx = await readModelFile(spec, 'model ONNX');
  const sha256 = sha256Hex(onnx);
  const name = path.basename(spec).replace(/\.onnx$/i, '');
  return {
    manifest: {
      name,
      version: '0',
      description: `ONNX file ${path.basename(spec)}, run with the bundle's pipeline parameters`,
      labels: { '0': 'background', '1': 'spleen' },
      // Names and channel counts are read from the ONNX itself by the backend.
      input: { name: '', channels: 1 },
      output: { name: '', channels: 2 },
      pipeline: BUNDLE_PIPELINE,
      onnx: { file: path.basename(spec), sha256 },
      provenance: path.resolve(spec),
    },
    onnx,
    sha256,
    source: path.resolve(spec),
  };
}
