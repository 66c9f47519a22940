/**
 * Voxel payload conversion between a NIfTI file (i fastest, any supported datatype, either byte
 * order) and the package's float32 C-order layout ([c][i][j][k], k fastest).
 *
 * The transposes are tiled (a 64 x 32 block of (i, k) per row j) so that both the strided reads
 * and the strided writes stay in cache: a 512x512x100 volume converts in tens of milliseconds.
 */
import { endianness } from 'node:os';
import { volumeKernels } from '../native/volume-kernels.js';
import { uninitializedFloats } from '../volume/uninitialized.js';
import type { NiftiDatatypeInfo, NiftiDatatypeName } from './nifti-header.js';

const HOST_LITTLE_ENDIAN = endianness() === 'LE';
const TILE_I = 64;
const TILE_K = 32;

type RawArray =
  | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

/** Shape (i, j, k) and the number of stacked volumes (channels), slowest in both layouts. */
export interface VoxelLayout {
  shape: readonly [number, number, number];
  channels: number;
}

/** Read scaling as nibabel applies it: multiply only when slope != 1, add only when inter != 0. */
export interface ReadScaling {
  slope: number;
  inter: number;
}

function swapBytesInPlace(bytes: Uint8Array, width: number): void {
  // `bytes` is a fresh copy starting at offset 0 of its own buffer, so wide views are aligned.
  if (width === 2) {
    const u = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 1);
    for (let i = 0; i < u.length; i++) {
      const x = u[i];
      u[i] = ((x & 0xff) << 8) | (x >>> 8);
    }
    return;
  }
  const u = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
  if (width === 4) {
    for (let i = 0; i < u.length; i++) {
      const x = u[i];
      u[i] = ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
    }
    return;
  }
  for (let i = 0; i < u.length; i += 2) {
    const a = u[i];
    const b = u[i + 1];
    u[i] = ((b & 0xff) << 24) | ((b & 0xff00) << 8) | ((b >>> 8) & 0xff00) | (b >>> 24);
    u[i + 1] = ((a & 0xff) << 24) | ((a & 0xff00) << 8) | ((a >>> 8) & 0xff00) | (a >>> 24);
  }
}

/** The raw voxels as a typed array in host byte order (a view when possible, else a copy). */
function rawVoxels(bytes: Uint8Array, offset: number, count: number, dt: NiftiDatatypeInfo, littleEndian: boolean): RawArray {
  const byteLength = count * dt.bytes;
  const swap = dt.bytes > 1 && littleEndian !== HOST_LITTLE_ENDIAN;
  let buffer: ArrayBufferLike = bytes.buffer;
  let start = bytes.byteOffset + offset;
  if (swap || start % dt.bytes !== 0) {
    // An explicit copy: `bytes` may be a Node Buffer, whose slice() is a view, not a copy.
    const copy = new Uint8Array(byteLength);
    copy.set(bytes.subarray(offset, offset + byteLength));
    if (swap) swapBytesInPlace(copy, dt.bytes);
    buffer = copy.buffer;
    start = 0;
  }
  switch (dt.name) {
    case 'int8': return new Int8Array(buffer, start, count);
    case 'uint8': return new Uint8Array(buffer, start, count);
    case 'int16': return new Int16Array(buffer, start, count);
    case 'uint16': return new Uint16Array(buffer, start, count);
    case 'int32': return new Int32Array(buffer, start, count);
    case 'uint32': return new Uint32Array(buffer, start, count);
    case 'float32': return new Float32Array(buffer, start, count);
    case 'float64': return new Float64Array(buffer, start, count);
    case 'int64':
    case 'uint64': {
      // No typed-array arithmetic on BigInt: convert once to float64 (exact up to 2^53; beyond,
      // the int64 -> float64 -> float32 path can differ from numpy's direct cast by an ulp).
      const big = dt.name === 'int64' ? new BigInt64Array(buffer, start, count) : new BigUint64Array(buffer, start, count);
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(big[i]);
      return out;
    }
  }
}

/**
 * File order (i fastest) -> C order (k fastest), with optional scaling in float64 before the
 * float32 store (which rounds once, as numpy's astype(float32) does).
 */
