/**
 * DICOM series -> Volume: collect the files, parse their headers, choose the series, check and
 * order its slices, then (and only then) allocate the volume and decode the pixels.
 *
 * The Volume is the one the NIfTI path gives for the same series converted by dcm2niix: same
 * voxel layout (see slice-geometry.ts), same affine, CT numbers as float32.
 */
import type { Vec3, Volume } from '../volume/volume.js';
import { collectSources, unzipSources, isZipBytes, type CollectLimits, type DicomSource } from './collect-sources.js';
import { transferSyntax, type TransferSyntax } from './codecs/transfer-syntax.js';
import { decodeFrame } from './decode-frame.js';
import { dicomInvalid, dicomUnsupported } from './dicom-errors.js';
import { parseInstance, type InstanceHeader } from './parse-instance.js';
import { selectSeries, type SeriesSummary } from './select-series.js';
import { sliceGeometry } from './slice-geometry.js';

/** Slices decoded before each scatter into the volume (16 floats = one 64-byte cache line). */
const SLICE_BLOCK = 16;

/** Default voxel limit, as the NIfTI reader's: 2^29 voxels (a 2 GiB float32 volume). */
export const DICOM_DEFAULT_MAX_VOXELS = 1024 ** 3 / 2;

export interface ReadDicomOptions extends CollectLimits {
  /** SeriesInstanceUID to read; default: the ORIGINAL/PRIMARY axial CT series with the most slices. */
  seriesUid?: string;
  /** Refuse series with more voxels than this, checked from the headers before any allocation. */
  maxVoxels?: number;
}

/** Where slice k of the volume came from: what a DICOM SEG frame must reference. */
export interface SliceReference {
  sopClassUid: string;
  sopInstanceUid: string;
  /** 1-based frame number for multi-frame (Enhanced CT) sources, absent for single-frame images. */
  frameNumber?: number;
  /** ImagePositionPatient of the slice (LPS mm), as in the source. */
  imagePositionPatient: Vec3;
}

/** Patient/study attributes of the source, copied into derived objects (DICOM keyword -> value). */
export type SourceAttributes = Record<string, string>;

export interface DicomSeries {
  volume: Volume;
  /** slices[k] for volume slice k. */
  slices: SliceReference[];
  studyInstanceUid: string;
  seriesInstanceUid: string;
  frameOfReferenceUid: string;
  /** ImageOrientationPatient and PixelSpacing shared by the slices. */
  imageOrientationPatient: number[];
  pixelSpacing: [number, number];
  /** Slice thickness to record in derived objects: the distance between slice planes, mm. */
  sliceSpacingMm: number;
  rows: number;
  columns: number;
  /** Degrees between the slice step and the slice normal (gantry tilt); 0 for ordinary series. */
  tiltDeg: number;
  transferSyntaxes: string[];
  /** Which series was read, and why. */
  selectionReason: string;
  inventory: SeriesSummary[];
  source: SourceAttributes;
}

/** Keywords and tags of the Patient and General Study modules copied from the source. */
const COPIED: ReadonlyArray<[string, string]> = [
  ['PatientName', 'x00100010'],
  ['PatientID', 'x00100020'],
  ['IssuerOfPatientID', 'x00100021'],
  ['PatientBirthDate', 'x00100030'],
  ['PatientSex', 'x00100040'],
  ['PatientAge', 'x00101010'],
  ['StudyInstanceUID', 'x0020000d'],
  ['StudyDate', 'x00080020'],
  ['StudyTime', 'x00080030'],
  ['StudyID', 'x00200010'],
  ['AccessionNumber', 'x00080050'],
  ['ReferringPhysicianName', 'x00080090'],
  ['StudyDescription', 'x00081030'],
];

/**
 * The copied attributes as Unicode strings: UTF-8 when the source says ISO_IR 192, else Latin-1
 * (ISO_IR 100, and the default repertoire, ASCII, a subset of it; other character sets are read
 * as Latin-1 too). Derived objects are written in UTF-8 (dcmjs writes UTF-8 and ISO_IR 192).
 */
