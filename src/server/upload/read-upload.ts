/**
 * Turns a received upload into the Volume the Segmenter takes. One function for every format, so
 * the runner never branches on it: a zipped DICOM series becomes another case here.
 */
import { readNifti, type Volume } from '../../index.js';
import type { UploadKind } from './inspect-upload.js';

export async function readUploadedVolume(file: string, kind: UploadKind, maxVoxels: number): Promise<Volume> {
  switch (kind) {
    case 'nifti':
      return (await readNifti(file, { maxVoxels })).volume;
  }
}
