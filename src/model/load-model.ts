/**
 * Resolves the `model` option into ONNX bytes plus a manifest: the embedded default, a model
 * directory (model.json + ONNX), or a bare .onnx file (run with the bundle's parameters).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { SpleenTrtError } from '../errors.js';
import { buildUnetOnnx, ONNXRUNTIME_CPU_OPTIONS } from './build-unet-onnx.js';
import { BUNDLE_PIPELINE, parseManifest, type ModelManifest } from './manifest.js';
import { seededUnetWeights } from './seeded-weights.js';

export interface LoadedModel {
  manifest: ModelManifest;
  onnx: Uint8Array;
  /** sha256 of the ONNX bytes, hex. */
  sha256: string;
  /** Where it came from: a path, or `builtin:<name>`. */
  source: string;
}

/** Seed of the embedded default's weights; changing it changes every default-model result. */
export const DEFAULT_MODEL_SEED = 20261127;

export const DEFAULT_MODEL_WARNING =
  'The embedded default model has seeded random weights (no training): its masks are meaningless. ' +
  'It exists to exercise the pipeline end to end; run real weights with --model <dir|model.onnx>.';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Which graph of the same weights to build: each backend runs a different form fastest. */
export type DefaultModelGraph = 'onnxruntime' | 'tensorrt';

const defaultModels = new Map<DefaultModelGraph, LoadedModel>();

/**
 * The embedded default: the bundle's UNet with seeded weights, built in memory (no file needed).
 * 'onnxruntime' (default) builds the CPU-friendly graph (folded BN, LeakyRelu, fused sub-pixel
 * ConvTranspose: same logits within float rounding, faster on onnxruntime's CPU kernels);
 * 'tensorrt' builds the torch-export-like graph, which TensorRT handles best.
 */
export function loadDefaultModel(graph: DefaultModelGraph = 'onnxruntime'): LoadedModel {
  const cached = defaultModels.get(graph);
  if (cached) return cached;
  const options = graph === 'onnxruntime' ? ONNXRUNTIME_CPU_OPTIONS : {};
  const onnx = buildUnetOnnx(seededUnetWeights(DEFAULT_MODEL_SEED), undefined, options);
  const sha256 = sha256Hex(onnx);
  const model: LoadedModel = {
    manifest: {
      name: 'spleen-unet-seeded-demo',
      version: '0.1.0',
      description: "The bundle's 3-D UNet (spec section 6) with deterministic seeded weights.",
      warning: DEFAULT_MODEL_WARNING,
      labels: { '0': 'background', '1': 'spleen' },
      input: { name: 'input_0', channels: 1 },
      output: { name: 'output_0', channels: 2 },
      pipeline: BUNDLE_PIPELINE,
      onnx: { file: 'model.onnx', sha256 },
      provenance: `seededUnetWeights(${DEFAULT_MODEL_SEED}) through buildUnetOnnx(${graph === 'onnxruntime' ? 'ONNXRUNTIME_CPU_OPTIONS' : 'default options'})`,
    },
    onnx,
    sha256,
    source: 'builtin:default',
  };
  defaultModels.set(graph, model);
  return model;
}

async function readModelFile(file: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `${what} not found: ${file}`, { cause: error });
    throw new SpleenTrtError('ERR_MODEL_INVALID', `Cannot read ${what} ${file}: ${(error as Error).message}`, { cause: error });
  }
}

/** Loads a model directory (model.json next to its ONNX) or a bare .onnx file; undefined = default. */
export async function loadModel(spec?: string): Promise<LoadedModel> {
  if (spec === undefined || spec === 'default' || spec === 'builtin:default') return loadDefaultModel();
  const info = await stat(spec).catch((error: NodeJS.ErrnoException) => {
    throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `Model not found: ${spec}`, { cause: error });
  });
  if (info.isDirectory()) {
    const manifestPath = path.join(spec, 'model.json');
    const text = new TextDecoder().decode(await readModelFile(manifestPath, 'model manifest'));
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new SpleenTrtError('ERR_MODEL_INVALID', `Model manifest ${manifestPath} is not valid JSON`, { cause: error });
    }
    const manifest = parseManifest(json, manifestPath);
    const onnxPath = path.join(spec, manifest.onnx.file);
    const onnx = await readModelFile(onnxPath, 'model ONNX');
    const sha256 = sha256Hex(onnx);
    if (manifest.onnx.sha256 && manifest.onnx.sha256 !== sha256) {
      throw new SpleenTrtError(
        'ERR_MODEL_INVALID',
        `ONNX ${onnxPath} has sha256 ${sha256} but ${manifestPath} expects ${manifest.onnx.sha256}`,
      );
    }
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