function transposeFileToC(src: RawArray, out: Float32Array, layout: VoxelLayout, scaling: ReadScaling | undefined): void {
  const [n0, n1, n2] = layout.shape;
  const n12 = n1 * n2;
  const n01 = n0 * n1;
  const volume = n01 * n2;
  const slope = scaling?.slope ?? 1;
  const inter = scaling?.inter ?? 0;
  // 0: copy, 1: multiply, 2: add, 3: multiply then add (nibabel skips the no-op operations).
  const mode = (slope !== 1 ? 1 : 0) | (inter !== 0 ? 2 : 0);
  for (let c = 0; c < layout.channels; c++) {
    const base = c * volume;
    for (let k0 = 0; k0 < n2; k0 += TILE_K) {
      const k1 = Math.min(k0 + TILE_K, n2);
      for (let i0 = 0; i0 < n0; i0 += TILE_I) {
        const i1 = Math.min(i0 + TILE_I, n0);
        for (let j = 0; j < n1; j++) {
          for (let k = k0; k < k1; k++) {
            let s = base + k * n01 + j * n0 + i0;
            let o = base + i0 * n12 + j * n2 + k;
            switch (mode) {
              case 0:
                for (let i = i0; i < i1; i++, s++, o += n12) out[o] = src[s];
                break;
              case 1:
                for (let i = i0; i < i1; i++, s++, o += n12) out[o] = src[s] * slope;
                break;
              case 2:
                for (let i = i0; i < i1; i++, s++, o += n12) out[o] = src[s] + inter;
                break;
              default:
                for (let i = i0; i < i1; i++, s++, o += n12) out[o] = src[s] * slope + inter;
            }
          }
        }
      }
    }
  }
}

/**
 * Decodes `layout` voxels of type `dt` starting at `offset` into float32 C order.
 * The caller has checked that the bytes are there.
 */
export function decodeVoxels(
  bytes: Uint8Array,
  offset: number,
  layout: VoxelLayout,
  dt: NiftiDatatypeInfo,
  littleEndian: boolean,
  scaling: ReadScaling | undefined,
): Float32Array {
  const count = layout.shape[0] * layout.shape[1] * layout.shape[2] * layout.channels;
  const src = rawVoxels(bytes, offset, count, dt, littleEndian);
  const out = new Float32Array(count);
  const kernels = volumeKernels();
  if (kernels !== null) kernels.fileToCOrder(src, out, layout.shape, layout.channels, scaling?.slope ?? 1, scaling?.inter ?? 0);
  else transposeFileToC(src, out, layout, scaling);
  return out;
}

/**
 * As decodeVoxels, with the addon's transpose on the libuv thread pool (a 512x512x90 CT kept the
 * event loop busy for tens of ms otherwise); the TS loop, where the addon is missing, runs here.
 */
export async function decodeVoxelsAsync(
  bytes: Uint8Array,
  offset: number,
  layout: VoxelLayout,
  dt: NiftiDatatypeInfo,
  littleEndian: boolean,
  scaling: ReadScaling | undefined,
): Promise<Float32Array> {
  const kernels = volumeKernels();
  if (kernels === null) return decodeVoxels(bytes, offset, layout, dt, littleEndian, scaling);
  const count = layout.shape[0] * layout.shape[1] * layout.shape[2] * layout.channels;
  const src = rawVoxels(bytes, offset, count, dt, littleEndian);
  // The kernel writes every voxel: no need for a zero-filled array (one pass less over memory).
  const out = uninitializedFloats(count);
  await kernels.fileToCOrderAsync(src, out, layout.shape, layout.channels, scaling?.slope ?? 1, scaling?.inter ?? 0);
  return out;
}

/** Datatypes the writer can produce. */
export type NiftiWriteDatatype = Extract<NiftiDatatypeName, 'uint8' | 'int16' | 'int32' | 'float32' | 'float64'>;

const INTEGER_RANGE: Partial<Record<NiftiWriteDatatype, [number, number]>> = {
  uint8: [0, 255],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
};

/** Round half to even, clamp to [lo, hi], NaN -> 0: how float voxels become stored integers. */
function toInteger(v: number, lo: number, hi: number): number {
  if (!(v > lo)) return v <= lo ? lo : 0;
  if (v >= hi) return hi;
  let r = Math.round(v);
  if (r - v === 0.5 && (r & 1) !== 0) r -= 1;
  return r;
}

