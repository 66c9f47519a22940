/**
 * NIfTI-1 writer: what the bundle's SaveImage produces (spec section 7: a fresh header with
 * sform_code = qform_code = 1), plus multi-channel output for stage dumps.
 *
 * The sform holds the affine rows (float32); the qform is nibabel's set_qform of the same affine
 * (column norms as pixdim, qfac = sign of the determinant, shears stripped by polar decomposition,
 * mat2quat), so readers that prefer either transform agree.
 */
import { expectedRange, expectedType } from '../errors.js';
import { writeFileAtomic } from '../write-file-atomic.js';
import { roundHalfEven } from '../volume/numpy-linalg.js';
import type { Shape3, Vec3 } from '../volume/volume.js';
import { affineToQform } from './nifti-affine.js';
import { runDeflate } from '../native/run-deflate.js';
import { gzipPieces, type PieceSource } from './gzip-pieces.js';
import { gzipSync } from './nifti-gzip.js';
import { encodeNifti1Header, NIFTI1_HEADER_SIZE, NIFTI1_MIN_VOX_OFFSET, NIFTI_DATATYPES, type NiftiHeader } from './nifti-header.js';
import { encodeVoxelsInto, WRITE_DATATYPE_BYTES, type NiftiWriteDatatype } from './nifti-voxels.js';

/**
 * A Volume, or a multi-channel one (`channels` > 1, data `[c][i][j][k]` C order), or a label map
 * (Uint8Array data, such as a segmentation's mask, written without a float copy).
 */
export interface NiftiWritableVolume {
  data: Float32Array | Uint8Array;
  shape: Shape3;
  /** Row-major 4x4 voxel -> RAS+ mm; pixdim is derived from it (spacingMm is not consulted). */
  affine: Float64Array;
  spacingMm?: Vec3;
  /** Number of stacked 3-D channels; default 1. */
  channels?: number;
}

export interface EncodeNiftiOptions {
  /** Stored type; default 'float32'. Integer types round half to even and clamp (NaN -> 0). */
  datatype?: NiftiWriteDatatype;
  /** 0..5; default 1 (scanner), as the bundle's writer sets. */
  qformCode?: number;
  /** 0..5; default 1. */
  sformCode?: number;
  /** descrip (at most 79 Latin-1 characters kept); default 'spleen-trt'. */
  description?: string;
  /** intent_code; default 0, or 1007 (vector) for channelDim 5. */
  intentCode?: number;
  intentName?: string;
  /**
   * Where channels go when there are several: 4 (default; dim = [4, i, j, k, c], the channel-last
   * layout MONAI's writer produces) or 5 (dim = [5, i, j, k, 1, c], NIfTI's vector-voxel form).
   */
  channelDim?: 4 | 5;
  calMin?: number;
  calMax?: number;
  /** Default 'little'. */
  byteOrder?: 'little' | 'big';
  /**
   * Store the values through scl_slope / scl_inter, as DICOM converters do: each voxel is written
   * as (value - inter) / slope (rounded for integer types) and the header carries slope and inter,
   * so readers get the values back. Default: stored as they are, with (1, 0).
   */
  scaling?: { slope: number; inter: number };
}

export interface WriteNiftiOptions extends EncodeNiftiOptions {
  /** zlib level for .gz paths, 1..9; default 6. */
  gzipLevel?: number;
}

const NIFTI_UNITS_MM = 2;
const NIFTI_INTENT_VECTOR = 1007;
/** NIfTI-1 stores dims as int16. */
const MAX_DIM = 32767;

function checkCode(value: unknown, name: string): number {
  if (value === undefined) return 1;
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 5) {
    throw expectedRange('an integer xform code in 0..5', name, value);
  }
  return value as number;
}

function checkFinite(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw expectedType('a finite number', name, value);
  return value;
}

