/**
 * A binary DICOM Segmentation of the spleen mask, on the source series' frame of reference.
 *
 * One frame per source slice that holds spleen (all slices when none does: highdicom's rule,
 * "Cannot omit empty frames when all frames are empty"), each frame referencing its source image
 * by SOPInstanceUID (and frame number for Enhanced CT), so the frame <-> slice map never depends
 * on file or instance order. The dataset is built here as a dcmjs "naturalized" dataset and
 * encoded by dcmjs' DicomDict writer, with a fresh file meta in Explicit VR Little Endian (the
 * source's transfer syntax must not leak: dcmjs PR #74).
 */
import { createRequire } from 'node:module';
import type { LabelVolume } from '../../segment-volume.js';
import { writeFileAtomic } from '../../write-file-atomic.js';
import { expectedRange } from '../../errors.js';
import type { DicomSeries } from '../read-dicom-series.js';
import {
  ANATOMICAL_STRUCTURE,
  ARTIFICIAL_INTELLIGENCE,
  EXPLICIT_VR_LITTLE_ENDIAN,
  SEGMENTATION_DERIVATION,
  SEGMENTATION_STORAGE,
  SOURCE_IMAGE_FOR_PROCESSING,
  SPLEEN,
} from './segment-codes.js';

const require = createRequire(import.meta.url);

interface DcmjsData {
  DicomDict: new (meta: Record<string, unknown>) => { dict: Record<string, unknown>; write(): ArrayBuffer };
  DicomMetaDictionary: {
    denaturalizeDataset(dataset: Record<string, unknown>): Record<string, unknown>;
    uid(): string;
  };
}
const dcmjs = require('dcmjs') as { data: DcmjsData; log?: { setLevel?: (level: string) => void } };

