/**
 * Parses one DICOM Part 10 file with dicom-parser into the header fields the reader needs, per
 * frame for Enhanced (multi-frame) CT. dicom-parser records where each element lies and copies
 * nothing: pixel data is decoded later, only for the selected series, after its checks.
 */
import { createRequire } from 'node:module';
import { inflateRawSync } from 'node:zlib';
import type { DataSet, Element } from 'dicom-parser';
import type { Vec3 } from '../volume/volume.js';
import { dicomInvalid } from './dicom-errors.js';
import type { DicomSource } from './collect-sources.js';

const dicomParser = createRequire(import.meta.url)('dicom-parser') as typeof import('dicom-parser');

export const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
export const ENHANCED_CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2.1';

/** Most bytes a deflated file may inflate to (a deflate bomb stops here). */
const MAX_INFLATED_BYTES = 2 ** 31 - 1;

/**
 * Sequences an implicit VR file must be told about (implicit VR carries no VR, and a defined-length
 * sequence looks like an opaque value otherwise): the functional groups of Enhanced CT.
 */
const SEQUENCE_TAGS = new Set([
  'x52009229', // SharedFunctionalGroupsSequence
  'x52009230', // PerFrameFunctionalGroupsSequence
  'x00289110', // PixelMeasuresSequence
  'x00209116', // PlaneOrientationSequence
  'x00209113', // PlanePositionSequence
  'x00289145', // PixelValueTransformationSequence
  'x00209111', // FrameContentSequence
  'x00189329', // CTImageFrameTypeSequence
  'x00089124', // DerivationImageSequence
  'x00082112', // SourceImageSequence
]);

/** The geometry and value transform of one frame (one slice). */
export interface FrameHeader {
  /** ImagePositionPatient (LPS mm), null when absent. */
  ipp: Vec3 | null;
  /** ImageOrientationPatient: row direction then column direction (LPS). */
  iop: number[] | null;
  /** PixelSpacing: [spacing between rows, spacing between columns] in mm. */
  pixelSpacing: [number, number] | null;
  rescaleSlope: number;
  rescaleIntercept: number;
}

/** The header of one instance; `dataSet` keeps element offsets into `bytes` for the pixel stage. */
export interface InstanceHeader {
  name: string;
  bytes: Uint8Array;
  dataSet: DataSet;
  transferSyntaxUid: string;
  sopClassUid: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  frameOfReferenceUid: string;
  modality: string;
  imageType: string[];
  seriesDescription: string;
  seriesNumber: string;
  rows: number;
  columns: number;
  numberOfFrames: number;
  samplesPerPixel: number;
  photometricInterpretation: string;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  /** 0 unsigned, 1 two's complement. */
  pixelRepresentation: number;
  frames: FrameHeader[];
}