function validate(volume: NiftiWritableVolume, options: EncodeNiftiOptions): { channels: number } {
  if (typeof volume !== 'object' || volume === null) throw expectedType('a Volume', 'volume', volume);
  if (!(volume.data instanceof Float32Array || volume.data instanceof Uint8Array)) {
    throw expectedType('a Float32Array or Uint8Array', 'volume.data', volume.data);
  }
  const { shape } = volume;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((n) => Number.isInteger(n) && n >= 1 && n <= MAX_DIM)) {
    throw expectedRange(`3 integers in 1..${MAX_DIM}`, 'volume.shape', shape);
  }
  const channels = volume.channels ?? 1;
  if (!Number.isInteger(channels) || channels < 1 || channels > MAX_DIM) {
    throw expectedRange(`an integer in 1..${MAX_DIM}`, 'volume.channels', channels);
  }
  const count = shape[0] * shape[1] * shape[2] * channels;
  if (volume.data.length !== count) {
    throw expectedRange(`${count} elements (${shape.join('x')} x ${channels} channel(s))`, 'volume.data', volume.data);
  }
  const { affine } = volume;
  if (!(affine instanceof Float64Array) || affine.length !== 16 || !affine.every(Number.isFinite)) {
    throw expectedType('a finite Float64Array(16)', 'volume.affine', affine);
  }
  if (affine[12] !== 0 || affine[13] !== 0 || affine[14] !== 0 || affine[15] !== 1) {
    throw expectedRange('an affine with last row [0, 0, 0, 1]', 'volume.affine', Array.from(affine));
  }
  if (typeof options !== 'object' || options === null) throw expectedType('an options object', 'options', options);
  if (options.datatype !== undefined && !(options.datatype in WRITE_DATATYPE_BYTES)) {
    throw expectedType(`one of ${Object.keys(WRITE_DATATYPE_BYTES).join(', ')}`, 'options.datatype', options.datatype);
  }
  if (options.description !== undefined && typeof options.description !== 'string') {
    throw expectedType('a string', 'options.description', options.description);
  }
  if (options.intentName !== undefined && typeof options.intentName !== 'string') {
    throw expectedType('a string', 'options.intentName', options.intentName);
  }
  if (options.intentCode !== undefined && !(Number.isInteger(options.intentCode) && Math.abs(options.intentCode) <= MAX_DIM)) {
    throw expectedRange('an int16 intent code', 'options.intentCode', options.intentCode);
  }
  if (options.channelDim !== undefined && options.channelDim !== 4 && options.channelDim !== 5) {
    throw expectedRange('4 or 5', 'options.channelDim', options.channelDim);
  }
  if (options.byteOrder !== undefined && options.byteOrder !== 'little' && options.byteOrder !== 'big') {
    throw expectedType('"little" or "big"', 'options.byteOrder', options.byteOrder);
  }
  if (options.scaling !== undefined) {
    const { slope, inter } = (options.scaling ?? {}) as { slope?: unknown; inter?: unknown };
    // A zero or non-finite slope is what readers take as "no scaling": it could not round-trip.
    if (typeof slope !== 'number' || !Number.isFinite(slope) || slope === 0 || typeof inter !== 'number' || !Number.isFinite(inter)) {
      throw expectedRange('{ slope, inter } with a finite non-zero slope and a finite inter', 'options.scaling', options.scaling);
    }
  }
  return { channels };
}

/**
 * (b, c, d) as float32. Readers recompute a = sqrt(1 - b^2 - c^2 - d^2); for a half turn (a = 0,
 * e.g. the LPS-stored scan with a gantry tilt) float32 rounding can leave 1 - |bcd|^2 ~ +1e-8 and
 * so a ~ 1e-4, a visible error. Then the largest component is nudged up by ulps until the sum
 * reaches 1: nibabel reads a = 0 (it accepts down to -3 float32 eps) and so does niftilib (a < 1e-7).
 */
