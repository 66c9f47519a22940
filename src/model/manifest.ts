/**
 * The model manifest (`model.json`): everything besides the weights that the pipeline needs to run
 * a model the way its bundle does, plus what the weights are and where they came from.
 */
import { SpleenTrtError } from '../errors.js';
import type { Shape3, Vec3 } from '../volume/volume.js';
import type { UnetConfig } from './unet-architecture.js';

export interface IntensityWindow {
  aMin: number;
  aMax: number;
  bMin: number;
  bMax: number;
  clip: boolean;
}

export interface PipelineParameters {
  /** Target voxel size after Spacingd, mm. */
  pixdimMm: Vec3;
  intensity: IntensityWindow;
  roiSize: Shape3;
  swBatchSize: number;
  overlap: number;
  mode: 'constant' | 'gaussian';
}

export interface ModelManifest {
  name: string;
  version: string;
  description: string;
  /** Plain-language warning shown with every result, e.g. for untrained demo weights. */
  warning?: string;
  /** Label index -> name; index 0 is background. */
  labels: Record<string, string>;
  input: { name: string; channels: number };
  output: { name: string; channels: number };
  pipeline: PipelineParameters;
  /** The ONNX file name next to model.json, and its sha256 (hex). */
  onnx: { file: string; sha256: string };
  provenance: string;
  /** The network's hyper-parameters, when known (models built from a checkpoint or a bundle). */
  network?: { architecture: 'monai-unet' } & UnetConfig;
  /** Where imported weights came from (written by `spleen-trt import`). */
  source?: ModelSource;
}

/** Provenance of an imported model: what was read, its hash, and which tool wrote the model. */
export interface ModelSource {
  kind: 'bundle' | 'checkpoint' | 'onnx';
  /** Absolute path given to the import (bundle directory or file). */
  path: string;
  /** The weights file that was read (the bundle's models/model.pt, or `path` itself). */
  weightsFile: string;
  /** sha256 (hex) of that weights file. */
  weightsSha256: string;
  /** From the bundle's configs/metadata.json. */
  bundle?: { name: string; version: string; monaiVersion?: string };
  /** Checkpoint details: where the state_dict was nested, the prefix removed, dtypes converted. */
  checkpoint?: { stateDictPath: string; strippedPrefix: string; convertedDtypes: Record<string, string> };
  /** ONNX input: whether a static batch dimension was rewritten to a dynamic one. */
  batchRewritten?: boolean;
  /** ISO 8601 time of the import. */
  importedAt: string;
  /** spleen-trt version that imported it. */
  packageVersion: string;
}

/** The bundle's own parameters (configs/inference.json of spleen_ct_segmentation v0.5.9). */
export const BUNDLE_PIPELINE: PipelineParameters = {
  pixdimMm: [1.5, 1.5, 2.0],
  intensity: { aMin: -57, aMax: 164, bMin: 0, bMax: 1, clip: true },
  roiSize: [96, 96, 96],
  swBatchSize: 4,
  overlap: 0.5,
  mode: 'constant',
};

function isNumberTuple(value: unknown, length: number): boolean {
  return Array.isArray(value) && value.length === length && value.every((v) => typeof v === 'number' && Number.isFinite(v));
}

/** Validates a parsed model.json; every problem is an ERR_MODEL_INVALID naming the field. */
export function parseManifest(json: unknown, source: string): ModelManifest {
  const fail = (what: string): never => {
    throw new SpleenTrtError('ERR_MODEL_INVALID', `Invalid model manifest ${source}: ${what}`);
  };
  if (typeof json !== 'object' || json === null) return fail('not a JSON object');
  const m = json as Partial<ModelManifest>;
  if (typeof m.name !== 'string' || m.name === '') fail('"name" must be a non-empty string');
  if (!m.onnx || typeof m.onnx.file !== 'string') fail('"onnx.file" must name the ONNX file');
  if (!m.output || !Number.isInteger(m.output.channels) || m.output.channels < 2) {
    fail('"output.channels" must be an integer >= 2');
  }
  const p: Partial<PipelineParameters> = { ...BUNDLE_PIPELINE, ...(m.pipeline ?? {}) };
  if (!isNumberTuple(p.pixdimMm, 3) || p.pixdimMm!.some((v) => v <= 0)) fail('"pipeline.pixdimMm" must be 3 positive numbers');
  if (!isNumberTuple(p.roiSize, 3) || p.roiSize!.some((v) => !Number.isInteger(v) || v < 1)) {
    fail('"pipeline.roiSize" must be 3 positive integers');
  }
  if (!Number.isInteger(p.swBatchSize) || p.swBatchSize! < 1) fail('"pipeline.swBatchSize" must be a positive integer');
  if (typeof p.overlap !== 'number' || p.overlap < 0 || p.overlap >= 1) fail('"pipeline.overlap" must be in [0, 1)');
  if (p.mode !== 'constant' && p.mode !== 'gaussian') fail('"pipeline.mode" must be "constant" or "gaussian"');
  const w = p.intensity;
  if (!w || ![w.aMin, w.aMax, w.bMin, w.bMax].every(Number.isFinite) || w.aMax === w.aMin) {
    fail('"pipeline.intensity" needs finite aMin != aMax, bMin, bMax');
  }
  return {
    version: '0',
    description: '',
    labels: { '0': 'background', '1': 'spleen' },
    input: { name: 'input_0', channels: 1 },
    provenance: '',
    ...m,
    pipeline: p as PipelineParameters,
  } as ModelManifest;
}
