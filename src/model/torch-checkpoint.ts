/**
 * Reads PyTorch checkpoints (`torch.save`, zip format since torch 1.6) without Python.
 *
 * Layout: a zip whose entries share one top folder (the file stem, or `archive`): `data.pkl`, a
 * pickle of the saved object in which every tensor is
 * `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks)`
 * and every storage a persistent id `('storage', torch.FloatStorage, key, location, numel)` whose
 * bytes are the entry `data/<key>`; `byteorder` says `little` or `big` (absent: little). The
 * pickle runs in pickle-reader.ts's VM with a whitelist of globals: nothing from the file is
 * executed, and any other global stays inert and is refused by name if it is where a tensor
 * should be.
 */
import { expectedType, SpleenTrtError } from '../errors.js';
import { validateUnetWeights } from './build-unet-onnx.js';
import { PickleCallable, PickleGlobal, PickleObject, unpickle } from './pickle-reader.js';
import { DEFAULT_UNET_CONFIG, unetStateDictSpec, type UnetConfig } from './unet-architecture.js';
import { looksLikeZip, readZipDirectory, readZipEntry, type ZipEntry } from './zip-reader.js';

/** Largest data.pkl inflated. */
const MAX_PICKLE_BYTES = 64 * 1024 ** 2;

/** Element types a checkpoint's storages may hold. */
export type TorchDType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

const STORAGE_TYPES: Record<string, TorchDType> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  UntypedStorage: 'uint8',
};

/** `torch.<name>` dtype objects, which `_rebuild_tensor_v3` passes explicitly. */
const DTYPE_NAMES: Record<string, TorchDType> = {
  float32: 'float32',
  float: 'float32',
  float64: 'float64',
  double: 'float64',
  float16: 'float16',
  half: 'float16',
  bfloat16: 'bfloat16',
  int64: 'int64',
  long: 'int64',
  int32: 'int32',
  int: 'int32',
  int16: 'int16',
  short: 'int16',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
};

const DTYPE_BYTES: Record<TorchDType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** Largest tensor materialised (elements): 2^28 float32 = 1 GiB, far above any UNet layer. */
const MAX_TENSOR_ELEMENTS = 2 ** 28;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function invalid(message: string, details?: string[]): never {
  throw new SpleenTrtError('ERR_MODEL_INVALID', message, details ? { details } : {});
}

/** One storage of the checkpoint: raw bytes of `data/<key>` in the file's byte order. */
class TorchStorage {
  constructor(
    readonly key: string,
    readonly dtype: TorchDType,
    readonly bytes: Uint8Array,
    readonly littleEndian: boolean,
  ) {}

  get length(): number {
    return Math.floor(this.bytes.length / DTYPE_BYTES[this.dtype]);
  }
}

