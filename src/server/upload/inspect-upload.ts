/**
 * The first bytes of an upload say what it is and how big its volume will be: the NIfTI header
 * (inflated from the start of a gzip stream) is checked against the voxel and dimension limits
 * while the body is still arriving, long before anything is decompressed, so a "header bomb"
 * (a tiny file declaring a huge image) costs nothing.
 */
import zlib from 'node:zlib';
import { decodeNiftiHeader, SpleenTrtError, type NiftiHeader } from '../../index.js';
import { ServiceError } from '../service-error.js';

/** The formats an upload can be: a NIfTI volume, or a zipped DICOM series (src/dicom). */
export type UploadKind = 'nifti' | 'dicom';

/**
 * What the first bytes say. A zip's central directory is at its end, so nothing about a DICOM
 * series can be checked before the whole body is in: its limits are checked when it is read
 * (read-upload.ts), still before the job is stored.
 */
export type UploadHeader =
  | { kind: 'nifti'; gzip: boolean; header: NiftiHeader; shape: [number, number, number] }
  | { kind: 'dicom'; gzip: false };

/** Bytes of the upload's start kept for inspection. */
export const INSPECT_BYTES = 64 * 1024;
/** Enough inflated bytes for either NIfTI header version. */
const HEADER_BYTES = 540;

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/** The first `want` inflated bytes of a (possibly cut-off) gzip stream, inflating no more than needed. */
function gunzipHead(prefix: Uint8Array, want: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const gunzip = zlib.createGunzip({ finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const parts: Buffer[] = [];
    let length = 0;
    let settled = false;
    const settle = (error?: Error): void => {
      if (settled) return;
      settled = true;
      if (error) reject(error);
      else resolve(Buffer.concat(parts));
      gunzip.destroy();
    };
    gunzip.on('data', (chunk: Buffer) => {
      parts.push(chunk);
      length += chunk.length;
      if (length >= want) settle();
    });
    gunzip.on('error', (error) => settle(new SpleenTrtError('ERR_NIFTI_INVALID', `corrupt gzip stream (${error.message})`)));
    gunzip.on('end', () => settle());
    gunzip.end(prefix);
  });
}

export interface VolumeLimits {
  maxVoxels: number;
  maxDim: number;
}

/** Checks a header's geometry against the limits: one 3-D volume, no axis or voxel count too large. */
export function checkHeaderLimits(header: NiftiHeader, limits: VolumeLimits): [number, number, number] {
  const rank = header.dim[0];
  const dims = header.dim.slice(1, Math.max(0, Math.min(rank, 7)) + 1);
  if (!Number.isInteger(rank) || rank < 3 || rank > 7 || dims.some((n) => !Number.isSafeInteger(n) || n < 1)) {
    throw new SpleenTrtError('ERR_NIFTI_INVALID', `dim = [${header.dim.slice(0, 8).join(', ')}] is not a 3-D image`);
  }
  if (dims.slice(3).some((n) => n > 1)) {
    throw new SpleenTrtError('ERR_NIFTI_INVALID', `dim = [${header.dim.slice(0, rank + 1).join(', ')}] holds several volumes; one 3-D volume is required`);
  }
  const shape: [number, number, number] = [dims[0], dims[1], dims[2]];
  if (shape.some((n) => n > limits.maxDim)) {
    throw new ServiceError('ERR_VOLUME_TOO_LARGE', `${shape.join('x')}: an axis is longer than the limit of ${limits.maxDim} voxels`);
  }
  const voxels = shape[0] * shape[1] * shape[2];
  if (voxels > limits.maxVoxels) {
    throw new ServiceError('ERR_VOLUME_TOO_LARGE', `${shape.join('x')} = ${voxels} voxels exceeds the limit of ${limits.maxVoxels}`);
  }
  return shape;
}

/**
 * What an upload is, from its first bytes (up to INSPECT_BYTES; fewer when the body is shorter).
 * This is the one place an upload's format is decided: a zip is taken as a DICOM series.
 */
export async function inspectUpload(prefix: Uint8Array, limits: VolumeLimits): Promise<UploadHeader> {
  if (isZip(prefix)) return { kind: 'dicom', gzip: false };
  const gzip = isGzip(prefix);
  const head = gzip ? await gunzipHead(prefix, HEADER_BYTES) : prefix;
  const header = decodeNiftiHeader(head);
  return { kind: 'nifti', gzip, header, shape: checkHeaderLimits(header, limits) };
}
