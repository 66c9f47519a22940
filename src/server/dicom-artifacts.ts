/**
 * The extra results of a DICOM job, encoded in memory (both runners write them the same way): the
 * DICOM SEG referencing the series read, the mask's surface as binary STL in patient coordinates,
 * and the CT as NIfTI for the viewer (NiiVue reads NIfTI; int16 is exact for CT numbers and half
 * the bytes of float32).
 */
import { encodeDicomSeg, encodeMaskStl, type DicomSeries, type LabelVolume, type SegModelInfo } from '../index.js';
import { gzipNiftiAsync } from '../nifti/index.js';

export type DicomArtifactName = 'seg.dcm' | 'mask.stl' | 'ct.nii.gz';

/** The SEG's algorithm: the model's manifest, or its name alone when the Segmenter has no manifest. */
export function segModelInfo(manifest: SegModelInfo | undefined, fallbackName: string): SegModelInfo {
  return manifest ? { name: manifest.name, version: manifest.version, warning: manifest.warning } : { name: fallbackName, version: 'unknown' };
}

export async function encodeDicomArtifacts(series: DicomSeries, mask: LabelVolume, model: SegModelInfo): Promise<Record<DicomArtifactName, Uint8Array>> {
  const seg = encodeDicomSeg(series, mask, { model });
  const stl = encodeMaskStl(mask);
  // In pieces over the thread pool's threads (zlib level 1), not as one stream on one of them.
  const ct = await gzipNiftiAsync(series.volume, { datatype: 'int16', gzipLevel: 1 });
  return { 'seg.dcm': seg.bytes, 'mask.stl': stl.bytes, 'ct.nii.gz': ct };
}