/** `torch.float32` and the like: a global that names an element type. */
class DTypeMarker extends PickleGlobal {
  constructor(
    name: string,
    readonly dtype: TorchDType,
  ) {
    super('torch', name);
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** A tensor as the checkpoint stores it: a strided view into one storage, read on demand. */
export class TorchTensor {
  /** @internal */
  constructor(
    private readonly storage: TorchStorage,
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}

  /** The element type in the file (converted to float32 by `toFloat32`). */
  get dtype(): TorchDType {
    return this.storage.dtype;
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get isContiguous(): boolean {
    let expected = 1;
    for (let d = this.shape.length - 1; d >= 0; d--) {
      if (this.shape[d] !== 1 && this.stride[d] !== expected) return false;
      expected *= this.shape[d];
    }
    return true;
  }

  /** The values in C order as float32 (float16/bfloat16/float64/integers converted). */
  toFloat32(): Float32Array {
    const n = this.numel;
    const out = new Float32Array(n);
    if (n === 0) return out;
    const { dtype, bytes, littleEndian } = this.storage;
    const size = DTYPE_BYTES[dtype];
    if (dtype === 'float32' && littleEndian === LITTLE_ENDIAN_HOST && this.isContiguous) {
      // One copy, which also realigns: zip entries need not start at a multiple of 4.
      const start = this.storageOffset * 4;
      new Uint8Array(out.buffer).set(bytes.subarray(start, start + n * 4));
      return out;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const read = (index: number): number => {
      const at = index * size;
      switch (dtype) {
        case 'float32':
          return view.getFloat32(at, littleEndian);
        case 'float64':
          return view.getFloat64(at, littleEndian);
        case 'float16':
          return halfToFloat(view.getUint16(at, littleEndian));
        case 'bfloat16':
          return new Float32Array(new Uint32Array([view.getUint16(at, littleEndian) << 16]).buffer)[0];
        case 'int64':
          return Number(view.getBigInt64(at, littleEndian));
        case 'int32':
          return view.getInt32(at, littleEndian);
        case 'int16':
          return view.getInt16(at, littleEndian);
        case 'int8':
          return view.getInt8(at);
        case 'uint8':
        case 'bool':
          return view.getUint8(at);
      }
    };
    // Odometer over the multi-index, C order; `index` follows it through the strides.
    const rank = this.shape.length;
    const counter = new Array<number>(rank).fill(0);
    let index = this.storageOffset;
    for (let i = 0; i < n; i++) {
      out[i] = read(index);
      for (let d = rank - 1; d >= 0; d--) {
        counter[d]++;
        index += this.stride[d];
        if (counter[d] < this.shape[d]) break;
        index -= this.stride[d] * this.shape[d];
        counter[d] = 0;
      }
    }
    return out;
  }
}

/** A parsed checkpoint: the saved object with tensors as TorchTensor, dicts as Map, lists/tuples as arrays. */
export interface TorchCheckpoint {
  root: unknown;
  /** The archive's top folder (the saved file's stem, or `archive`). */
  archiveName: string;
  byteOrder: 'little' | 'big';
}

const LEGACY_HINT =
  'Re-save it with torch >= 1.6 in the zip format: python -c "import torch; torch.save(torch.load(\'model.pt\'), \'model.pt\')"';

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function rebuildTensor(source: string, args: readonly unknown[], dtypeOverride?: TorchDType): TorchTensor {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage)) invalid(`${source}: a tensor without a storage`);
  if (!isNonNegativeInt(offset)) invalid(`${source}: tensor storage offset ${String(offset)} is not a non-negative integer`);
  if (!Array.isArray(size) || !size.every(isNonNegativeInt)) invalid(`${source}: tensor size is not a list of non-negative integers`);
  if (!Array.isArray(stride) || stride.length !== size.length || !stride.every(isNonNegativeInt)) {
    invalid(`${source}: tensor stride does not match its size [${size.join(', ')}]`);
  }
  let s = storage;
  if (dtypeOverride && dtypeOverride !== s.dtype) s = new TorchStorage(s.key, dtypeOverride, s.bytes, s.littleEndian);
  const numel = (size as number[]).reduce((a, b) => a * b, 1);
  if (numel > MAX_TENSOR_ELEMENTS) invalid(`${source}: tensor of shape [${size.join(', ')}] is too large`);
  if (numel > 0) {
    const last = (size as number[]).reduce((acc, n, d) => acc + (n - 1) * (stride as number[])[d], offset as number);
    if (last >= s.length) {
      invalid(
        `${source}: tensor [${size.join(', ')}] at offset ${offset} with stride [${stride.join(', ')}] reads element ${last} ` +
          `of storage ${s.key}, which holds ${s.length} (truncated checkpoint?)`,
      );
    }
  }
  return new TorchTensor(s, offset as number, size as number[], stride as number[]);
}

/**
 * Parses a `torch.save` zip checkpoint. Throws ERR_MODEL_INVALID for a corrupt or truncated file,
 * a pre-1.6 (non-zip) checkpoint, a TorchScript archive, or a pickle this reader cannot follow.
 * @example
 * const { root } = readTorchCheckpoint(readFileSync('models/model.pt'));
 */
export function readTorchCheckpoint(bytes: Uint8Array, source = 'checkpoint'): TorchCheckpoint {
  if (!(bytes instanceof Uint8Array)) throw expectedType('a Uint8Array', 'bytes', bytes);
  if (!looksLikeZip(bytes)) {
    if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5) {
      invalid(`${source} is a legacy (pre-1.6, non-zip) PyTorch checkpoint, which this reader does not support. ${LEGACY_HINT}`);
    }
    invalid(`${source} is not a PyTorch checkpoint (expected the zip archive torch.save writes)`);
  }
  const entries = readZipDirectory(bytes);
  const pickleEntry = entries.find((e) => /^[^/]+\/data\.pkl$/.test(e.name)) ?? entries.find((e) => e.name === 'data.pkl');
  if (!pickleEntry) {
    if (entries.some((e) => /(^|\/)constants\.pkl$/.test(e.name) || /(^|\/)code\//.test(e.name))) {
      invalid(`${source} is a TorchScript archive (torch.jit.save, like a bundle's model.ts), not a state_dict checkpoint; import models/model.pt or an ONNX export instead`);
    }
    invalid(`${source} is a zip archive without data.pkl: not a PyTorch checkpoint`);
  }
  const slash = pickleEntry.name.lastIndexOf('/');
  const prefix = slash >= 0 ? pickleEntry.name.slice(0, slash + 1) : '';
  const byName = new Map<string, ZipEntry>(entries.map((e) => [e.name, e]));

  let byteOrder: 'little' | 'big' = 'little';
  const byteOrderEntry = byName.get(`${prefix}byteorder`);
  if (byteOrderEntry) {
    const text = new TextDecoder().decode(readZipEntry(bytes, byteOrderEntry)).trim();
    if (text !== 'little' && text !== 'big') invalid(`${source}: byteorder record says "${text.slice(0, 20)}"`);
    byteOrder = text;
  }

  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: unknown): TorchStorage => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) invalid(`${source}: unsupported persistent id (not a tensor storage)`);
    const [, type, key] = pid as unknown[];
    let dtype: TorchDType | undefined;
    if (type instanceof DTypeMarker) dtype = type.dtype;
    else if (type instanceof PickleGlobal && type.module === 'torch') dtype = STORAGE_TYPES[type.name];
    if (!dtype) invalid(`${source}: unsupported storage type ${type instanceof PickleGlobal ? type.qualifiedName : String(type)}`);
    if (typeof key !== 'string') invalid(`${source}: storage key is not a string`);
    const cached = storages.get(key as string);
    if (cached) return cached.dtype === dtype ? cached : new TorchStorage(cached.key, dtype!, cached.bytes, cached.littleEndian);
    const entry = byName.get(`${prefix}data/${key as string}`);
    if (!entry) invalid(`${source}: storage data/${key as string} is missing from the archive (truncated checkpoint?)`);
    const storage = new TorchStorage(key as string, dtype!, readZipEntry(bytes, entry!), byteOrder === 'little');
    storages.set(key as string, storage);
    return storage;
  };

  const at = `${source} (${pickleEntry.name})`;
  const findClass = (module: string, name: string): PickleCallable | PickleGlobal => {
    const qualified = `${module}.${name}`;
    switch (qualified) {
      case 'collections.OrderedDict':
        return new PickleCallable(qualified, (args) => {
          const map = new Map<unknown, unknown>();
          const items = args[0];
          if (Array.isArray(items)) for (const pair of items) if (Array.isArray(pair) && pair.length === 2) map.set(pair[0], pair[1]);
          return map;
        });
      case 'torch._utils._rebuild_tensor':
      case 'torch._utils._rebuild_tensor_v2':
        return new PickleCallable(qualified, (args) => rebuildTensor(at, args));
      case 'torch._utils._rebuild_tensor_v3': {
        return new PickleCallable(qualified, (args) => {
          const dtype = args[6];
          if (!(dtype instanceof DTypeMarker)) invalid(`${at}: _rebuild_tensor_v3 with an unsupported dtype`);
          return rebuildTensor(at, args, dtype.dtype);
        });
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
        return new PickleCallable(qualified, (args) => {
          if (!(args[0] instanceof TorchTensor)) invalid(`${at}: a Parameter without tensor data`);
          return args[0];
        });
    }
    if (module === 'torch' && name in STORAGE_TYPES) return new PickleGlobal(module, name);
    if (module === 'torch' && name in DTYPE_NAMES) return new DTypeMarker(name, DTYPE_NAMES[name]);
    return new PickleGlobal(module, name);
  };

  // The pickle is the object graph only (tensors live in other entries): a few KB for a UNet.
  const root = unpickle(readZipEntry(bytes, pickleEntry, MAX_PICKLE_BYTES), { findClass, persistentLoad, source: at });
  return { root, archiveName: prefix.replace(/\/$/, ''), byteOrder };
}

