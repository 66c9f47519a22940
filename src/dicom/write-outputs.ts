/**
 * The DICOM-side outputs of one `infer` case: the SEG and the STL, encoded in memory first and then
 * written, so a failure while encoding leaves no file behind. `stage` maps each final path to the
 * path to write now (infer writes a case's files under temporary names and renames them together).
 */
import type { LabelVolume } from '../segment-volume.js';
import { writeFileAtomic } from '../write-file-atomic.js';
import type { DicomSeries } from './read-dicom-series.js';
import { encodeDicomSeg, type SegModelInfo } from './seg/encode-dicom-seg.js';
import { encodeMaskStl } from './mesh/write-stl.js';

export type OutputFormat = 'nifti' | 'dicom-seg' | 'both';

/** Where the SEG and the STL of a case go (infer's output plan decides: src/cli/infer-outputs.ts). */
export interface DicomOutputPaths {
  seg: string;
  stl: string;
}

export interface DicomOutputsReport {
  seg?: { path: string; frames: number; sopInstanceUid: string; seriesInstanceUid: string };
  stl?: { path: string; triangleCount: number; surfaceAreaMm2: number; volumeMl: number };
}

/** Encodes then writes the SEG (when `series` is given) and the STL (when `stl`) of one case. */
export async function writeDicomOutputs(options: {
  mask: LabelVolume;
  paths: DicomOutputPaths;
  series?: DicomSeries;
  stl: boolean;
  model: SegModelInfo;
  stage?: (final: string) => string;
}): Promise<DicomOutputsReport> {
  const target = options.stage ?? ((final: string) => final);
  const seg = options.series ? encodeDicomSeg(options.series, options.mask, { model: options.model }) : undefined;
  const stl = options.stl ? encodeMaskStl(options.mask) : undefined;
  const report: DicomOutputsReport = {};
  if (seg) {
    await writeFileAtomic(target(options.paths.seg), seg.bytes);
    report.seg = { path: options.paths.seg, frames: seg.frameSlices.length, sopInstanceUid: seg.sopInstanceUid, seriesInstanceUid: seg.seriesInstanceUid };
  }
  if (stl) {
    await writeFileAtomic(target(options.paths.stl), stl.bytes);
    report.stl = { path: options.paths.stl, triangleCount: stl.triangleCount, surfaceAreaMm2: stl.surfaceAreaMm2, volumeMl: stl.volumeMl };
  }
  return report;
}
