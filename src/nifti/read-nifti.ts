/**
 * NIfTI-1 / NIfTI-2 reader (.nii and .nii.gz, either byte order) producing the package's Volume,
 * with the reference loader's affine choice, consistency repair and intensity scaling
 * (spec section 1; MONAI 1.4 LoadImage + NibabelReader on nibabel 5).
 *
 * Every check runs on the header before any voxel buffer is allocated or any gzip stream is fully
 * inflated; bad input of any kind ends in SpleenTrtError('ERR_NIFTI_INVALID'), a missing file in
 * 'ERR_FILE_NOT_FOUND'.
 */
import type { FileHandle } from 'node:fs/promises';
import { inputFileError, openRegularFile, readExactly } from '../io/read-regular-file.js';
import { expectedRange, expectedType, SpleenTrtError } from '../errors.js';
import type { Shape3, Volume } from '../volume/volume.js';
import { type AffineSource, type ChosenAffine, chooseAffine, columnNormsNumpy } from './nifti-affine.js';
import { capFor, gunzipCapped, gunzipCappedAsync, gunzipPrefix, isGzip } from './nifti-gzip.js';
import {
  datatypeInfo,
  decodeNiftiHeader,
  invalid,
  NIFTI1_MIN_VOX_OFFSET,
  NIFTI2_HEADER_SIZE,
  NIFTI2_MIN_VOX_OFFSET,
  type NiftiDatatypeInfo,
  type NiftiDatatypeName,
  type NiftiHeader,
} from './nifti-header.js';
import { checkNiftiDeclaredSize, DEFAULT_MAX_NIFTI_BYTES, type NiftiSizeLimits } from './nifti-limits.js';
import { decodeVoxels, decodeVoxelsAsync, type ReadScaling } from './nifti-voxels.js';
import { streamDecodeVoxels } from './streamed-decode.js';
import { DEFAULT_VOLUME_LIMITS, geometryProblem } from '../volume/volume-limits.js';

/** Default voxel limit: 2^28 voxels (512x512x1024; a 1 GiB float32 volume). */
export const DEFAULT_MAX_VOXELS = DEFAULT_VOLUME_LIMITS.maxVoxels;

/** Bytes a .nii.gz may inflate to beyond what its header needs (trailing padding). */
const TRAILING_MARGIN_BYTES = 1 << 20;
/**
 * Largest accepted gap between the header and vox_offset (extensions). Without a bound, an absurd
 * vox_offset would license a gzip stream to inflate to gigabytes before the data is even reached.
 */
const MAX_EXTENSION_BYTES = 256 << 20;

export interface ReadNiftiOptions {
  /** Refuse images with more voxels than this (ERR_INPUT_TOO_LARGE, from the header, before allocating); default 2^28. */
  maxVoxels?: number;
  /** Refuse images whose stored voxel data is larger (ERR_INPUT_TOO_LARGE, from the header, before inflating); default 2 GiB. */
  maxBytes?: number;
  /** Plausible voxel sizes (affine column norms), mm; default [0.01, 50]. Outside: ERR_NIFTI_INVALID. */
  minSpacingMm?: number;
  maxSpacingMm?: number;
}

interface ReadLimits extends NiftiSizeLimits {
  minSpacingMm: number;
  maxSpacingMm: number;
}

/** A decoded single-volume NIfTI file. */
export interface NiftiImage {
  /** Header fields as stored in the file. */
  header: NiftiHeader;
  /** float32 C-order voxels (scaled), shape (i, j, k), the chosen affine and its column norms. */
  volume: Volume;
  /** The header transform the affine came from, after the consistency repair. */
  affineSource: AffineSource;
  /** True when the sform/qform consistency repair replaced the transform the codes selected. */
  affineRepaired: boolean;
  /** The datatype stored in the file. */
  rawDatatype: NiftiDatatypeName;
}

/** A volume with several stacked 3-D channels; data `[c][i][j][k]` C order. */
export interface MultiChannelVolume extends Volume {
  channels: number;
}

/** A decoded NIfTI file whose 4th (or 5th) dimension holds channels. */
export interface NiftiChannelImage extends Omit<NiftiImage, 'volume'> {
  volume: MultiChannelVolume;
}

/** Everything known from the header alone: checked, before any voxel is touched. */
interface ReadPlan {
  header: NiftiHeader;
  dt: NiftiDatatypeInfo;
  shape: Shape3;
  channels: number;
  voxOffset: number;
  /** vox_offset + voxel bytes: how much of the (inflated) file the image needs. */
  neededBytes: number;
  scaling: ReadScaling | undefined;
  chosen: ChosenAffine;
}

