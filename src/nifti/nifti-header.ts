/**
 * NIfTI-1 (348-byte) and NIfTI-2 (540-byte) header layout: decoding in either byte order and
 * NIfTI-1 encoding. Field names are the NIfTI C structs' (`sform_code`, `scl_slope`, ...).
 *
 * The decoded header holds the values exactly as stored in the file; the corrections nibabel applies
 * at load (zero/negative pixdim, invalid xform codes, odd qfac) are applied later, where the affine is
 * chosen (nifti-affine.ts), so a caller can still see what the file said.
 *
 * The fields are parsed by NIFTI-Reader-JS (the reader the design brief names) where it reads them
 * as stored; this module reads the rest itself: the size and byte order (for its error messages),
 * the magic, the strings (NIFTI-Reader-JS 0.8.0 joins the bytes after a string's NUL onto it),
 * NIfTI-1's srow_x/y/z (read there only when its own affine choice picks the sform; the
 * MONAI/nibabel choice in nifti-affine.ts needs both transforms), glmax/glmin (not read there), and
 * NIfTI-2's int64 fields (its big-endian int64 reading fails from 2^31 on).
 * test/unit/nifti/nifti-reader-js-agreement.test.ts checks both on every fixture.
 */
import { NIFTI1, NIFTI2 } from 'nifti-reader-js';
import { SpleenTrtError } from '../errors.js';

/** Sizes of the two header versions; sizeof_hdr holds one of them and gives away the byte order. */
export const NIFTI1_HEADER_SIZE = 348;
export const NIFTI2_HEADER_SIZE = 540;
/** Header + the 4-byte extension flag: the first byte where single-file voxel data may begin. */
export const NIFTI1_MIN_VOX_OFFSET = 352;
export const NIFTI2_MIN_VOX_OFFSET = 544;

/** A NIfTI header in the spec's field names; NIfTI-2's 64-bit fields are converted to numbers. */
export interface NiftiHeader {
  /** 1 for NIfTI-1, 2 for NIfTI-2. */
  version: 1 | 2;
  /** Byte order of the file (detected from sizeof_hdr). */
  littleEndian: boolean;
  sizeof_hdr: number;
  dim_info: number;
  /** dim[0] = number of dimensions, dim[1..7] their sizes (entries past dim[0] are not meaningful). */
  dim: number[];
  intent_p1: number;
  intent_p2: number;
  intent_p3: number;
  intent_code: number;
  datatype: number;
  bitpix: number;
  slice_start: number;
  /** pixdim[0] = qfac, pixdim[1..3] voxel size, pixdim[4] time step. */
  pixdim: number[];
  vox_offset: number;
  scl_slope: number;
  scl_inter: number;
  slice_end: number;
  slice_code: number;
  xyzt_units: number;
  cal_max: number;
  cal_min: number;
  slice_duration: number;
  toffset: number;
  /** NIfTI-1 only (0 in NIfTI-2). */
  glmax: number;
  glmin: number;
  descrip: string;
  aux_file: string;
  qform_code: number;
  sform_code: number;
  quatern_b: number;
  quatern_c: number;
  quatern_d: number;
  qoffset_x: number;
  qoffset_y: number;
  qoffset_z: number;
  srow_x: number[];
  srow_y: number[];
  srow_z: number[];
  intent_name: string;
  /** 'n+1' / 'n+2' for single files ('ni1' / 'ni2' mark a .hdr/.img pair, which is not supported). */
  magic: string;
}

/** Datatype names the reader understands. */
export type NiftiDatatypeName =
  | 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'float32' | 'float64';

export interface NiftiDatatypeInfo {
  name: NiftiDatatypeName;
  code: number;
  bytes: number;
}