function storedQuaternion(a: number, bcd: Vec3): Vec3 {
  const f: Vec3 = [Math.fround(bcd[0]), Math.fround(bcd[1]), Math.fround(bcd[2])];
  if (a * a >= 1e-7) return f;
  const big = [0, 1, 2].reduce((m, i) => (Math.abs(f[i]) > Math.abs(f[m]) ? i : m), 0);
  const bits = new Float32Array(1);
  const word = new Int32Array(bits.buffer);
  for (let step = 0; step < 8 && 1 - (f[0] * f[0] + f[1] * f[1] + f[2] * f[2]) > 0; step++) {
    bits[0] = f[big];
    word[0] += 1; // one ulp away from zero (same sign)
    f[big] = bits[0];
  }
  return f;
}

function buildHeader(volume: NiftiWritableVolume, channels: number, options: EncodeNiftiOptions): NiftiHeader {
  const qformCode = checkCode(options.qformCode, 'options.qformCode');
  const sformCode = checkCode(options.sformCode, 'options.sformCode');
  const calMin = checkFinite(options.calMin, 'options.calMin', 0);
  const calMax = checkFinite(options.calMax, 'options.calMax', 0);
  const { affine, shape } = volume;
  const qform = affineToQform(affine);
  if (!qform) {
    throw expectedRange('an affine with independent, non-zero columns', 'volume.affine', Array.from(affine));
  }
  const datatype = options.datatype ?? 'float32';
  const info = NIFTI_DATATYPES.find((d) => d.name === datatype)!;
  const channelDim = options.channelDim ?? 4;
  let dim = [3, shape[0], shape[1], shape[2], 1, 1, 1, 1];
  if (channels > 1) {
    dim = channelDim === 4 ? [4, shape[0], shape[1], shape[2], channels, 1, 1, 1] : [5, shape[0], shape[1], shape[2], 1, channels, 1, 1];
  }
  const defaultIntent = channels > 1 && channelDim === 5 ? NIFTI_INTENT_VECTOR : 0;
  const [qb, qc, qd] = storedQuaternion(qform.a, qform.quatern);
  return {
    version: 1,
    littleEndian: (options.byteOrder ?? 'little') === 'little',
    sizeof_hdr: NIFTI1_HEADER_SIZE,
    dim_info: 0,
    dim,
    intent_p1: 0,
    intent_p2: 0,
    intent_p3: 0,
    intent_code: options.intentCode ?? defaultIntent,
    datatype: info.code,
    bitpix: info.bytes * 8,
    slice_start: 0,
    pixdim: [qform.qfac, qform.zooms[0], qform.zooms[1], qform.zooms[2], 1, 1, 1, 1],
    vox_offset: NIFTI1_MIN_VOX_OFFSET,
    // Without scaling (1, 0): stored values are the intensities.
    scl_slope: options.scaling?.slope ?? 1,
    scl_inter: options.scaling?.inter ?? 0,
    slice_end: 0,
    slice_code: 0,
    xyzt_units: NIFTI_UNITS_MM,
    cal_max: calMax,
    cal_min: calMin,
    slice_duration: 0,
    toffset: 0,
    glmax: 0,
    glmin: 0,
    descrip: options.description ?? 'spleen-trt',
    aux_file: '',
    qform_code: qformCode,
    sform_code: sformCode,
    quatern_b: qb,
    quatern_c: qc,
    quatern_d: qd,
    qoffset_x: qform.offset[0],
    qoffset_y: qform.offset[1],
    qoffset_z: qform.offset[2],
    srow_x: Array.from(affine.subarray(0, 4)),
    srow_y: Array.from(affine.subarray(4, 8)),
    srow_z: Array.from(affine.subarray(8, 12)),
    intent_name: options.intentName ?? '',
    magic: 'n+1',
  };
}

/**
 * (value - inter) / slope per voxel: what gets stored. For integer types it is rounded (half to
 * even) in float64 here, so the float32 hand-over cannot round a x.4999... up to a tie first.
 */