/** True when the bytes carry the Part 10 preamble and "DICM" prefix. */
export function hasDicomPrefix(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

function text(ds: DataSet, tag: string): string {
  return (ds.string(tag) ?? '').trim();
}

function numbers(ds: DataSet | undefined, tag: string): number[] | null {
  const value = ds?.string(tag);
  if (value === undefined || value.trim() === '') return null;
  const parts = value.split('\\').map((v) => Number(v.trim()));
  return parts.every(Number.isFinite) ? parts : null;
}

function firstItem(ds: DataSet | undefined, tag: string): DataSet | undefined {
  return ds?.elements[tag]?.items?.[0]?.dataSet;
}

function frameFrom(sources: (DataSet | undefined)[]): FrameHeader {
  const pick = (tag: string, length: number): number[] | null => {
    for (const s of sources) {
      const v = numbers(s, tag);
      if (v !== null) return v.length === length ? v : null;
    }
    return null;
  };
  const ipp = pick('x00200032', 3);
  const iop = pick('x00200037', 6);
  const ps = pick('x00280030', 2);
  const slope = pick('x00281053', 1);
  const intercept = pick('x00281052', 1);
  return {
    ipp: ipp ? [ipp[0], ipp[1], ipp[2]] : null,
    iop,
    pixelSpacing: ps ? [ps[0], ps[1]] : null,
    rescaleSlope: slope ? slope[0] : 1,
    rescaleIntercept: intercept ? intercept[0] : 0,
  };
}

/** Per-frame headers of an Enhanced CT: per-frame functional groups over the shared ones. */
function enhancedFrames(ds: DataSet, count: number, name: string): FrameHeader[] {
  const shared = firstItem(ds, 'x52009229');
  const perFrame = ds.elements.x52009230?.items ?? [];
  if (perFrame.length !== count) {
    throw dicomInvalid(`${name}: ${perFrame.length} per-frame functional groups for ${count} frames`);
  }
  const groups = ['x00209113', 'x00209116', 'x00289110', 'x00289145'];
  return perFrame.map((item) => {
    const own = item.dataSet;
    return frameFrom(groups.flatMap((g) => [firstItem(own, g), firstItem(shared, g)]));
  });
}

function inflater(bytes: Uint8Array, position: number): Uint8Array {
  const inflated = inflateRawSync(bytes.subarray(position), { maxOutputLength: MAX_INFLATED_BYTES });
  const full = new Uint8Array(position + inflated.length);
  full.set(bytes.subarray(0, position), 0);
  full.set(inflated, position);
  return full;
}

/**
 * Every element, in sequences too, must lie inside the file: dicom-parser records offsets and
 * lengths as declared and only reads them when asked, so an element whose declared length runs
 * past the end would throw (a bare string) later, from any accessor.
 */
function checkBounds(ds: DataSet, end: number, name: string, depth = 0): void {
  if (depth > 64) throw dicomInvalid(`${name}: sequences nested more than 64 deep`);
  for (const [tag, element] of Object.entries(ds.elements)) {
    const defined = element.length !== 0xffffffff;
    if (element.dataOffset < 0 || (defined && (element.length < 0 || element.dataOffset + element.length > end))) {
      throw dicomInvalid(`${name}: element ${tag} (${element.length} bytes at ${element.dataOffset}) runs past the end of the file`);
    }
    for (const item of element.items ?? []) if (item.dataSet) checkBounds(item.dataSet, end, name, depth + 1);
  }
}

/** Why dicom-parser failed: it throws Errors, bare strings, or objects carrying `exception`. */
function parserReason(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  return String((error as { exception?: unknown } | null)?.exception ?? error);
}

/**
 * Parses a candidate file. Returns null for files that are not DICOM Part 10 (no "DICM" prefix):
 * a directory may hold anything. A file that claims to be DICOM but does not parse, or whose
 * pixel data runs past its end (truncated), is ERR_DICOM_INVALID.
 */
export function parseInstance(source: DicomSource): InstanceHeader | null {
  if (!hasDicomPrefix(source.bytes)) return null;
  let ds: DataSet;
  try {
    ds = dicomParser.parseDicom(source.bytes, {
      vrCallback: ((tag: string) => (SEQUENCE_TAGS.has(tag) ? 'SQ' : undefined)) as (tag: string) => void,
      inflater: inflater as unknown as (arr: Uint8Array, position: number) => void,
    });
  } catch (error) {
    throw dicomInvalid(`${source.name} is not a readable DICOM file (truncated or corrupt?): ${parserReason(error)}`, error);
  }
  const bytes = ds.byteArray;
  checkBounds(ds, bytes.length, source.name);
  try {
    return headerOf(source, ds);
  } catch (error) {
    if (error instanceof Error && 'code' in error) throw error;
    throw dicomInvalid(`${source.name} is not a readable DICOM file (corrupt?): ${parserReason(error)}`, error);
  }
}

/** The fields the reader needs, from a parsed data set whose elements lie inside the file. */
function headerOf(source: DicomSource, ds: DataSet): InstanceHeader {
  const bytes = ds.byteArray;
  const pixel: Element | undefined = ds.elements.x7fe00010;
  if (pixel && pixel.length !== 0xffffffff && pixel.dataOffset + pixel.length > bytes.length) {
    throw dicomInvalid(`${source.name} is truncated: its pixel data runs past the end of the file`);
  }
  const sopClassUid = text(ds, 'x00080016');
  const numberOfFrames = Number(text(ds, 'x00280008') || '1');
  if (!Number.isInteger(numberOfFrames) || numberOfFrames < 1) throw dicomInvalid(`${source.name}: NumberOfFrames "${text(ds, 'x00280008')}" is not a positive integer`);
  const enhanced = sopClassUid === ENHANCED_CT_IMAGE_STORAGE || ds.elements.x52009230 !== undefined;
  return {
    name: source.name,
    bytes,
    dataSet: ds,
    transferSyntaxUid: text(ds, 'x00020010'),
    sopClassUid,
    sopInstanceUid: text(ds, 'x00080018'),
    studyInstanceUid: text(ds, 'x0020000d'),
    seriesInstanceUid: text(ds, 'x0020000e'),
    frameOfReferenceUid: text(ds, 'x00200052'),
    modality: text(ds, 'x00080060'),
    imageType: text(ds, 'x00080008').split('\\').map((s) => s.trim().toUpperCase()),
    seriesDescription: text(ds, 'x0008103e'),
    seriesNumber: text(ds, 'x00200011'),
    rows: ds.uint16('x00280010') ?? 0,
    columns: ds.uint16('x00280011') ?? 0,
    numberOfFrames,
    samplesPerPixel: ds.uint16('x00280002') ?? 1,
    photometricInterpretation: text(ds, 'x00280004'),
    bitsAllocated: ds.uint16('x00280100') ?? 0,
    bitsStored: ds.uint16('x00280101') ?? 0,
    highBit: ds.uint16('x00280102') ?? 0,
    pixelRepresentation: ds.uint16('x00280103') ?? 0,
    frames: enhanced ? enhancedFrames(ds, numberOfFrames, source.name) : [frameFrom([ds])],
  };
}
