/**
 * The DICOM-side outputs of one `infer` case: the SEG and the STL, named from the case name
 * (the series UID), encoded in memory first and then each written whole-or-nothing, so a failure
 * while encoding leaves no file behind.
 */
import path from 'node:path';
import type { LabelVolume } from '../segment-volume.js';
import { writeFileAtomic } from '../write-file-atomic.js';
import type { DicomSeries } from './read-dicom-series.js';
import { encodeDicomSeg, type SegModelInfo } from './seg/encode-dicom-seg.js';
import { encodeMaskStl } from './mesh/write-stl.js';

export type OutputFormat = 'nifti' | 'dicom-seg' | 'both';

/** Where each output of a case goes: in `caseDir` by name, or next to the file `-o` named. */
export interface CaseOutputPaths {
  nifti: string;
  seg: string;
  stl: string;
}

const OUTPUT_FILE = /\.(nii(\.gz)?|dcm)$/i;

/** True when `-o` names a file (.nii, .nii.gz or .dcm) rather than a directory. */
export function isOutputFile(output: string): boolean {
  return OUTPUT_FILE.test(output);
}

/** The format a `-o` file's extension asks for. */
export function formatOfOutputFile(output: string): OutputFormat {
  return /\.dcm$/i.test(output) ? 'dicom-seg' : 'nifti';
}

export function caseOutputPaths(caseDir: string, name: string, outputFile?: string): CaseOutputPaths {
  if (outputFile) {
    const stem = outputFile.replace(OUTPUT_FILE, '');
    return {
      nifti: /\.nii(\.gz)?$/i.test(outputFile) ? outputFile : `${stem}.nii.gz`,
      seg: /\.dcm$/i.test(outputFile) ? outputFile : `${stem}.dcm`,
      stl: `${stem}.stl`,
    };
  }
  return {
    nifti: path.join(caseDir, `${name}_trans.nii.gz`),
    seg: path.join(caseDir, `${name}_seg.dcm`),
    stl: path.join(caseDir, `${name}.stl`),
  };
}

export interface DicomOutputsReport {
  seg?: { path: string; frames: number; sopInstanceUid: string; seriesInstanceUid: string };
  stl?: { path: string; triangleCount: number; surfaceAreaMm2: number; volumeMl: number };
}

/** Encodes then writes the SEG (when `series` is given) and the STL (when `stl`) of one case. */
export async function writeDicomOutputs(options: {
  mask: LabelVolume;
  paths: CaseOutputPaths;
  series?: DicomSeries;
  stl: boolean;
  model: SegModelInfo;
}): Promise<DicomOutputsReport> {
  const seg = options.series ? encodeDicomSeg(options.series, options.mask, { model: options.model }) : undefined;
  const stl = options.stl ? encodeMaskStl(options.mask) : undefined;
  const report: DicomOutputsReport = {};
  if (seg) {
    await writeFileAtomic(options.paths.seg, seg.bytes);
    report.seg = { path: options.paths.seg, frames: seg.frameSlices.length, sopInstanceUid: seg.sopInstanceUid, seriesInstanceUid: seg.seriesInstanceUid };
  }
  if (stl) {
    await writeFileAtomic(options.paths.stl, stl.bytes);
    report.stl = { path: options.paths.stl, triangleCount: stl.triangleCount, surfaceAreaMm2: stl.surfaceAreaMm2, volumeMl: stl.volumeMl };
  }
  return report;
}
