/**
 * One real segmentation per case, end to end: the DICOM path gives the same mask as the NIfTI
 * path (dcm2niix's conversion of the same series, read by readNifti) for axial, reversed-order,
 * oblique and Enhanced CT series and for every transfer syntax read.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDicomSeries } from '../../../src/dicom/index.js';
import { makePhantom, Segmenter, type Volume } from '../../../src/index.js';
import { convertSeries, dcm2niixVolume, hasDicomTools, tempDir, writeDicomSeries, type SeriesOptions, type SyntaxKind } from '../../helpers/dicom-series.js';
import { requireTool } from '../../helpers/system-tools.js';

describe.runIf(requireTool(hasDicomTools(), 'pydicom, dcmtk, gdcm tools and dcm2niix'))('DICOM path vs NIfTI path masks', () => {
  const root = tempDir('dicom-parity');
  let segmenter: Segmenter;
  const segment = async (volume: Volume): Promise<Uint8Array> => (await segmenter.segment(volume)).mask.data;

  beforeAll(async () => {
    segmenter = await Segmenter.create({ backend: 'onnxruntime', threads: 2 });
  });
  afterAll(async () => {
    await segmenter?.close();
  });

  const phantom = (obliqueDeg?: [number, number, number]): Volume =>
    makePhantom({ shape: [48, 40, 12], spacingMm: [3, 3, 8], seed: 5, obliqueDeg }).image;

  const cases: Array<[string, SeriesOptions, [number, number, number] | undefined]> = [
    ['axial', {}, undefined],
    ['reversed order', { reverse: true }, undefined],
    ['oblique', {}, [10, -6, 15]],
    ['Enhanced CT', { enhanced: true }, undefined],
  ];
  let axialDir = '';
  let axialMask: Uint8Array;

  it.each(cases)('%s', async (name, options, obliqueDeg) => {
    const dir = await writeDicomSeries(phantom(obliqueDeg), path.join(root, name.replace(/\W+/g, '-')), { intercept: -1024, ...options });
    const fromNifti = await segment(await dcm2niixVolume(dir));
    const fromDicom = await segment((await readDicomSeries(dir)).volume);
    expect(fromNifti.some((v) => v === 1)).toBe(true);
    expect(Buffer.from(fromDicom).equals(Buffer.from(fromNifti))).toBe(true);
    if (name === 'axial') [axialDir, axialMask] = [dir, fromNifti];
  });

  const syntaxes: SyntaxKind[] = ['deflated', 'rle', 'jpeg-14', 'jpeg-14-sv1', 'jpeg-ls', 'jpeg-2000'];
  it.each(syntaxes)('%s gives the axial NIfTI-path mask', async (kind) => {
    expect(axialDir).not.toBe('');
    const dir = convertSeries(axialDir, path.join(root, kind), kind);
    const fromDicom = await segment((await readDicomSeries(dir)).volume);
    expect(Buffer.from(fromDicom).equals(Buffer.from(axialMask))).toBe(true);
  });
});