/** NIfTI datatype codes (nifti1.h) of the supported types. */
export const NIFTI_DATATYPES: readonly NiftiDatatypeInfo[] = [
  { name: 'uint8', code: 2, bytes: 1 },
  { name: 'int16', code: 4, bytes: 2 },
  { name: 'int32', code: 8, bytes: 4 },
  { name: 'float32', code: 16, bytes: 4 },
  { name: 'float64', code: 64, bytes: 8 },
  { name: 'int8', code: 256, bytes: 1 },
  { name: 'uint16', code: 512, bytes: 2 },
  { name: 'uint32', code: 768, bytes: 4 },
  { name: 'int64', code: 1024, bytes: 8 },
  { name: 'uint64', code: 1280, bytes: 8 },
];

/** Known but unsupported codes, for a message that names what the file holds. */
const UNSUPPORTED_DATATYPES: Record<number, string> = {
  1: 'binary (1 bit)',
  32: 'complex64',
  128: 'rgb24',
  1536: 'float128',
  1792: 'complex128',
  2048: 'complex256',
  2304: 'rgba32',
};

/** The supported datatype for a code, or an ERR_NIFTI_INVALID naming the problem. */
export function datatypeInfo(code: number): NiftiDatatypeInfo {
  const info = NIFTI_DATATYPES.find((d) => d.code === code);
  if (info) return info;
  const known = UNSUPPORTED_DATATYPES[code];
  throw invalid(
    known === undefined
      ? `unknown datatype code ${code}`
      : `unsupported datatype ${known} (code ${code}); supported: ${NIFTI_DATATYPES.map((d) => d.name).join(', ')}`,
  );
}

/** Shorthand for the reader's one error. */
export function invalid(message: string, cause?: unknown): SpleenTrtError {
  return new SpleenTrtError('ERR_NIFTI_INVALID', `Invalid NIfTI file: ${message}`, cause === undefined ? {} : { cause });
}