function packageVersion(): string {
  try {
    return (require('../../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The model a SEG names as its algorithm (a Segmenter's `manifest` fits). */
export interface SegModelInfo {
  name: string;
  version: string;
  /** Present for demo/test models: the series description then says it is not for clinical use. */
  warning?: string;
}

export interface EncodeDicomSegOptions {
  model: SegModelInfo;
  /** SeriesNumber of the new series; default 9901. */
  seriesNumber?: number;
  /** Content date and time; default now. */
  now?: Date;
}

export interface EncodedDicomSeg {
  bytes: Uint8Array;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  /** Volume slice k of each frame, in frame order. */
  frameSlices: number[];
}

/** What a SEG needs from the source series (a DicomSeries has it all). */
export type SegSource = Pick<
  DicomSeries,
  'slices' | 'seriesInstanceUid' | 'studyInstanceUid' | 'frameOfReferenceUid' | 'imageOrientationPatient' | 'pixelSpacing' | 'sliceSpacingMm' | 'rows' | 'columns' | 'source'
> & { volume: Pick<DicomSeries['volume'], 'shape'> };

/** LO values are at most 64 characters. */
const lo = (value: string): string => (value.length <= 64 ? value : `${value.slice(0, 61)}...`);

/** DS values are at most 16 characters: shorten the decimals, never the integer part. */
function ds(value: number): number {
  for (let digits = 10; digits >= 0; digits--) {
    const rounded = Number(value.toFixed(digits));
    if (String(rounded).length <= 16) return rounded;
  }
  return Math.round(value);
}

function dicomDateTime(now: Date): { date: string; time: string } {
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return {
    date: `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}`,
    time: `${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`,
  };
}

/** Slices (k) with any foreground voxel; all of them when the mask is empty. */
function framesToKeep(mask: LabelVolume): number[] {
  const [n0, n1, n2] = mask.shape;
  const hit = new Uint8Array(n2);
  const data = mask.data;
  for (let ij = 0; ij < n0 * n1; ij++) {
    const base = ij * n2;
    for (let k = 0; k < n2; k++) if (data[base + k] !== 0) hit[k] = 1;
  }
  const kept = [...hit.keys()].filter((k) => hit[k] === 1);
  return kept.length > 0 ? kept : [...hit.keys()];
}

/** Packs the kept slices as SEG frames: pixel (r, c) of frame f = mask(i = c, j = rows - 1 - r, k). */
function packFrames(mask: LabelVolume, slices: number[], rows: number, columns: number): ArrayBuffer {
  const [, n1, n2] = mask.shape;
  const perFrame = rows * columns;
  // Bits run on across frames (BINARY SEG frames are not byte-aligned); the value is padded to even length.
  const bytes = new Uint8Array((Math.ceil((perFrame * slices.length) / 8) + 1) & ~1);
  let bit = 0;
  for (const k of slices) {
    for (let r = 0; r < rows; r++) {
      const j = n1 - 1 - r;
      for (let c = 0; c < columns; c++, bit++) {
        if (mask.data[(c * n1 + j) * n2 + k] !== 0) bytes[bit >> 3] |= 1 << (bit & 7);
      }
    }
  }
  return bytes.buffer;
}

function code(concept: { CodeValue: string; CodingSchemeDesignator: string; CodeMeaning: string }): Record<string, string> {
  return { ...concept };
}

/** Encodes the SEG of `mask` (on the grid of `series.volume`) as a DICOM Part 10 file. */
export function encodeDicomSeg(series: SegSource, mask: LabelVolume, options: EncodeDicomSegOptions): EncodedDicomSeg {
  const [n0, n1, n2] = series.volume.shape;
  if (mask.shape[0] !== n0 || mask.shape[1] !== n1 || mask.shape[2] !== n2 || mask.data.length !== n0 * n1 * n2) {
    throw expectedRange(`a mask of shape ${n0}x${n1}x${n2} (the series' grid)`, 'mask', mask.shape);
  }
  if (n0 !== series.columns || n1 !== series.rows || series.slices.length !== n2) {
    throw expectedRange('a series whose volume matches its rows, columns and slices', 'series', series.volume.shape);
  }
  const { uid } = dcmjs.data.DicomMetaDictionary;
  const sopInstanceUid = uid();
  const seriesInstanceUid = uid();
  const { date, time } = dicomDateTime(options.now ?? new Date());
  const model = options.model;
  const modelLabel = `${model.name} ${model.version}`;
  const kept = framesToKeep(mask);
  const sourceInstances = new Map<string, string>();
  for (const s of series.slices) sourceInstances.set(s.sopInstanceUid, s.sopClassUid);

  const perFrame = kept.map((k) => {
    const slice = series.slices[k];
    const sourceImage: Record<string, unknown> = {
      ReferencedSOPClassUID: slice.sopClassUid,
      ReferencedSOPInstanceUID: slice.sopInstanceUid,
      PurposeOfReferenceCodeSequence: [code(SOURCE_IMAGE_FOR_PROCESSING)],
    };
    if (slice.frameNumber !== undefined) sourceImage.ReferencedFrameNumber = slice.frameNumber;
    return {
      DerivationImageSequence: [{ SourceImageSequence: [sourceImage], DerivationCodeSequence: [code(SEGMENTATION_DERIVATION)] }],
      // Dimension values: segment 1, and the slice's rank along the normal (1-based).
      FrameContentSequence: [{ DimensionIndexValues: [1, k + 1] }],
      PlanePositionSequence: [{ ImagePositionPatient: slice.imagePositionPatient.map(ds) }],
      SegmentIdentificationSequence: [{ ReferencedSegmentNumber: 1 }],
    };
  });
  const dimensionOrganizationUid = uid();
  const notClinical = model.warning !== undefined;
  const dataset: Record<string, unknown> = {
    ...series.source,
    // dcmjs writes strings as UTF-8; the copied values were decoded from the source's character set.
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: SEGMENTATION_STORAGE,
    SOPInstanceUID: sopInstanceUid,
    Modality: 'SEG',
    SeriesInstanceUID: seriesInstanceUid,
    SeriesNumber: options.seriesNumber ?? 9901,
    SeriesDate: date,
    SeriesTime: time,
    SeriesDescription: lo(notClinical ? `Spleen (${modelLabel}) - NOT FOR CLINICAL USE` : `Spleen segmentation (${modelLabel})`),
    InstanceNumber: 1,
    ContentDate: date,
    ContentTime: time,
    ContentLabel: 'SPLEEN',
    ContentDescription: lo(notClinical ? 'Demo model output, not for clinical use' : `Spleen, ${modelLabel}`),
    ContentCreatorName: '',
    Manufacturer: 'spleen-trt',
    ManufacturerModelName: lo(model.name),
    DeviceSerialNumber: '0',
    SoftwareVersions: lo(`spleen-trt ${packageVersion()}; ${modelLabel}`),
    FrameOfReferenceUID: series.frameOfReferenceUid,
    PositionReferenceIndicator: '',
    ImageType: ['DERIVED', 'PRIMARY'],
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: series.rows,
    Columns: series.columns,
    BitsAllocated: 1,
    BitsStored: 1,
    HighBit: 0,
    PixelRepresentation: 0,
    LossyImageCompression: '00',
    SegmentationType: 'BINARY',
    NumberOfFrames: kept.length,
    ReferencedSeriesSequence: [
      {
        SeriesInstanceUID: series.seriesInstanceUid,
        ReferencedInstanceSequence: [...sourceInstances].map(([sop, cls]) => ({ ReferencedSOPClassUID: cls, ReferencedSOPInstanceUID: sop })),
      },
    ],
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: dimensionOrganizationUid }],
    DimensionIndexSequence: [
      {
        DimensionOrganizationUID: dimensionOrganizationUid,
        DimensionIndexPointer: 0x0062000b, // ReferencedSegmentNumber
        FunctionalGroupPointer: 0x0062000a, // SegmentIdentificationSequence
        DimensionDescriptionLabel: 'ReferencedSegmentNumber',
      },
      {
        DimensionOrganizationUID: dimensionOrganizationUid,
        DimensionIndexPointer: 0x00200032, // ImagePositionPatient
        FunctionalGroupPointer: 0x00209113, // PlanePositionSequence
        DimensionDescriptionLabel: 'ImagePositionPatient',
      },
    ],
    SegmentSequence: [
      {
        SegmentNumber: 1,
        SegmentLabel: 'Spleen',
        SegmentDescription: 'Spleen',
        SegmentedPropertyCategoryCodeSequence: [code(ANATOMICAL_STRUCTURE)],
        SegmentedPropertyTypeCodeSequence: [code(SPLEEN)],
        SegmentAlgorithmType: 'AUTOMATIC',
        SegmentAlgorithmName: lo(modelLabel),
        SegmentationAlgorithmIdentificationSequence: [
          {
            AlgorithmFamilyCodeSequence: [code(ARTIFICIAL_INTELLIGENCE)],
            AlgorithmName: lo(model.name),
            AlgorithmVersion: lo(model.version),
          },
        ],
      },
    ],
    SharedFunctionalGroupsSequence: [
      {
        PlaneOrientationSequence: [{ ImageOrientationPatient: series.imageOrientationPatient.map(ds) }],
        PixelMeasuresSequence: [
          {
            PixelSpacing: series.pixelSpacing.map(ds),
            SliceThickness: ds(series.sliceSpacingMm),
            SpacingBetweenSlices: ds(series.sliceSpacingMm),
          },
        ],
      },
    ],
    PerFrameFunctionalGroupsSequence: perFrame,
    PixelData: [packFrames(mask as LabelVolume, kept, series.rows, series.columns)],
    _vrMap: { PixelData: 'OB' },
  };
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: SEGMENTATION_STORAGE,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: '2.25.80302813137786398554742050926734630921',
    ImplementationVersionName: lo(`spleen-trt ${packageVersion()}`).slice(0, 16),
  };
  const { DicomDict, DicomMetaDictionary } = dcmjs.data;
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset({ ...meta, _vrMap: { FileMetaInformationVersion: 'OB' } }));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  return { bytes: new Uint8Array(dict.write()), sopInstanceUid, seriesInstanceUid, frameSlices: kept };
}

/** encodeDicomSeg, written whole-or-nothing to `file`. */
export async function writeDicomSeg(file: string, series: SegSource, mask: LabelVolume, options: EncodeDicomSegOptions): Promise<EncodedDicomSeg> {
  const encoded = encodeDicomSeg(series, mask, options);
  await writeFileAtomic(file, encoded.bytes);
  return encoded;
}