function unscale(data: Float32Array | Uint8Array, scaling: { slope: number; inter: number }, integer: boolean): Float32Array {
  const { slope, inter } = scaling;
  const out = new Float32Array(data.length);
  if (integer) for (let n = 0; n < data.length; n++) out[n] = roundHalfEven((data[n] - inter) / slope);
  else for (let n = 0; n < data.length; n++) out[n] = (data[n] - inter) / slope;
  return out;
}

/**
 * Encodes a volume as an uncompressed single-file NIfTI-1 (.nii) image.
 * @example
 * await fs.writeFile('mask.nii', encodeNifti(mask, { datatype: 'uint8' }));
 */
export function encodeNifti(volume: NiftiWritableVolume, options: EncodeNiftiOptions = {}): Uint8Array {
  const { channels } = validate(volume, options);
  const header = buildHeader(volume, channels, options);
  const datatype = options.datatype ?? 'float32';
  const dataBytes = volume.data.length * WRITE_DATATYPE_BYTES[datatype];
  const out = new Uint8Array(NIFTI1_MIN_VOX_OFFSET + dataBytes);
  out.set(encodeNifti1Header(header), 0);
  encodeVoxelsInto(out.subarray(NIFTI1_MIN_VOX_OFFSET), storedValues(volume, options), { shape: volume.shape, channels }, datatype, header.littleEndian);
  return out;
}

/** The values to encode: the volume's own, or unscaled for options.scaling. */
function storedValues(volume: NiftiWritableVolume, options: EncodeNiftiOptions): Float32Array | Uint8Array {
  const datatype = options.datatype ?? 'float32';
  return options.scaling ? unscale(volume.data, options.scaling, datatype !== 'float32' && datatype !== 'float64') : volume.data;
}

/** Bytes of image data per piece when a .nii.gz is encoded and compressed piece by piece. */
const PIECE_BYTES = 4 << 20;
/**
 * The run encoder gives up on a range once its output passes 1/32 of the stored bytes (a mask
 * compresses about 600:1 there): such data has no long runs, and zlib does better with it.
 */
const RUN_DEFLATE_MIN_RATIO = 32;
/** Larger planes stay with zlib: the run encoder transposes whole planes in one buffer. */
const RUN_DEFLATE_MAX_PLANE_VOXELS = 1 << 24;

/**
 * What each of the 256 labels is stored as (datatype, byte order, scaling): the writer's own
 * conversion applied to the values 0..255, so a label map encoded through this table gives the
 * bytes encodeVoxelsInto gives for it.
 */
function labelWords(options: EncodeNiftiOptions, littleEndian: boolean): Uint8Array {
  const datatype = options.datatype ?? 'float32';
  const labels = Uint8Array.from({ length: 256 }, (_, v) => v);
  const values = storedValues({ data: labels, shape: [256, 1, 1], affine: new Float64Array(16) }, options);
  const words = new Uint8Array(256 * WRITE_DATATYPE_BYTES[datatype]);
  encodeVoxelsInto(words, values, { shape: [256, 1, 1], channels: 1 }, datatype, littleEndian);
  return words;
}

/**
 * encodeNifti's bytes as pieces: the header (with the 4 zero extension bytes), then runs of
 * whole planes of about PIECE_BYTES (`pieceBytes` in tests), each encoded when its turn comes.
 * A label map (Uint8Array data) also offers its plane pieces to the addon's run encoder.
 */