/**
 * Slices [kBegin, kEnd) of channel `c` of a C-order volume into file order at the start of `dst`
 * (integer targets rounded and clamped).
 */
function transposeCToFile(
  src: Float32Array | Uint8Array,
  dst: RawArray,
  shape: readonly [number, number, number],
  c: number,
  kBegin: number,
  kEnd: number,
  range: [number, number] | undefined,
): void {
  const [n0, n1, n2] = shape;
  const n12 = n1 * n2;
  const n01 = n0 * n1;
  const base = c * n01 * n2;
  const lo = range?.[0] ?? 0;
  const hi = range?.[1] ?? 0;
  for (let k0 = kBegin; k0 < kEnd; k0 += TILE_K) {
    const k1 = Math.min(k0 + TILE_K, kEnd);
    for (let i0 = 0; i0 < n0; i0 += TILE_I) {
      const i1 = Math.min(i0 + TILE_I, n0);
      for (let j = 0; j < n1; j++) {
        for (let k = k0; k < k1; k++) {
          let d = (k - kBegin) * n01 + j * n0 + i0;
          let s = base + i0 * n12 + j * n2 + k;
          if (range) {
            for (let i = i0; i < i1; i++, d++, s += n12) dst[d] = toInteger(src[s], lo, hi);
          } else {
            for (let i = i0; i < i1; i++, d++, s += n12) dst[d] = src[s];
          }
        }
      }
    }
  }
}

/** Bytes per voxel of a writable datatype. */
export const WRITE_DATATYPE_BYTES: Record<NiftiWriteDatatype, number> = { uint8: 1, int16: 2, int32: 4, float32: 4, float64: 8 };

/** A run of whole file-order planes: plane p is slice p % n2 of channel floor(p / n2). */
export interface PlaneRange {
  first: number;
  count: number;
}

/**
 * Encodes float32 (or uint8 label) C-order voxels as `datatype` in file order and the requested
 * byte order into `target`, which must start at an aligned offset of its buffer and hold the
 * planes asked for (default all: count * bytes-per-voxel bytes). A plane range lets a writer
 * encode and compress a large image a piece at a time.
 */
export function encodeVoxelsInto(
  target: Uint8Array,
  data: Float32Array | Uint8Array,
  layout: VoxelLayout,
  datatype: NiftiWriteDatatype,
  littleEndian: boolean,
  planes?: PlaneRange,
): void {
  const [n0, n1, n2] = layout.shape;
  const { first, count: planeCount } = planes ?? { first: 0, count: layout.channels * n2 };
  const count = planeCount * n0 * n1;
  const { buffer, byteOffset } = target;
  let dst: RawArray;
  switch (datatype) {
    case 'uint8': dst = new Uint8Array(buffer, byteOffset, count); break;
    case 'int16': dst = new Int16Array(buffer, byteOffset, count); break;
    case 'int32': dst = new Int32Array(buffer, byteOffset, count); break;
    case 'float32': dst = new Float32Array(buffer, byteOffset, count); break;
    case 'float64': dst = new Float64Array(buffer, byteOffset, count); break;
  }
  const range = INTEGER_RANGE[datatype];
  const kernels = volumeKernels();
  // One channel's run of slices at a time (a range may cross from one channel into the next).
  for (let p = first; p < first + planeCount; ) {
    const c = Math.floor(p / n2);
    const kBegin = p - c * n2;
    const kEnd = Math.min(n2, kBegin + first + planeCount - p);
    const into = dst.subarray((p - first) * n0 * n1);
    if (kernels !== null) kernels.cToFileOrder(data, into, layout.shape, c, kBegin, kEnd, range !== undefined, range?.[0] ?? 0, range?.[1] ?? 0);
    else transposeCToFile(data, into, layout.shape, c, kBegin, kEnd, range);
    p += kEnd - kBegin;
  }
  const width = WRITE_DATATYPE_BYTES[datatype];
  if (width > 1 && littleEndian !== HOST_LITTLE_ENDIAN) {
    swapBytesInPlace(new Uint8Array(buffer, byteOffset, count * width), width);
  }
}