/** A dict of tensors found in a checkpoint. */
export interface StateDictCandidate {
  /** Where it was: `''` for the root, else the key path, e.g. `model` or `checkpoint.state_dict`. */
  path: string;
  /** Keys as stored (prefix not yet removed). */
  tensors: Map<string, TorchTensor>;
  /** Values that are not tensors: key -> what they are. */
  nonTensors: Map<string, string>;
}

/** Keys under which training scripts nest a state_dict, most common first. */
const NESTING_KEYS = ['state_dict', 'model', 'network', 'model_state_dict', 'net', 'module', 'weights', 'params'];

function describeValue(v: unknown): string {
  if (v instanceof TorchTensor) return `tensor [${v.shape.join(', ')}]`;
  if (v instanceof PickleObject) return `${v.global.qualifiedName} object`;
  if (v instanceof PickleGlobal) return v.qualifiedName;
  if (v instanceof Map) return `dict of ${v.size}`;
  if (Array.isArray(v)) return `list of ${v.length}`;
  if (v === null) return 'None';
  return typeof v;
}

/** Every dict of tensors at the root or nested up to two levels under string keys, preferred ones first. */
export function findStateDicts(root: unknown): StateDictCandidate[] {
  const out: StateDictCandidate[] = [];
  const seen = new Set<unknown>();
  const visit = (value: unknown, path: string, depth: number): void => {
    if (!(value instanceof Map) || seen.has(value)) return;
    seen.add(value);
    const tensors = new Map<string, TorchTensor>();
    const nonTensors = new Map<string, string>();
    for (const [k, v] of value) {
      if (typeof k !== 'string') continue;
      if (v instanceof TorchTensor) tensors.set(k, v);
      else nonTensors.set(k, describeValue(v));
    }
    if (tensors.size > 0 && tensors.size >= nonTensors.size) out.push({ path, tensors, nonTensors });
    if (depth >= 2) return;
    const keys = [...value.keys()].filter((k): k is string => typeof k === 'string');
    keys.sort((a, b) => rank(a) - rank(b));
    for (const k of keys) visit(value.get(k), path ? `${path}.${k}` : k, depth + 1);
  };
  const rank = (k: string): number => {
    const i = NESTING_KEYS.indexOf(k);
    return i < 0 ? NESTING_KEYS.length : i;
  };
  visit(root, '', 0);
  return out;
}