function validateOptions(options: ReadNiftiOptions | undefined): ReadLimits {
  const limits: ReadLimits = {
    maxVoxels: DEFAULT_MAX_VOXELS,
    maxBytes: DEFAULT_MAX_NIFTI_BYTES,
    minSpacingMm: DEFAULT_VOLUME_LIMITS.minSpacingMm,
    maxSpacingMm: DEFAULT_VOLUME_LIMITS.maxSpacingMm,
  };
  if (options === undefined) return limits;
  if (typeof options !== 'object' || options === null) throw expectedType('an options object', 'options', options);
  for (const key of ['maxVoxels', 'maxBytes'] as const) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw expectedRange('a positive safe integer', `options.${key}`, value);
    limits[key] = value;
  }
  for (const key of ['minSpacingMm', 'maxSpacingMm'] as const) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw expectedRange('a positive finite number', `options.${key}`, value);
    limits[key] = value;
  }
  return limits;
}

/** nibabel's get_slope_inter: slope 0 or non-finite means no scaling; (1, 0) is a no-op. */
function readScaling(h: NiftiHeader): ReadScaling | undefined {
  const slope = h.scl_slope;
  const inter = h.scl_inter;
  if (slope === 0 || !Number.isFinite(slope)) return undefined;
  if (!Number.isFinite(inter)) throw invalid(`scl_inter is ${inter} while scl_slope ${slope} is valid`);
  if (slope === 1 && inter === 0) return undefined;
  return { slope, inter };
}

function planRead(header: NiftiHeader, limits: ReadLimits, allowChannels: boolean): ReadPlan {
  // Declared sizes first: nothing past this point allocates more than the limits allow.
  checkNiftiDeclaredSize(header, limits);
  const dim = header.dim;
  const rank = dim[0];
  if (!Number.isInteger(rank) || rank < 1 || rank > 7) throw invalid(`dim[0] = ${rank} is outside 1..7`);
  for (let i = 1; i <= rank; i++) {
    if (!Number.isSafeInteger(dim[i]) || dim[i] < 1) throw invalid(`dim[${i}] = ${dim[i]} is not a positive size`);
  }
  if (rank < 3) {
    throw invalid(`a ${rank}-D image (dim[0] = ${rank}); a single 3-D volume is required`);
  }
  const extra = dim.slice(4, rank + 1);
  const stacked = extra.filter((n) => n > 1);
  let channels = 1;
  if (stacked.length > 0) {
    const what = `dim = [${dim.slice(0, rank + 1).join(', ')}]`;
    if (!allowChannels) {
      throw invalid(`${what} holds ${extra.reduce((a, b) => a * b, 1)} volumes; only a single 3-D volume is supported`);
    }
    if (stacked.length > 1) throw invalid(`${what} has more than one non-singleton dimension past the 3rd`);
    channels = stacked[0];
  }
  const shape: Shape3 = [dim[1], dim[2], dim[3]];
  const voxels = shape[0] * shape[1] * shape[2] * channels;
  const dt = datatypeInfo(header.datatype);
  if (header.bitpix !== dt.bytes * 8) {
    throw invalid(`bitpix ${header.bitpix} does not match datatype ${dt.name} (${dt.bytes * 8} bits)`);
  }
  const minOffset = header.version === 1 ? NIFTI1_MIN_VOX_OFFSET : NIFTI2_MIN_VOX_OFFSET;
  if (!Number.isFinite(header.vox_offset) || header.vox_offset < minOffset) {
    throw invalid(`vox_offset ${header.vox_offset} lies inside the header (single-file NIfTI-${header.version} data starts at ${minOffset} or later)`);
  }
  if (header.vox_offset > minOffset + MAX_EXTENSION_BYTES) {
    throw invalid(`vox_offset ${header.vox_offset} would put ${header.vox_offset - minOffset} bytes of extensions before the data`);
  }
  // nibabel truncates a fractional vox_offset (int()).
  const voxOffset = Math.floor(header.vox_offset);
  for (let i = 1; i <= 3; i++) {
    if (!Number.isFinite(header.pixdim[i])) throw invalid(`pixdim[${i}] = ${header.pixdim[i]} is not finite`);
  }
  const chosen = chooseAffine(header);
  if (!chosen.affine.every(Number.isFinite)) {
    throw invalid(`the ${chosen.source} affine has non-finite entries`);
  }
  // Geometry no scanner writes (parallel axes, 1e30 mm voxels) would only fail later, deep in the pipeline.
  const problem = geometryProblem(chosen.affine, limits);
  if (problem) throw invalid(`the ${chosen.source} geometry is implausible: ${problem}`);
  return {
    header,
    dt,
    shape,
    channels,
    voxOffset,
    neededBytes: voxOffset + voxels * dt.bytes,
    scaling: readScaling(header),
    chosen,
  };
}