function readString(bytes: Uint8Array, offset: number, length: number): string {
  let end = offset;
  while (end < offset + length && bytes[end] !== 0) end++;
  // Latin-1: every byte maps to one character, so arbitrary bytes never throw.
  let s = '';
  for (let i = offset; i < end; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/** Header size and byte order from sizeof_hdr, or undefined when it is neither 348 nor 540. */
export function detectHeader(bytes: Uint8Array): { version: 1 | 2; littleEndian: boolean } | undefined {
  if (bytes.length < 4) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, 4);
  for (const littleEndian of [true, false]) {
    const size = view.getInt32(0, littleEndian);
    if (size === NIFTI1_HEADER_SIZE) return { version: 1, littleEndian };
    if (size === NIFTI2_HEADER_SIZE) return { version: 2, littleEndian };
  }
  return undefined;
}

/**
 * Decodes a NIfTI-1 or NIfTI-2 header from the start of `bytes` (the uncompressed file).
 * Checks only what identifies the format (size, magic); the rest is validated by the reader.
 */
export function decodeNiftiHeader(bytes: Uint8Array): NiftiHeader {
  const detected = detectHeader(bytes);
  if (!detected) {
    if (bytes.length < 4) throw invalid(`truncated header: ${bytes.length} bytes, need at least ${NIFTI1_HEADER_SIZE}`);
    const v = new DataView(bytes.buffer, bytes.byteOffset, 4).getInt32(0, true);
    throw invalid(`not a NIfTI file: sizeof_hdr is ${v}, expected ${NIFTI1_HEADER_SIZE} (NIfTI-1) or ${NIFTI2_HEADER_SIZE} (NIfTI-2) in either byte order`);
  }
  const { version, littleEndian: le } = detected;
  const size = version === 1 ? NIFTI1_HEADER_SIZE : NIFTI2_HEADER_SIZE;
  if (bytes.length < size) throw invalid(`truncated header: ${bytes.length} bytes, NIfTI-${version} needs ${size}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, size);
  return version === 1 ? decodeV1(bytes, v, le) : decodeV2(bytes, v, le);
}

function checkMagic(magic: string, version: 1 | 2): void {
  if (magic === `n+${version}`) return;
  if (magic === `ni${version}`) {
    throw invalid(`magic "ni${version}" marks a two-file (.hdr/.img) NIfTI pair; only single-file .nii / .nii.gz is supported`);
  }
  throw invalid(`bad magic ${JSON.stringify(magic)}, expected "n+${version}"`);
}

/** NIFTI-Reader-JS on the header bytes alone (a 348/540-byte copy: no extensions, no voxel data). */
function parseWithNiftiReader<T extends NIFTI1 | NIFTI2>(parser: T, bytes: Uint8Array, size: number): T {
  try {
    // A copy into its own ArrayBuffer: `bytes` may be a view into a larger one (a Node Buffer
    // from the pool, whose slice() is a view too), and readHeader reads from offset 0.
    const header = new Uint8Array(size);
    header.set(bytes.subarray(0, size));
    parser.readHeader(header.buffer);
  } catch (error) {
    throw invalid(`unreadable header (${(error as Error).message})`, error);
  }
  return parser;
}

/** The fields both header versions have that NIFTI-Reader-JS reads as stored, under the spec's names. */
function readerFields(h: NIFTI1 | NIFTI2) {
  return {
    dim_info: h.dim_info,
    intent_p1: h.intent_p1,
    intent_p2: h.intent_p2,
    intent_p3: h.intent_p3,
    intent_code: h.intent_code,
    datatype: h.datatypeCode,
    bitpix: h.numBitsPerVoxel,
    pixdim: [...h.pixDims],
    scl_slope: h.scl_slope,
    scl_inter: h.scl_inter,
    slice_code: h.slice_code,
    xyzt_units: h.xyzt_units,
    cal_max: h.cal_max,
    cal_min: h.cal_min,
    slice_duration: h.slice_duration,
    toffset: h.toffset,
    qform_code: h.qform_code,
    sform_code: h.sform_code,
    quatern_b: h.quatern_b,
    quatern_c: h.quatern_c,
    quatern_d: h.quatern_d,
    qoffset_x: h.qoffset_x,
    qoffset_y: h.qoffset_y,
    qoffset_z: h.qoffset_z,
  };
}

function decodeV1(bytes: Uint8Array, v: DataView, le: boolean): NiftiHeader {
  // magic is char[4] "n+1\0"; without the NUL the string reads as 4 characters and fails the check.
  const magic = readString(bytes, 344, 4);
  checkMagic(magic, 1);
  const h = parseWithNiftiReader(new NIFTI1(), bytes, NIFTI1_HEADER_SIZE);
  const f32 = (o: number) => v.getFloat32(o, le);
  return {
    version: 1,
    littleEndian: le,
    sizeof_hdr: v.getInt32(0, le),
    ...readerFields(h),
    dim: [...h.dims],
    slice_start: h.slice_start,
    vox_offset: h.vox_offset,
    slice_end: h.slice_end,
    glmax: v.getInt32(140, le),
    glmin: v.getInt32(144, le),
    descrip: readString(bytes, 148, 80),
    aux_file: readString(bytes, 228, 24),
    srow_x: [f32(280), f32(284), f32(288), f32(292)],
    srow_y: [f32(296), f32(300), f32(304), f32(308)],
    srow_z: [f32(312), f32(316), f32(320), f32(324)],
    intent_name: readString(bytes, 328, 16),
    magic,
  };
}

function decodeV2(bytes: Uint8Array, v: DataView, le: boolean): NiftiHeader {
  // magic is char[8] "n+2\0\r\n\032\n"; the last four bytes detect text-mode transfer damage.
  const magic = readString(bytes, 4, 4);
  checkMagic(magic, 2);
  const eol = [bytes[8], bytes[9], bytes[10], bytes[11]];
  const eolOk = (eol[0] === 13 && eol[1] === 10 && eol[2] === 26 && eol[3] === 10) || eol.every((b) => b === 0);
  if (!eolOk) throw invalid('NIfTI-2 magic line-ending bytes are damaged (file transferred in text mode?)');
  const h = parseWithNiftiReader(new NIFTI2(), bytes, NIFTI2_HEADER_SIZE);
  // int64 fields: exact up to 2^53; anything larger becomes an inexact number the checks reject.
  const i64 = (o: number) => Number(v.getBigInt64(o, le));
  return {
    version: 2,
    littleEndian: le,
    sizeof_hdr: v.getInt32(0, le),
    ...readerFields(h),
    dim: Array.from({ length: 8 }, (_, i) => i64(16 + 8 * i)),
    vox_offset: i64(168),
    slice_start: i64(224),
    slice_end: i64(232),
    descrip: readString(bytes, 240, 80),
    aux_file: readString(bytes, 320, 24),
    // NIfTI-2's affine in NIFTI-Reader-JS is srow_x/y/z as stored (float64).
    srow_x: h.affine[0].slice(0, 4),
    srow_y: h.affine[1].slice(0, 4),
    srow_z: h.affine[2].slice(0, 4),
    intent_name: readString(bytes, 508, 16),
    glmax: 0,
    glmin: 0,
    magic,
  };
}

function writeString(bytes: Uint8Array, offset: number, length: number, text: string): void {
  // Truncated to leave the terminating NUL; non-Latin-1 characters become '?'.
  const n = Math.min(text.length, length - 1);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    bytes[offset + i] = c < 256 ? c : 63;
  }
}

/**
 * Encodes a NIfTI-1 single-file header (348 bytes) followed by the 4-byte "no extensions" flag.
 * Only version, byte order and the fields listed in `NiftiHeader` are used.
 */
export function encodeNifti1Header(h: NiftiHeader): Uint8Array {
  const bytes = new Uint8Array(NIFTI1_MIN_VOX_OFFSET);
  const v = new DataView(bytes.buffer);
  const le = h.littleEndian;
  const f32 = (o: number, x: number) => v.setFloat32(o, x, le);
  const i16 = (o: number, x: number) => v.setInt16(o, x, le);
  v.setInt32(0, NIFTI1_HEADER_SIZE, le);
  bytes[38] = 114; // regular = 'r', as nibabel and niftilib write it
  bytes[39] = h.dim_info;
  for (let i = 0; i < 8; i++) i16(40 + 2 * i, h.dim[i] ?? 0);
  f32(56, h.intent_p1);
  f32(60, h.intent_p2);
  f32(64, h.intent_p3);
  i16(68, h.intent_code);
  i16(70, h.datatype);
  i16(72, h.bitpix);
  i16(74, h.slice_start);
  for (let i = 0; i < 8; i++) f32(76 + 4 * i, h.pixdim[i] ?? 0);
  f32(108, h.vox_offset);
  f32(112, h.scl_slope);
  f32(116, h.scl_inter);
  i16(120, h.slice_end);
  bytes[122] = h.slice_code;
  bytes[123] = h.xyzt_units;
  f32(124, h.cal_max);
  f32(128, h.cal_min);
  f32(132, h.slice_duration);
  f32(136, h.toffset);
  v.setInt32(140, h.glmax, le);
  v.setInt32(144, h.glmin, le);
  writeString(bytes, 148, 80, h.descrip);
  writeString(bytes, 228, 24, h.aux_file);
  i16(252, h.qform_code);
  i16(254, h.sform_code);
  f32(256, h.quatern_b);
  f32(260, h.quatern_c);
  f32(264, h.quatern_d);
  f32(268, h.qoffset_x);
  f32(272, h.qoffset_y);
  f32(276, h.qoffset_z);
  for (let i = 0; i < 4; i++) {
    f32(280 + 4 * i, h.srow_x[i]);
    f32(296 + 4 * i, h.srow_y[i]);
    f32(312 + 4 * i, h.srow_z[i]);
  }
  writeString(bytes, 328, 16, h.intent_name);
  bytes.set([110, 43, 49, 0], 344); // "n+1\0"
  return bytes;
}