/** Wrapper prefixes: DataParallel/DistributedDataParallel (`module.`), torch.compile (`_orig_mod.`). */
const WRAPPER_PREFIXES = ['module.', '_orig_mod.'];

/** Removes wrapper prefixes that every key carries; returns the new map and what was removed. */
export function stripWrapperPrefixes<T>(tensors: Map<string, T>): { tensors: Map<string, T>; stripped: string } {
  let current = tensors;
  let stripped = '';
  for (let guard = 0; guard < 8 && current.size > 0; guard++) {
    const prefix = WRAPPER_PREFIXES.find((p) => [...current.keys()].every((k) => k.startsWith(p)));
    if (!prefix) break;
    current = new Map([...current].map(([k, v]) => [k.slice(prefix.length), v]));
    stripped += prefix;
  }
  return { tensors: current, stripped };
}

export interface ReadUnetCheckpointOptions {
  /** The network's hyper-parameters (from the bundle's network_def); default the spleen bundle's. */
  config?: UnetConfig;
  /** Name for messages (a path). */
  source?: string;
}

export interface UnetCheckpoint {
  /** Every state_dict key of the architecture (num_batches_tracked where present) as float32. */
  weights: Map<string, Float32Array>;
  /** Where the state_dict was: `''` (bare), `model`, `state_dict`, ... */
  path: string;
  /** Wrapper prefix removed from every key (`module.`), or `''`. */
  strippedPrefix: string;
  /** Keys stored in another dtype than float32, converted: key -> dtype. */
  converted: Record<string, TorchDType>;
}

const MAX_LISTED = 8;

/**
 * The encoder channels a MONAI UNet checkpoint's shapes imply (output channels of each level's
 * first conv, following `model.1.submodule...`), for a hint when they differ from the config.
 */
function apparentChannels(tensors: Map<string, TorchTensor>): number[] {
  const channels: number[] = [];
  let prefix = 'model';
  for (let level = 0; level < 16; level++) {
    const t = tensors.get(`${prefix}.0.conv.unit0.conv.weight`) ?? tensors.get(`${prefix}.0.conv.weight`);
    if (!t || t.shape.length !== 5) break;
    channels.push(t.shape[0]);
    const bottom = tensors.get(`${prefix}.1.submodule.conv.unit0.conv.weight`) ?? tensors.get(`${prefix}.1.submodule.conv.weight`);
    if (bottom && bottom.shape.length === 5) {
      channels.push(bottom.shape[0]);
      break;
    }
    prefix = `${prefix}.1.submodule`;
  }
  return channels;
}

function listed(items: string[]): string {
  const shown = items.slice(0, MAX_LISTED).join(', ');
  return items.length > MAX_LISTED ? `${shown}, ... (${items.length} in all)` : shown;
}

/**
 * Reads a MONAI UNet's weights from a `torch.save` checkpoint: a bare state_dict, one nested under
 * `state_dict`/`model`/`network`/..., keys with or without a `module.` prefix. Every key of
 * `unetStateDictSpec(config)` must be present with its exact shape; ERR_MODEL_INVALID lists the
 * missing, unexpected and mis-shaped keys otherwise.
 * @example
 * const { weights } = readUnetCheckpoint(readFileSync('models/model.pt'));
 * const onnx = buildUnetOnnx(weights);
 */
