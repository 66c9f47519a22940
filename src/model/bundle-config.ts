/**
 * Reads a MONAI bundle's configs (configs/inference.json, configs/metadata.json) into the
 * package's pipeline parameters and network config, so any MONAI 3-D UNet bundle whose inference
 * uses the spleen bundle's transform chain runs here with its own parameters.
 *
 * The chain the package reproduces (spec sections 1-7):
 *   LoadImaged -> EnsureChannelFirstd -> Orientationd(RAS) -> Spacingd(pixdim, bilinear)
 *   -> ScaleIntensityRanged(a_min, a_max, b_min, b_max, clip) -> EnsureTyped,
 *   SlidingWindowInferer(roi_size, sw_batch_size, overlap, mode constant|gaussian),
 *   Activationsd(softmax) -> Invertd -> AsDiscreted(argmax) -> SaveImaged.
 * Anything else (another transform, a non-default argument that changes the numbers, another
 * network) is refused by name with ERR_MODEL_INVALID: running it silently would give different
 * masks than the bundle does.
 *
 * Config values may be literals or `@id` references to other entries (MONAI's syntax, `::` or `#`
 * as path separators); `$` expressions are not evaluated and are refused where a value is needed.
 */
import { existsSync } from 'node:fs';
import { readRegularFile } from '../io/read-regular-file.js';
import path from 'node:path';
import { expectedType, SpleenTrtError } from '../errors.js';
import type { Shape3, Vec3 } from '../volume/volume.js';
import type { PipelineParameters } from './manifest.js';
import { checkUnetConfig, type UnetConfig } from './unet-architecture.js';

