/**
 * A zipped DICOM series as the service reads it, in the HTTP process and in queue workers alike:
 * through the public in-memory reader (readDicomBuffers), with limits from the service's.
 *
 * Names inside the zip are folder and file names from a hospital: they may carry a patient's name
 * or ID. They are replaced by numbers before the reader sees them, so no message (a refusal, a
 * job's error, a log line) can repeat them.
 */
import { isSpleenTrtError, readDicomBuffers, SpleenTrtError, type DicomSeries } from '../../index.js';
import { unzipSources } from '../../dicom/index.js';
import { ServiceError } from '../service-error.js';

export interface DicomUploadLimits {
  maxVoxels: number;
  maxDim?: number;
}

/**
 * Bytes a zip may inflate to: the largest series allowed stored as 16-bit pixels is 2 bytes a
 * voxel; twice that (other series of the same study) plus room for the headers.
 */
function maxInflatedBytes(maxVoxels: number): number {
  return 4 * maxVoxels + 64 * 1024 * 1024;
}

/** The zip layer's messages name entries ("entry <name> declares...", "(at <name>)"): drop the names. */
function withoutEntryNames(message: string): string {
  return message.replace(/\b(entry|at) .+?( declares| does not inflate|\)|$)/g, '$1 <entry>$2');
}

function unzipAnonymous(zip: Uint8Array, maxVoxels: number): { name: string; bytes: Uint8Array }[] {
  try {
    return unzipSources(zip, { maxTotalBytes: maxInflatedBytes(maxVoxels) }).map((source, n) => ({ name: `file ${n + 1}`, bytes: source.bytes }));
  } catch (error) {
    if (isSpleenTrtError(error)) throw new SpleenTrtError(error.code, withoutEntryNames(error.message));
    throw error;
  }
}

/**
 * Reads the series of a zip upload: ERR_DICOM_INVALID / ERR_DICOM_UNSUPPORTED for what is not one
 * readable CT series, ERR_INPUT_TOO_LARGE for a zip bomb (declared sizes, before inflating), the
 * reader's voxel limit before any pixel is allocated, ERR_VOLUME_TOO_LARGE for an axis too long.
 */
export async function readDicomUpload(zip: Uint8Array, limits: DicomUploadLimits): Promise<DicomSeries> {
  const series = await readDicomBuffers(unzipAnonymous(zip, limits.maxVoxels), { maxVoxels: limits.maxVoxels });
  const { shape } = series.volume;
  if (limits.maxDim !== undefined && shape.some((n) => n > limits.maxDim!)) {
    throw new ServiceError('ERR_VOLUME_TOO_LARGE', `${shape.join('x')}: an axis is longer than the limit of ${limits.maxDim} voxels`);
  }
  return series;
}