function sourceAttributes(first: InstanceHeader): SourceAttributes {
  const ds = first.dataSet;
  const utf8 = (ds.string('x00080005') ?? '').includes('ISO_IR 192');
  const decoder = new TextDecoder(utf8 ? 'utf-8' : 'latin1');
  const out: SourceAttributes = {};
  for (const [keyword, tag] of COPIED) {
    const element = ds.elements[tag];
    if (element === undefined) continue;
    const raw = ds.byteArray.subarray(element.dataOffset, element.dataOffset + element.length);
    out[keyword] = decoder.decode(raw).replace(/[\0 ]+$/, '').trim();
  }
  return out;
}

/** The checks that must hold across the series before any pixel is decoded. */
function checkPixelHeaders(instances: readonly InstanceHeader[]): Map<InstanceHeader, TransferSyntax> {
  const first = instances[0];
  const syntaxes = new Map<InstanceHeader, TransferSyntax>();
  for (const instance of instances) {
    if (instance.rows !== first.rows || instance.columns !== first.columns) {
      throw dicomInvalid(`Differing image sizes in the series: ${first.rows}x${first.columns} and ${instance.rows}x${instance.columns} (rows x columns)`);
    }
    if (instance.rows < 1 || instance.columns < 1) throw dicomInvalid(`${instance.name}: Rows/Columns missing or zero`);
    if (instance.samplesPerPixel !== 1 || !/^MONOCHROME[12]$/.test(instance.photometricInterpretation)) {
      throw dicomUnsupported(`${instance.name}: ${instance.samplesPerPixel} samples per pixel, ${instance.photometricInterpretation || 'no'} photometric interpretation; CT must be MONOCHROME1/2 with one sample`);
    }
    if (instance.bitsAllocated !== 8 && instance.bitsAllocated !== 16) throw dicomUnsupported(`${instance.name}: BitsAllocated ${instance.bitsAllocated} (8 or 16 are read)`);
    if (instance.bitsStored < 1 || instance.bitsStored > instance.bitsAllocated || instance.highBit !== instance.bitsStored - 1) {
      throw dicomUnsupported(`${instance.name}: BitsStored ${instance.bitsStored} with HighBit ${instance.highBit} in ${instance.bitsAllocated} bits allocated`);
    }
    if (instance.frames.length !== instance.numberOfFrames) {
      throw dicomUnsupported(`${instance.name}: ${instance.numberOfFrames} frames without per-frame functional groups (only Enhanced CT is read as multi-frame)`);
    }
    if (instance.pixelRepresentation !== 0 && instance.pixelRepresentation !== 1) throw dicomInvalid(`${instance.name}: PixelRepresentation ${instance.pixelRepresentation}`);
    if (instance.frameOfReferenceUid !== first.frameOfReferenceUid) throw dicomInvalid('The series spans more than one FrameOfReferenceUID');
    syntaxes.set(instance, transferSyntax(instance.transferSyntaxUid));
  }
  return syntaxes;
}