/** What a bundle's configs say about running it. */
export interface BundleConfig {
  /** metadata.json `name`, else the directory name. */
  name: string;
  /** metadata.json `version` ('0' if absent). */
  version: string;
  description: string;
  monaiVersion?: string;
  network: UnetConfig;
  pipeline: PipelineParameters;
  /** Label index -> name (metadata's output channel_def, else background/foreground). */
  labels: Record<string, string>;
  /** Plain-language use restriction from the metadata (`intended_use`), if any. */
  intendedUse?: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function refuse(source: string, message: string): never {
  throw new SpleenTrtError('ERR_MODEL_INVALID', `${source}: ${message}`);
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Short class name of a `_target_` ("monai.transforms.Spacingd" -> "Spacingd"). */
function targetName(v: JsonObject): string | undefined {
  const t = v._target_;
  if (typeof t !== 'string') return undefined;
  return t.slice(t.lastIndexOf('.') + 1);
}

/** Resolves `@id` references against the config root, bounded so that cycles fail. */
class Resolver {
  constructor(
    private readonly root: JsonObject,
    readonly source: string,
  ) {}

  private lookup(ref: string): Json | undefined {
    let node: Json | undefined = this.root;
    for (const part of ref.split(/::|#/)) {
      if (Array.isArray(node) && /^\d+$/.test(part)) node = node[Number(part)];
      else if (isObject(node)) node = node[part];
      else return undefined;
    }
    return node;
  }

  /** The value with references followed; `what` names it in errors. */
  resolve(value: Json | undefined, what: string): Json | undefined {
    let v = value;
    for (let hops = 0; typeof v === 'string' && v.startsWith('@'); hops++) {
      if (hops > 32) refuse(this.source, `${what}: reference cycle at "${v}"`);
      const target = this.lookup(v.slice(1));
      if (target === undefined) refuse(this.source, `${what}: reference "${v}" points to nothing`);
      v = target;
    }
    if (typeof v === 'string' && v.startsWith('$')) {
      refuse(this.source, `${what} is the Python expression "${v}", which this package does not evaluate; write the value itself`);
    }
    return v;
  }

  number(obj: JsonObject, key: string, what: string, fallback?: number): number {
    const v = this.resolve(obj[key], `${what}.${key}`);
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      return refuse(this.source, `${what} needs "${key}"`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) refuse(this.source, `${what}.${key} must be a number, not ${JSON.stringify(v)}`);
    return v as number;
  }

  numbers(obj: JsonObject, key: string, what: string, length: number): number[] {
    const v = this.resolve(obj[key], `${what}.${key}`);
    const list = Array.isArray(v) ? v.map((x, i) => this.resolve(x, `${what}.${key}[${i}]`)) : typeof v === 'number' ? Array<Json>(length).fill(v) : null;
    if (!list || (length > 0 && list.length !== length) || !list.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      refuse(this.source, `${what}.${key} must be ${length > 0 ? `${length} numbers` : 'a list of numbers'}, not ${JSON.stringify(v)}`);
    }
    return list as number[];
  }

  string(obj: JsonObject, key: string, what: string): string | undefined {
    const v = this.resolve(obj[key], `${what}.${key}`);
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string') return v[0];
    if (typeof v !== 'string') refuse(this.source, `${what}.${key} must be a string, not ${JSON.stringify(v)}`);
    return v as string;
  }

  bool(obj: JsonObject, key: string, what: string, fallback: boolean): boolean {
    const v = this.resolve(obj[key], `${what}.${key}`);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') refuse(this.source, `${what}.${key} must be true or false, not ${JSON.stringify(v)}`);
    return v as boolean;
  }

  /** The transforms of a Compose (or a plain list), `_disabled_` ones dropped. */
  transforms(value: Json | undefined, what: string): JsonObject[] {
    const v = this.resolve(value, what);
    let list: Json | undefined = v;
    if (isObject(v)) {
      if (targetName(v) !== 'Compose') refuse(this.source, `${what} is a ${targetName(v) ?? 'non-Compose object'}, expected a Compose of transforms`);
      list = this.resolve(v.transforms, `${what}.transforms`);
    }
    if (!Array.isArray(list)) return refuse(this.source, `${what} has no list of transforms`);
    const out: JsonObject[] = [];
    list.forEach((item, i) => {
      const t = this.resolve(item, `${what}[${i}]`);
      if (!isObject(t) || !targetName(t)) refuse(this.source, `${what}[${i}] is not a transform with a _target_`);
      if (this.resolve(t._disabled_, `${what}[${i}]._disabled_`) === true) return;
      out.push(t);
    });
    return out;
  }
}

/** Arguments a transform may carry without changing the numbers; anything else must match `defaults`. */
interface ArgumentRules {
  /** Ignored: bookkeeping (keys, meta keys, allow_missing_keys...). */
  ignore: string[];
  /** Checked against the value the package implements (MONAI's default unless noted). */
  defaults: Record<string, Json>;
}

const COMMON_IGNORED = ['_target_', '_disabled_', '_requires_', '_desc_', '_mode_', 'keys', 'allow_missing_keys', 'meta_keys', 'meta_key_postfix', 'lazy'];

const RULES: Record<string, ArgumentRules> = {
  LoadImaged: { ignore: ['reader', 'image_only', 'dtype', 'ensure_channel_first', 'simple_keys', 'prune_meta_pattern', 'prune_meta_sep', 'overwriting', 'expanduser', 'writer'], defaults: {} },
  EnsureChannelFirstd: { ignore: ['strict_check', 'channel_dim'], defaults: {} },
  Orientationd: { ignore: ['axcodes', 'labels'], defaults: { as_closest_canonical: false } },
  Spacingd: {
    ignore: ['pixdim', 'mode', 'dtype', 'ensure_same_shape'],
    defaults: { diagonal: false, align_corners: false, padding_mode: 'border', scale_extent: false, recompute_affine: false, min_pixdim: null, max_pixdim: null },
  },
  ScaleIntensityRanged: { ignore: ['a_min', 'a_max', 'b_min', 'b_max', 'clip', 'dtype'], defaults: {} },
  EnsureTyped: { ignore: ['data_type', 'dtype', 'device', 'wrap_sequence', 'track_meta', 'track_meta_keys'], defaults: {} },
  Activationsd: { ignore: ['softmax'], defaults: { sigmoid: false, other: null } },
  Invertd: { ignore: ['transform', 'orig_keys', 'meta_keys', 'orig_meta_keys', 'meta_key_postfix', 'to_tensor', 'device', 'post_func', 'nearest_interp'], defaults: {} },
  AsDiscreted: { ignore: ['argmax', 'dim', 'keepdim'], defaults: { to_onehot: null, threshold: null, rounding: null } },
  SaveImaged: {
    ignore: ['output_dir', 'output_ext', 'output_dtype', 'output_postfix', 'separate_folder', 'resample', 'mode', 'padding_mode', 'scale', 'dtype', 'squeeze_end_dims', 'data_root_dir', 'print_log', 'output_format', 'writer', 'savepath_in_metadict', 'folder_layout', 'channel_dim'],
    defaults: {},
  },
};

const PREPROCESSING_ORDER = ['LoadImaged', 'EnsureChannelFirstd', 'Orientationd', 'Spacingd', 'ScaleIntensityRanged'];
const POSTPROCESSING_ORDER = ['Activationsd', 'Invertd', 'AsDiscreted', 'SaveImaged'];

function sameJson(a: Json | undefined, b: Json): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b);
}

function checkArguments(r: Resolver, t: JsonObject, what: string): void {
  const name = targetName(t)!;
  const rules = RULES[name];
  for (const key of Object.keys(t)) {
    if (COMMON_IGNORED.includes(key) || rules.ignore.includes(key)) continue;
    if (!(key in rules.defaults)) {
      refuse(r.source, `${what} (${name}) has the argument "${key}", which this package does not reproduce`);
    }
    const value = r.resolve(t[key], `${what}.${key}`);
    if (!sameJson(value, rules.defaults[key])) {
      refuse(r.source, `${what} (${name}) sets ${key} = ${JSON.stringify(value)}; this package only reproduces ${JSON.stringify(rules.defaults[key])}`);
    }
  }
}

/** Checks the transforms are the supported chain, in order, each once (EnsureTyped anywhere). */
function checkChain(r: Resolver, transforms: JsonObject[], order: string[], what: string, required: string[]): Map<string, JsonObject> {
  const found = new Map<string, JsonObject>();
  let last = -1;
  transforms.forEach((t, i) => {
    const name = targetName(t)!;
    const at = `${what}[${i}]`;
    if (name === 'EnsureTyped') {
      checkArguments(r, t, at);
      return;
    }
    const index = order.indexOf(name);
    if (index < 0) {
      refuse(r.source, `${at} is ${name}, which this package cannot reproduce (it supports ${[...order, 'EnsureTyped'].join(', ')})`);
    }
    if (found.has(name)) refuse(r.source, `${at}: ${name} appears twice; this package applies it once`);
    if (index < last) refuse(r.source, `${at}: ${name} comes after ${order[last]}; this package applies ${order.join(' -> ')} in that order`);
    last = index;
    checkArguments(r, t, at);
    found.set(name, t);
  });
  for (const name of required) if (!found.has(name)) refuse(r.source, `${what} has no ${name}; this package always applies it`);
  return found;
}

function readNetwork(r: Resolver, config: JsonObject): UnetConfig {
  const def = r.resolve(config.network_def ?? config.network, 'network_def');
  if (!isObject(def)) return refuse(r.source, 'no network_def (the network definition) found');
  const name = targetName(def);
  if (name !== 'UNet') refuse(r.source, `network_def is ${name ?? 'not a _target_ object'}; this package runs MONAI's UNet only`);
  const allowed = new Set([
    '_target_', 'spatial_dims', 'dimensions', 'in_channels', 'out_channels', 'channels', 'strides', 'kernel_size', 'up_kernel_size',
    'num_res_units', 'act', 'norm', 'dropout', 'bias', 'adn_ordering',
  ]);
  for (const key of Object.keys(def)) if (!allowed.has(key)) refuse(r.source, `network_def (UNet) has the argument "${key}", which this package does not reproduce`);
  const what = 'network_def';
  const spatial = r.number(def, def.spatial_dims !== undefined ? 'spatial_dims' : 'dimensions', what, 3);
  if (spatial !== 3) refuse(r.source, `network_def.spatial_dims is ${spatial}; this package runs 3-D networks only`);
  const kernel = (key: string): number => {
    const k = r.resolve(def[key], `${what}.${key}`);
    if (k === undefined || k === null) return 3;
    const list = Array.isArray(k) ? k : [k];
    if (!list.every((v) => v === list[0]) || typeof list[0] !== 'number') refuse(r.source, `${what}.${key} = ${JSON.stringify(k)}: only cubic kernels are supported`);
    return list[0] as number;
  };
  const strides = r.numbers(def, 'strides', what, 0).map((s, i) => {
    if (!Number.isInteger(s)) refuse(r.source, `${what}.strides[${i}] = ${s}: only one integer stride per level is supported`);
    return s;
  });
  const norm = r.resolve(def.norm, `${what}.norm`);
  const normName = Array.isArray(norm) ? norm[0] : norm;
  if (typeof normName !== 'string' || normName.toLowerCase() !== 'batch' || (Array.isArray(norm) && norm.length > 1 && !sameJson(norm[1], {}))) {
    refuse(r.source, `${what}.norm = ${JSON.stringify(norm ?? 'instance (MONAI default)')}; this package builds the UNet with BatchNorm ("batch") only`);
  }
  const act = r.resolve(def.act, `${what}.act`);
  const actName = Array.isArray(act) ? act[0] : act;
  if (act !== undefined && act !== null && (typeof actName !== 'string' || actName.toLowerCase() !== 'prelu' || (Array.isArray(act) && act.length > 1 && !sameJson(act[1], {})))) {
    refuse(r.source, `${what}.act = ${JSON.stringify(act)}; this package builds the UNet with PReLU (MONAI's default) only`);
  }
  const dropout = r.resolve(def.dropout, `${what}.dropout`);
  if (dropout !== undefined && dropout !== null && dropout !== 0) {
    // Dropout is the identity in eval mode, so any rate gives the same logits.
    if (typeof dropout !== 'number') refuse(r.source, `${what}.dropout = ${JSON.stringify(dropout)} is not a number`);
  }
  if (!r.bool(def, 'bias', what, true)) refuse(r.source, `${what}.bias = false; this package builds convolutions with bias only`);
  const ordering = r.string(def, 'adn_ordering', what);
  if (ordering !== undefined && ordering !== 'NDA') refuse(r.source, `${what}.adn_ordering = "${ordering}"; this package reproduces "NDA" (MONAI's default) only`);
  const network: UnetConfig = {
    inChannels: r.number(def, 'in_channels', what),
    outChannels: r.number(def, 'out_channels', what),
    channels: r.numbers(def, 'channels', what, 0),
    strides,
    kernelSize: kernel('kernel_size'),
    upKernelSize: kernel('up_kernel_size'),
    numResUnits: r.number(def, 'num_res_units', what, 0),
  };
  try {
    checkUnetConfig(network);
  } catch (error) {
    refuse(r.source, `network_def is not a UNet this package can build: ${(error as Error).message}`);
  }
  if (network.inChannels !== 1) refuse(r.source, `network_def.in_channels is ${network.inChannels}; the pipeline feeds one CT channel`);
  if (network.outChannels < 2) refuse(r.source, `network_def.out_channels is ${network.outChannels}; the pipeline needs softmax over at least 2 channels`);
  return network;
}

function readPipeline(r: Resolver, config: JsonObject): PipelineParameters {
  const pre = r.transforms(config.preprocessing ?? (isObject(config.dataset) ? config.dataset.transform : undefined), 'preprocessing');
  const found = checkChain(r, pre, PREPROCESSING_ORDER, 'preprocessing', ['Orientationd', 'Spacingd', 'ScaleIntensityRanged']);

  const orientation = found.get('Orientationd')!;
  const axcodes = r.string(orientation, 'axcodes', 'Orientationd');
  if (axcodes !== 'RAS') refuse(r.source, `Orientationd axcodes = ${JSON.stringify(axcodes ?? null)}; this package reorients to "RAS" only`);

  const spacing = found.get('Spacingd')!;
  const pixdim = r.numbers(spacing, 'pixdim', 'Spacingd', 3);
  if (pixdim.some((v) => v <= 0)) refuse(r.source, `Spacingd pixdim ${JSON.stringify(pixdim)}: every spacing must be positive (MONAI's "keep this axis" values are not supported)`);
  const mode = r.string(spacing, 'mode', 'Spacingd') ?? 'bilinear';
  if (mode !== 'bilinear') refuse(r.source, `Spacingd mode = "${mode}"; this package resamples with "bilinear" (trilinear) only`);

  const scale = found.get('ScaleIntensityRanged')!;
  const w = 'ScaleIntensityRanged';
  const intensity = {
    aMin: r.number(scale, 'a_min', w),
    aMax: r.number(scale, 'a_max', w),
    bMin: r.number(scale, 'b_min', w),
    bMax: r.number(scale, 'b_max', w),
    clip: r.bool(scale, 'clip', w, false),
  };
  if (intensity.aMax === intensity.aMin) refuse(r.source, `${w} has a_min = a_max = ${intensity.aMin}`);

  const inferer = r.resolve(config.inferer, 'inferer');
  if (!isObject(inferer) || targetName(inferer) !== 'SlidingWindowInferer') {
    refuse(r.source, `inferer is ${isObject(inferer) ? targetName(inferer) ?? 'an object without _target_' : 'missing'}; this package runs SlidingWindowInferer only`);
  }
  const inf = inferer as JsonObject;
  const inferAllowed = new Set(['_target_', 'roi_size', 'sw_batch_size', 'overlap', 'mode', 'sigma_scale', 'padding_mode', 'cval', 'progress', 'cache_roi_weight_map', 'device', 'sw_device']);
  for (const key of Object.keys(inf)) if (!inferAllowed.has(key)) refuse(r.source, `inferer (SlidingWindowInferer) has the argument "${key}", which this package does not reproduce`);
  const roi = r.numbers(inf, 'roi_size', 'inferer', 3);
  if (!roi.every((v) => Number.isInteger(v) && v > 0)) refuse(r.source, `inferer.roi_size ${JSON.stringify(roi)} must be 3 positive integers`);
  const swBatchSize = r.number(inf, 'sw_batch_size', 'inferer', 1);
  if (!Number.isInteger(swBatchSize) || swBatchSize < 1) refuse(r.source, `inferer.sw_batch_size = ${swBatchSize} must be a positive integer`);
  const overlap = r.number(inf, 'overlap', 'inferer', 0.25);
  if (overlap < 0 || overlap >= 1) refuse(r.source, `inferer.overlap = ${overlap} must be in [0, 1)`);
  const blend = r.string(inf, 'mode', 'inferer') ?? 'constant';
  if (blend !== 'constant' && blend !== 'gaussian') refuse(r.source, `inferer.mode = "${blend}"; this package blends with "constant" or "gaussian" only`);
  const sigma = r.resolve(inf.sigma_scale, 'inferer.sigma_scale');
  if (sigma !== undefined && sigma !== null && sigma !== 0.125) refuse(r.source, `inferer.sigma_scale = ${JSON.stringify(sigma)}; this package uses MONAI's default 0.125`);
  const padding = r.string(inf, 'padding_mode', 'inferer') ?? 'constant';
  if (padding !== 'constant') refuse(r.source, `inferer.padding_mode = "${padding}"; this package pads with "constant" only`);
  if (r.number(inf, 'cval', 'inferer', 0) !== 0) refuse(r.source, 'inferer.cval must be 0; this package pads with zeros');

  const post = r.transforms(config.postprocessing, 'postprocessing');
  const postFound = checkChain(r, post, POSTPROCESSING_ORDER, 'postprocessing', ['Activationsd', 'Invertd', 'AsDiscreted']);
  if (!r.bool(postFound.get('Activationsd')!, 'softmax', 'Activationsd', false)) {
    refuse(r.source, 'Activationsd does not apply softmax; this package applies softmax over the channels');
  }
  if (!r.bool(postFound.get('AsDiscreted')!, 'argmax', 'AsDiscreted', false)) {
    refuse(r.source, 'AsDiscreted does not take the argmax; this package labels each voxel with the argmax channel');
  }
  // MONAI's Invertd default is nearest_interp = true; the spleen bundle sets false.
  if (r.bool(postFound.get('Invertd')!, 'nearest_interp', 'Invertd', true)) {
    refuse(r.source, 'Invertd nearest_interp = true; this package inverts the resampling of the probabilities with bilinear interpolation');
  }

  return {
    pixdimMm: pixdim as unknown as Vec3,
    intensity,
    roiSize: roi as unknown as Shape3,
    swBatchSize,
    overlap,
    mode: blend,
  };
}

function readLabels(metadata: JsonObject | undefined, outChannels: number): Record<string, string> {
  const labels: Record<string, string> = { '0': 'background' };
  for (let c = 1; c < outChannels; c++) labels[String(c)] = outChannels === 2 ? 'foreground' : `label ${c}`;
  const format = metadata?.network_data_format;
  const outputs = isObject(format) ? format.outputs : undefined;
  const pred = isObject(outputs) ? (outputs.pred ?? Object.values(outputs)[0]) : undefined;
  const channelDef = isObject(pred) ? pred.channel_def : undefined;
  if (isObject(channelDef)) {
    for (const [k, v] of Object.entries(channelDef)) {
      if (/^\d+$/.test(k) && Number(k) < outChannels && typeof v === 'string' && v) labels[String(Number(k))] = v;
    }
  }
  return labels;
}

/**
 * Interprets parsed configs/inference.json (and metadata.json, optional). Throws ERR_MODEL_INVALID
 * naming the first transform, argument or network setting the package cannot reproduce.
 */
export function parseBundleConfig(inference: unknown, metadata: unknown, source = 'bundle', fallbackName = 'bundle'): BundleConfig {
  if (!isObject(inference)) refuse(source, 'configs/inference.json is not a JSON object');
  const config = inference as JsonObject;
  const r = new Resolver(config, source);
  const network = readNetwork(r, config);
  const pipeline = readPipeline(r, config);
  const meta = isObject(metadata) ? metadata : undefined;
  const text = (key: string): string | undefined => (typeof meta?.[key] === 'string' && meta[key] ? (meta[key] as string) : undefined);
  const name = text('name') ?? fallbackName;
  return {
    name,
    version: text('version') ?? '0',
    description: text('description') ?? text('task') ?? `MONAI bundle ${name}`,
    ...(text('monai_version') ? { monaiVersion: text('monai_version') } : {}),
    network,
    pipeline,
    labels: readLabels(meta, network.outChannels),
    ...(text('intended_use') ? { intendedUse: text('intended_use') } : {}),
  };
}

async function readJson(file: string, required: boolean): Promise<unknown> {
  let text: string;
  try {
    // Regular files only and at most 16 MiB: a FIFO or device in a bundle must not block or exhaust memory.
    text = new TextDecoder().decode(await readRegularFile(file, { what: 'Bundle config', maxBytes: 16 << 20 }));
  } catch (error) {
    if ((error as SpleenTrtError).code !== 'ERR_FILE_NOT_FOUND') throw error;
    if (!required) return undefined;
    const yaml = ['.yaml', '.yml'].map((ext) => file.replace(/\.json$/, ext)).find((y) => existsSync(y));
    if (yaml) {
      throw new SpleenTrtError('ERR_MODEL_INVALID', `${yaml}: YAML bundle configs are not supported; convert it to ${path.basename(file)} (the same content as JSON)`);
    }
    const bundleDir = path.dirname(path.dirname(file));
    throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `Bundle config not found: ${file} (is ${bundleDir} a MONAI bundle directory?)`, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SpleenTrtError('ERR_MODEL_INVALID', `${file} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Reads `<dir>/configs/inference.json` and `<dir>/configs/metadata.json` of a MONAI bundle.
 * @example
 * const bundle = await readBundleConfig('spleen_ct_segmentation');
 * bundle.pipeline.pixdimMm; // [1.5, 1.5, 2]
 */
export async function readBundleConfig(dir: string): Promise<BundleConfig> {
  if (typeof dir !== 'string' || dir === '') throw expectedType('a directory path', 'dir', dir);
  const inferencePath = path.join(dir, 'configs', 'inference.json');
  const inference = await readJson(inferencePath, true);
  const metadata = await readJson(path.join(dir, 'configs', 'metadata.json'), false);
  return parseBundleConfig(inference, metadata, inferencePath, path.basename(path.resolve(dir)));
}
