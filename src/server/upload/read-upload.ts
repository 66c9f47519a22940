/**
 * Turns a received upload into the Volume the Segmenter takes (and, for a zipped DICOM series, the
 * series its SEG must reference). One function for every format, so the runners never branch on
 * how an input is read.
 */
import { readFile } from 'node:fs/promises';
import { readNifti, type DicomSeries, type Volume } from '../../index.js';
import { readDicomUpload } from './read-dicom-upload.js';
import type { UploadKind } from './inspect-upload.js';

export interface UploadedInput {
  volume: Volume;
  /** DICOM uploads only: the series read (what the SEG references). */
  series?: DicomSeries;
}

export interface ReadUploadLimits {
  maxVoxels: number;
  /** Longest axis allowed (the NIfTI path checks it from the header at upload). */
  maxDim?: number;
}

export async function readUploadedInput(file: string, kind: UploadKind, limits: ReadUploadLimits): Promise<UploadedInput> {
  switch (kind) {
    case 'nifti':
      return { volume: (await readNifti(file, { maxVoxels: limits.maxVoxels })).volume };
    case 'dicom': {
      const series = await readDicomUpload(await readFile(file), limits);
      return { volume: series.volume, series };
    }
  }
}
