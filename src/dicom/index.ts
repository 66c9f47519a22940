/** DICOM in (CT series -> Volume) and out (DICOM SEG, STL). Re-exports only. */
export {
  readDicomSeries,
  readDicomBuffers,
  readDicomSources,
  DICOM_DEFAULT_MAX_VOXELS,
  type DicomSeries,
  type ReadDicomOptions,
  type SliceReference,
  type SourceAttributes,
} from './read-dicom-series.js';
export { collectSources, unzipSources, type DicomSource, type CollectLimits } from './collect-sources.js';
export type { SeriesSummary } from './select-series.js';
export {
  encodeDicomSeg,
  writeDicomSeg,
  type EncodeDicomSegOptions,
  type EncodedDicomSeg,
  type SegModelInfo,
  type SegSource,
} from './seg/encode-dicom-seg.js';
export { maskSurface, meshMeasures, type SurfaceMesh } from './mesh/mask-surface.js';
export { encodeStl, encodeMaskStl, writeMaskStl, maskSurfaceLps, type StlResult } from './mesh/write-stl.js';
