/**
 * One input of `infer`: a NIfTI file, or a DICOM input (a directory, a .zip, or a DICOM file).
 * Decided by content, not by name: a directory is DICOM (infer expands directories of NIfTI files
 * itself), a file starting like a zip or carrying the DICM prefix is DICOM, anything else is
 * NIfTI and goes to the NIfTI reader (which reports what is wrong with it).
 */
import { open, stat } from 'node:fs/promises';
import { readNifti } from '../nifti/index.js';
import type { Volume } from '../volume/volume.js';
import { isZipBytes } from './collect-sources.js';
import { hasDicomPrefix } from './parse-instance.js';
import { readDicomSeries, type DicomSeries, type ReadDicomOptions } from './read-dicom-series.js';

export interface CaseInput {
  kind: 'nifti' | 'dicom';
  volume: Volume;
  /** DICOM only: the series read, what its SEG references. */
  dicom?: DicomSeries;
  /**
   * DICOM only: the case name for output files, from the SeriesInstanceUID: never a patient name,
   * ID or file name (those may carry patient data).
   */
  name?: string;
}

/** True when `file` is a DICOM input (directory, zip, or a file with the DICM prefix). */
export async function isDicomInput(file: string): Promise<boolean> {
  const info = await stat(file).catch(() => null);
  if (info === null) return false;
  if (info.isDirectory()) return true;
  // A FIFO, device or socket would block (or never end) on open/read: the NIfTI reader refuses
  // those with ERR_FILE_UNREADABLE without opening them for a blocking read.
  if (!info.isFile()) return false;
  // Unreadable (EACCES...): not decided here; the NIfTI reader reports it with its code.
  const handle = await open(file, 'r').catch(() => null);
  if (handle === null) return false;
  try {
    const head = new Uint8Array(132);
    const { bytesRead } = await handle.read(head, 0, 132, 0);
    const bytes = head.subarray(0, bytesRead);
    return isZipBytes(bytes) || hasDicomPrefix(bytes);
  } finally {
    await handle.close();
  }
}

/** Reads one input of either kind into the Volume the Segmenter takes. */
export async function readCaseInput(file: string, options: Pick<ReadDicomOptions, 'seriesUid' | 'maxVoxels'> = {}): Promise<CaseInput> {
  if (!(await isDicomInput(file))) return { kind: 'nifti', volume: (await readNifti(file, { maxVoxels: options.maxVoxels })).volume };
  const dicom = await readDicomSeries(file, options);
  return { kind: 'dicom', volume: dicom.volume, dicom, name: `series-${dicom.seriesInstanceUid}` };
}