/** Reads the chosen series of already collected files. */
export async function readDicomSources(sources: readonly DicomSource[], options: ReadDicomOptions = {}): Promise<DicomSeries> {
  const parsed = sources.map(parseInstance).filter((i): i is InstanceHeader => i !== null);
  const selection = selectSeries(parsed, options.seriesUid);
  const instances = selection.instances;
  const first = instances[0];
  // Bombs stop here, from the header fields alone: nothing has been allocated for pixels yet.
  const frameCount = instances.reduce((sum, i) => sum + i.numberOfFrames, 0);
  const voxels = first.rows * first.columns * frameCount;
  const maxVoxels = options.maxVoxels ?? DICOM_DEFAULT_MAX_VOXELS;
  if (voxels > maxVoxels) {
    throw dicomInvalid(`The series would be ${first.columns}x${first.rows}x${frameCount} = ${voxels} voxels, more than the limit of ${maxVoxels}`);
  }
  const syntaxes = checkPixelHeaders(instances);
  const frames = instances.flatMap((instance) => instance.frames.map((frame, index) => ({ instance, index, frame })));
  const geometry = sliceGeometry(frames.map((f) => f.frame), first.rows);

  const [n0, n1, n2] = [first.columns, first.rows, frames.length];
  const data = new Float32Array(n0 * n1 * n2);
  const slices: SliceReference[] = [];
  // Slices are decoded a block at a time and scattered together: k is the fastest axis of the
  // volume, so a block of SLICE_BLOCK slices fills whole cache lines instead of one float each.
  const plane = n0 * n1;
  const block = new Float32Array(SLICE_BLOCK * plane);
  for (let k0 = 0; k0 < n2; k0 += SLICE_BLOCK) {
    const count = Math.min(SLICE_BLOCK, n2 - k0);
    for (let b = 0; b < count; b++) {
      const { instance, index, frame } = frames[geometry.order[k0 + b]];
      const stored = await decodeFrame(instance, syntaxes.get(instance)!, index);
      const { rescaleSlope: slope, rescaleIntercept: intercept } = frame;
      // float64 arithmetic, then float32, as the NIfTI reader scales.
      const out = block.subarray(b * plane, (b + 1) * plane);
      for (let p = 0; p < plane; p++) out[p] = stored[p] * slope + intercept;
      slices.push({
        sopClassUid: instance.sopClassUid,
        sopInstanceUid: instance.sopInstanceUid,
        frameNumber: instance.numberOfFrames > 1 || instance.frames.length > 1 ? index + 1 : undefined,
        imagePositionPatient: frame.ipp!,
      });
    }
    // Pixel (row r, column c) of slice k -> voxel (i = c, j = rows - 1 - r, k).
    for (let r = 0; r < n1; r++) {
      const j = n1 - 1 - r;
      for (let c = 0; c < n0; c++) {
        const dst = (c * n1 + j) * n2 + k0;
        const src = r * n0 + c;
        for (let b = 0; b < count; b++) data[dst + b] = block[b * plane + src];
      }
    }
  }
  return {
    volume: { data, shape: [n0, n1, n2], spacingMm: geometry.spacingMm, affine: geometry.affine },
    slices,
    studyInstanceUid: first.studyInstanceUid,
    seriesInstanceUid: first.seriesInstanceUid,
    frameOfReferenceUid: first.frameOfReferenceUid,
    imageOrientationPatient: geometry.iop,
    pixelSpacing: geometry.pixelSpacing,
    sliceSpacingMm: geometry.sliceGapMm,
    rows: first.rows,
    columns: first.columns,
    tiltDeg: geometry.tiltDeg,
    transferSyntaxes: [...new Set(instances.map((i) => i.transferSyntaxUid))],
    selectionReason: selection.reason,
    inventory: selection.inventory,
    source: sourceAttributes(first),
  };
}

/**
 * Reads a CT series from a directory (any depth, any names; non-DICOM files ignored), a .zip of
 * one, or a single (Enhanced CT) file.
 *
 * @example
 * const { volume, selectionReason } = await readDicomSeries('study/');
 * const { mask } = await segmenter.segment(volume);
 */
export async function readDicomSeries(input: string, options: ReadDicomOptions = {}): Promise<DicomSeries> {
  return readDicomSources(await collectSources(input, options), options);
}

/**
 * Reads a CT series from memory, for services: `input` is either the bytes of a .zip archive
 * (an uploaded, zipped study folder) or a list of files already in memory. Same selection, checks
 * and result as readDicomSeries; bad input is SpleenTrtError ERR_DICOM_INVALID /
 * ERR_DICOM_UNSUPPORTED (HTTP 422), and nothing is written anywhere.
 *
 * @example
 * const series = await readDicomBuffers(await readFile('upload.zip'), { maxVoxels: 2 ** 28 });
 * const result = await segmenter.segment(series.volume);
 * const seg = encodeDicomSeg(series, result.mask, { model: segmenter.manifest });
 */
export async function readDicomBuffers(input: Uint8Array | readonly DicomSource[], options: ReadDicomOptions = {}): Promise<DicomSeries> {
  if (input instanceof Uint8Array) {
    if (!isZipBytes(input)) return readDicomSources([{ name: 'buffer', bytes: input }], options);
    return readDicomSources(unzipSources(input, options), options);
  }
  return readDicomSources(input, options);
}