/** Runs an allocation; a refused one (RangeError from the typed-array constructor) becomes ERR_OUT_OF_MEMORY. */
function allocating<T>(what: string, make: () => T): T {
  try {
    return make();
  } catch (error) {
    throw outOfMemory(what, error);
  }
}

async function allocatingAsync<T>(what: string, make: () => Promise<T>): Promise<T> {
  try {
    return await make();
  } catch (error) {
    throw outOfMemory(what, error);
  }
}

function outOfMemory(what: string, error: unknown): unknown {
  if (error instanceof RangeError) {
    return new SpleenTrtError('ERR_OUT_OF_MEMORY', `Could not allocate ${what} (${error.message}); see options.maxVoxels`, { cause: error });
  }
  return error;
}

/** Throws when `bytes` (the whole inflated file) cannot hold what the plan needs. */
function checkDataLength(plan: ReadPlan, bytes: Uint8Array): void {
  const { dt, shape, channels, voxOffset, neededBytes } = plan;
  if (voxOffset >= bytes.length) {
    throw invalid(`vox_offset ${voxOffset} is past the end of the data (${bytes.length} bytes)`);
  }
  if (bytes.length < neededBytes) {
    throw invalid(
      `truncated data: ${bytes.length - voxOffset} bytes of voxel data after vox_offset ${voxOffset}, ` +
        `the header's ${shape.join('x')}${channels > 1 ? `x${channels}` : ''} ${dt.name} image needs ${neededBytes - voxOffset}`,
    );
  }
}

function imageOf(plan: ReadPlan, data: Float32Array): NiftiChannelImage {
  const { header, dt, shape, channels, chosen } = plan;
  return {
    header,
    volume: { data, shape, spacingMm: columnNormsNumpy(chosen.affine), affine: chosen.affine, channels },
    affineSource: chosen.source,
    affineRepaired: chosen.repaired,
    rawDatatype: dt.name,
  };
}

function decodeWithPlan(plan: ReadPlan, bytes: Uint8Array): NiftiChannelImage {
  checkDataLength(plan, bytes);
  const { dt, shape, channels, voxOffset, header } = plan;
  const data = allocating(`the ${shape.join('x')} volume`, () =>
    decodeVoxels(bytes, voxOffset, { shape, channels }, dt, header.littleEndian, plan.scaling),
  );
  return imageOf(plan, data);
}

/** As decodeWithPlan, the transpose off the JS thread where the addon has it. */
async function decodeWithPlanAsync(plan: ReadPlan, bytes: Uint8Array): Promise<NiftiChannelImage> {
  checkDataLength(plan, bytes);
  const { dt, shape, channels, voxOffset, header } = plan;
  const data = await allocatingAsync(`the ${shape.join('x')} volume`, () =>
    decodeVoxelsAsync(bytes, voxOffset, { shape, channels }, dt, header.littleEndian, plan.scaling),
  );
  return imageOf(plan, data);
}

/**
 * A whole .nii.gz decoded with its plan: streamed (ISA-L inflating while the slices already
 * inflated are decoded) where the addon can, else inflated (libdeflate or zlib) then decoded.
 */
async function decodeGzipWithPlanAsync(plan: ReadPlan, gz: Uint8Array): Promise<NiftiChannelImage> {
  const { dt, shape, channels, voxOffset, header } = plan;
  const maxBytes = plan.neededBytes + TRAILING_MARGIN_BYTES;
  const streamed = await allocatingAsync(`the ${shape.join('x')} volume`, () =>
    streamDecodeVoxels(gz, capFor(maxBytes), voxOffset, { shape, channels }, dt, header.littleEndian, plan.scaling),
  );
  if (streamed !== null) return imageOf(plan, streamed);
  return decodeWithPlanAsync(plan, await gunzipCappedAsync(gz, maxBytes));
}

function toSingle(image: NiftiChannelImage): NiftiImage {
  const { data, shape, spacingMm, affine } = image.volume;
  return { ...image, volume: { data, shape, spacingMm, affine } };
}

function checkBytes(bytes: unknown): asserts bytes is Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw expectedType('a Uint8Array', 'bytes', bytes);
}

/** Header plan of an in-memory file (plain or gzip), inflating at most the header region. */
function planBytes(bytes: Uint8Array, limits: ReadLimits, allowChannels: boolean): ReadPlan {
  const head = isGzip(bytes) ? gunzipPrefix(bytes, NIFTI2_HEADER_SIZE) : bytes;
  return planRead(decodeNiftiHeader(head), limits, allowChannels);
}

function parseAny(bytes: Uint8Array, options: ReadNiftiOptions | undefined, allowChannels: boolean): NiftiChannelImage {
  checkBytes(bytes);
  const limits = validateOptions(options);
  const plan = planBytes(bytes, limits, allowChannels);
  const data = isGzip(bytes) ? gunzipCapped(bytes, plan.neededBytes + TRAILING_MARGIN_BYTES) : bytes;
  return decodeWithPlan(plan, data);
}