export function niftiPieces(volume: NiftiWritableVolume, options: EncodeNiftiOptions = {}, pieceBytes = PIECE_BYTES): PieceSource {
  const { channels } = validate(volume, options);
  const header = buildHeader(volume, channels, options);
  const headerBytes = new Uint8Array(NIFTI1_MIN_VOX_OFFSET);
  headerBytes.set(encodeNifti1Header(header), 0);
  const datatype = options.datatype ?? 'float32';
  const [n0, n1, n2] = volume.shape;
  const wordBytes = WRITE_DATATYPE_BYTES[datatype];
  const planeBytes = n0 * n1 * wordBytes;
  const planes = channels * n2;
  const perPiece = Math.max(1, Math.floor(pieceBytes / planeBytes));
  const planeCount = (index: number): number => Math.min(perPiece, planes - (index - 1) * perPiece);
  // The unscaled copy only when zlib's fill needs it (a label map's run encoder reads the labels).
  let stored: Float32Array | Uint8Array | undefined;
  const source: PieceSource = {
    count: 1 + Math.ceil(planes / perPiece),
    length: (index) => (index === 0 ? headerBytes.length : planeCount(index) * planeBytes),
    fill(index, into) {
      if (index === 0) {
        into.set(headerBytes);
        return;
      }
      stored ??= storedValues(volume, options);
      const planeRange = { first: (index - 1) * perPiece, count: planeCount(index) };
      encodeVoxelsInto(into, stored, { shape: volume.shape, channels }, datatype, header.littleEndian, planeRange);
    },
  };
  const encoder = runDeflate();
  const { data } = volume;
  if (encoder !== null && data instanceof Uint8Array && n0 * n1 <= RUN_DEFLATE_MAX_PLANE_VOXELS) {
    const words = labelWords(options, header.littleEndian);
    source.deflateRange = (first, end, last) => {
      const planeBegin = (first - 1) * perPiece;
      const planeEnd = Math.min(planes, (end - 1) * perPiece);
      const maxOutput = Math.floor(((planeEnd - planeBegin) * planeBytes) / RUN_DEFLATE_MIN_RATIO);
      return encoder.deflateLabelPlanes(data, volume.shape, channels, planeBegin, planeEnd, words, wordBytes, last, maxOutput);
    };
  }
  return source;
}

function checkLevel(level: unknown): number {
  if (level === undefined) return 6;
  if (!Number.isInteger(level) || (level as number) < 1 || (level as number) > 9) {
    throw expectedRange('an integer in 1..9', 'options.gzipLevel', level);
  }
  return level as number;
}

/** Encodes a volume as a gzip-compressed NIfTI-1 (.nii.gz) image. */
export function gzipNifti(volume: NiftiWritableVolume, options: WriteNiftiOptions = {}): Uint8Array {
  const level = checkLevel(options.gzipLevel);
  return gzipSync(encodeNifti(volume, options), level);
}

/**
 * gzipNifti on the thread pool, piece by piece (gzip-pieces.ts): a label map by the addon's run
 * encoder, anything else (or a map without long runs) by zlib. Not libdeflate: on masks (long zero
 * runs) it compressed 3-5x slower than zlib (README, Benchmark). The event loop stays free.
 */
export async function gzipNiftiAsync(volume: NiftiWritableVolume, options: WriteNiftiOptions = {}): Promise<Uint8Array> {
  return gzipPieces(niftiPieces(volume, options), checkLevel(options.gzipLevel));
}

/**
 * Writes a volume to `path` as NIfTI-1, gzip-compressed iff the name ends in .gz. The bytes go to a
 * temporary file in the same directory that is then renamed, so a failed write never leaves a
 * partial `path` behind.
 * @example
 * await writeNifti('out/mask.nii.gz', mask, { datatype: 'uint8' });
 */
export async function writeNifti(path: string, volume: NiftiWritableVolume, options: WriteNiftiOptions = {}): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw expectedType('a file path', 'path', path);
  checkLevel(options.gzipLevel); // a bad level is refused for a .nii too
  const bytes = /\.gz$/i.test(path) ? await gzipNiftiAsync(volume, options) : encodeNifti(volume, options);
  // Like fs.writeFile, a missing directory is the caller's to create.
  await writeFileAtomic(path, bytes, { createDirectory: false });
}