export function readUnetCheckpoint(bytes: Uint8Array, options: ReadUnetCheckpointOptions = {}): UnetCheckpoint {
  const source = options.source ?? 'checkpoint';
  const config = options.config ?? DEFAULT_UNET_CONFIG;
  const spec = unetStateDictSpec(config);
  const { root } = readTorchCheckpoint(bytes, source);
  const candidates = findStateDicts(root);
  if (candidates.length === 0) {
    if (root instanceof PickleObject) {
      invalid(`${source} pickles a whole ${root.global.qualifiedName} object rather than a state_dict; save model.state_dict() instead`);
    }
    const top = root instanceof Map ? [...root].map(([k, v]) => `${String(k)} (${describeValue(v)})`) : [describeValue(root)];
    invalid(`${source} holds no state_dict (a dict of tensors); found: ${listed(top)}`);
  }
  // The candidate whose keys (after wrapper prefixes) match the architecture best; ties: nesting order.
  const specNames = new Set(spec.map((e) => e.name));
  const scored = candidates.map((c) => {
    const stripped = stripWrapperPrefixes(c.tensors);
    const hits = [...stripped.tensors.keys()].filter((k) => specNames.has(k)).length;
    return { c, stripped, hits };
  });
  const best = scored.reduce((a, b) => (b.hits > a.hits ? b : a));
  const { tensors, stripped } = best.stripped;
  const where = best.c.path ? ` (state_dict under "${best.c.path}")` : '';

  const missing: string[] = [];
  const misShaped: string[] = [];
  for (const entry of spec) {
    const t = tensors.get(entry.name);
    if (!t) {
      if (!entry.name.endsWith('.num_batches_tracked')) missing.push(entry.name);
      continue;
    }
    if (t.shape.length !== entry.shape.length || t.shape.some((n, i) => n !== entry.shape[i])) {
      misShaped.push(`${entry.name} (expected [${entry.shape.join(', ')}], got [${t.shape.join(', ')}])`);
    }
  }
  const unexpected = [...tensors.keys()].filter((k) => !specNames.has(k));
  const nonTensorKeys = [...best.c.nonTensors].filter(([k]) => specNames.has(k.replace(/^(module\.|_orig_mod\.)+/, '')));
  if (missing.length + misShaped.length + unexpected.length + nonTensorKeys.length > 0) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing ${missing.length}: ${listed(missing)}`);
    if (unexpected.length) parts.push(`unexpected ${unexpected.length}: ${listed(unexpected)}`);
    if (misShaped.length) parts.push(`wrong shape ${misShaped.length}: ${listed(misShaped)}`);
    if (nonTensorKeys.length) parts.push(`not a tensor ${nonTensorKeys.length}: ${listed(nonTensorKeys.map(([k, d]) => `${k} (${d})`))}`);
    const net = `UNet channels (${config.channels.join(', ')}), strides (${config.strides.slice(0, config.channels.length - 1).join(', ')}), num_res_units ${config.numResUnits}, ${config.inChannels} -> ${config.outChannels} channels`;
    const seen = apparentChannels(tensors);
    const hint =
      seen.length >= 2 && seen.join() !== config.channels.join()
        ? `. Its shapes look like channels (${seen.join(', ')}): import the bundle directory (its configs/inference.json has the network) or give the network explicitly`
        : '';
    invalid(`${source}${where} does not match the ${net}: ${parts.join('; ')}${hint}`, [
      ...missing.map((k) => `missing ${k}`),
      ...unexpected.map((k) => `unexpected ${k}`),
      ...misShaped.map((k) => `wrong shape ${k}`),
      ...nonTensorKeys.map(([k, d]) => `not a tensor ${k} (${d})`),
    ]);
  }

  const weights = new Map<string, Float32Array>();
  const converted: Record<string, TorchDType> = {};
  for (const entry of spec) {
    const t = tensors.get(entry.name);
    if (!t) continue;
    weights.set(entry.name, t.toFloat32());
    if (t.dtype !== 'float32' && !entry.name.endsWith('.num_batches_tracked')) converted[entry.name] = t.dtype;
  }
  for (const [name, values] of weights) {
    if (name.endsWith('.num_batches_tracked')) continue;
    if (!values.every(Number.isFinite)) invalid(`${source}: tensor ${name} holds NaN or infinite values`);
  }
  return { weights: validateUnetWeights(weights, config), path: best.c.path, strippedPrefix: stripped, converted };
}