/** Decodes an in-memory .nii or .nii.gz (gzip detected by its magic bytes) synchronously. */
export function parseNifti(bytes: Uint8Array, options?: ReadNiftiOptions): NiftiImage {
  return toSingle(parseAny(bytes, options, false));
}

/** As parseNifti, but a 4th (or 5th) dimension is returned as channels instead of rejected. */
export function parseNiftiChannels(bytes: Uint8Array, options?: ReadNiftiOptions): NiftiChannelImage {
  return parseAny(bytes, options, true);
}

async function readAt(path: string, handle: FileHandle, length: number): Promise<Uint8Array> {
  try {
    return await readExactly(handle, length, path);
  } catch (error) {
    if (error instanceof RangeError) {
      throw new SpleenTrtError('ERR_OUT_OF_MEMORY', `Could not allocate ${length} bytes for ${path}`, { cause: error });
    }
    throw error instanceof SpleenTrtError ? error : inputFileError(error, path, 'NIfTI file');
  }
}

/**
 * Reads only what the header says is needed: the whole file for gzip (`gzip`: still compressed),
 * the image bytes otherwise.
 */
async function readFileBytes(path: string, limits: ReadLimits, allowChannels: boolean): Promise<{ plan: ReadPlan; bytes: Uint8Array; gzip: boolean }> {
  // A FIFO, device or symlink loop is refused here, before any read could block or never end.
  const { handle, size } = await openRegularFile(path, { what: 'NIfTI file', directoryError: (file) => invalid(`${file} is a directory`) });
  try {
    const head = await readAt(path, handle, Math.min(size, 4096));
    if (isGzip(head)) {
      let whole = size <= head.length ? head : undefined;
      let prefix = gunzipPrefix(whole ?? head, NIFTI2_HEADER_SIZE);
      // Only an unusually long gzip member header (file name, extra field) needs more than 4 KiB.
      if (prefix.length < NIFTI2_HEADER_SIZE && whole === undefined) {
        whole = await readAt(path, handle, size);
        prefix = gunzipPrefix(whole, NIFTI2_HEADER_SIZE);
      }
      const plan = planRead(decodeNiftiHeader(prefix), limits, allowChannels);
      // Deflate never grows data by more than a few bytes per 64 KiB block: a file much bigger
      // than the image its header declares is refused before it is read.
      const limit = plan.neededBytes + Math.ceil(plan.neededBytes / 64) + TRAILING_MARGIN_BYTES;
      if (size > limit) {
        throw invalid(`${path} holds ${size} bytes of gzip, more than the ${plan.neededBytes}-byte image its header declares could need`);
      }
      whole ??= await readAt(path, handle, size);
      return { plan, bytes: whole, gzip: true };
    }
    const plan = planRead(decodeNiftiHeader(head), limits, allowChannels);
    const bytes = size <= head.length ? head : await readAt(path, handle, Math.min(size, plan.neededBytes));
    return { plan, bytes, gzip: false };
  } finally {
    await handle.close();
  }
}

async function readAny(pathOrBytes: string | Uint8Array, options: ReadNiftiOptions | undefined, allowChannels: boolean): Promise<NiftiChannelImage> {
  if (typeof pathOrBytes !== 'string' && !(pathOrBytes instanceof Uint8Array)) {
    throw expectedType('a file path or a Uint8Array', 'pathOrBytes', pathOrBytes);
  }
  const limits = validateOptions(options);
  if (typeof pathOrBytes === 'string') {
    const { plan, bytes, gzip } = await readFileBytes(pathOrBytes, limits, allowChannels);
    return gzip ? decodeGzipWithPlanAsync(plan, bytes) : decodeWithPlanAsync(plan, bytes);
  }
  const plan = planBytes(pathOrBytes, limits, allowChannels);
  return isGzip(pathOrBytes) ? decodeGzipWithPlanAsync(plan, pathOrBytes) : decodeWithPlanAsync(plan, pathOrBytes);
}

/**
 * Reads a .nii / .nii.gz file (or its bytes) into a float32 volume with the reference loader's
 * affine and scaling. Gzip is inflated on the thread pool.
 * @example
 * const { volume, affineSource } = await readNifti('ct.nii.gz');
 */
export async function readNifti(pathOrBytes: string | Uint8Array, options?: ReadNiftiOptions): Promise<NiftiImage> {
  return toSingle(await readAny(pathOrBytes, options, false));
}

/** As readNifti, but a 4th (or 5th) dimension is returned as channels instead of rejected. */
export async function readNiftiChannels(pathOrBytes: string | Uint8Array, options?: ReadNiftiOptions): Promise<NiftiChannelImage> {
  return readAny(pathOrBytes, options, true);
}
