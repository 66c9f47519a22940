/**
 * The extra results of a DICOM job, encoded in memory (both runners write them the same way): the
 * DICOM SEG referencing the series read, the mask's surface as binary STL in patient coordinates,
 * and the CT as NIfTI for the viewer (NiiVue reads NIfTI; int16 is exact for CT numbers and half
 * the bytes of float32).
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { encodeDicomSeg, encodeMaskStl, encodeNifti, type DicomSeries, type LabelVolume, type SegModelInfo } from '../index.js';

const gzipAsync = promisify(gzip);

export type DicomArtifactName = 'seg.dcm' | 'mask.stl' | 'ct.nii.gz';

/** The SEG's algorithm: the model's manifest, or its name alone when the Segmenter has no manifest. */
export function segModelInfo(manifest: SegModelInfo | undefined, fallbackName: string): SegModelInfo {
  return manifest ? { name: manifest.name, version: manifest.version, warning: manifest.warning } : { name: fallbackName, version: 'unknown' };
}

export async function encodeDicomArtifacts(series: DicomSeries, mask: LabelVolume, model: SegModelInfo): Promise<Record<DicomArtifactName, Uint8Array>> {
  const seg = encodeDicomSeg(series, mask, { model });
  const stl = encodeMaskStl(mask);
  const ct = await gzipAsync(encodeNifti(series.volume, { datatype: 'int16' }), { level: 1 });
  return { 'seg.dcm': seg.bytes, 'mask.stl': stl.bytes, 'ct.nii.gz': ct };
}
