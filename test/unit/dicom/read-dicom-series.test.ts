/**
 * DICOM series -> Volume against two independent references: the NIfTI the series was written
 * from (pydicom wrote the DICOM; compared in RAS after flips/permutations only), and dcm2niix's
 * conversion of the same files (compared voxel for voxel and affine for affine).
 */
import { cpSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readDicomBuffers, readDicomSeries } from '../../../src/dicom/index.js';
import { makePhantom, type Volume } from '../../../src/index.js';
import { orientToRas } from '../../../src/volume/orientation.js';
import { convertSeries, dcm2niixVolume, tilted, hasDicomTools, tempDir, transferSyntaxOf, writeDicomSeries, type SeriesOptions, type SyntaxKind } from '../../helpers/dicom-series.js';
import { requireTool } from '../../helpers/system-tools.js';
import { filesUnder, zipDirectory } from '../../helpers/zip.js';

const SHAPE: [number, number, number] = [64, 56, 20];
/** Non-square pixels: PixelSpacing [row, column] must not be swapped. */
const SPACING: [number, number, number] = [5.6, 6.1, 12];

function phantom(options: { obliqueDeg?: [number, number, number]; orientation?: string } = {}): Volume {
  return makePhantom({ shape: SHAPE, spacingMm: SPACING, seed: 3, noiseHu: 20, ...options }).image;
}

function expectSameRas(actual: Volume, expected: Volume): void {
  const a = orientToRas(actual).volume;
  const e = orientToRas(expected).volume;
  expect(a.shape).toEqual(e.shape);
  // The fixture writes IPP/IOP as DS with 6 decimals: positions far from the origin round at 1e-4.
  for (let m = 0; m < 16; m++) expect(a.affine[m]).toBeCloseTo(e.affine[m], 3);
  expect(Buffer.from(a.data.buffer).equals(Buffer.from(e.data.buffer))).toBe(true);
}

function expectSameVolume(actual: Volume, expected: Volume, compareAffine = true): void {
  expect(actual.shape).toEqual(expected.shape);
  // dcm2niix stores the affine as float32 srows.
  if (compareAffine) for (let m = 0; m < 16; m++) expect(Math.abs(actual.affine[m] - expected.affine[m])).toBeLessThan(2e-4);
  let differing = 0;
  for (let v = 0; v < actual.data.length; v++) if (actual.data[v] !== expected.data[v]) differing++;
  expect(differing).toBe(0);
}

describe.runIf(requireTool(hasDicomTools(), 'pydicom, dcmtk, gdcm tools and dcm2niix'))('readDicomSeries', () => {
  const root = tempDir('dicom-read');
  let axialDir = '';
  let axial: Volume;

  beforeAll(async () => {
    axial = phantom();
    axialDir = await writeDicomSeries(axial, path.join(root, 'axial'), { extras: true, intercept: -1024, slope: 1 });
  });

  it('reads an axial series as dcm2niix does and as the source NIfTI holds it; skips other series and non-DICOM files', async () => {
    const series = await readDicomSeries(axialDir);
    expectSameRas(series.volume, axial);
    expectSameVolume(series.volume, await dcm2niixVolume(axialDir));
    expect(series.inventory).toHaveLength(3);
    expect(series.selectionReason).toMatch(/most slices; 3 series in 1 study; passed over: .*not ORIGINAL\\PRIMARY.*a localizer/);
    expect(series.slices).toHaveLength(SHAPE[2]);
    // slice k references the instance at the k-th position along the normal.
    const z = series.slices.map((s) => s.imagePositionPatient[2]);
    expect(z).toEqual([...z].sort((p, q) => p - q));
  });

  // Last column: whether dcm2niix's affine is comparable. For gantry tilt dcm2niix's unresampled
  // volume has the same voxels but an affine that is not the sheared geometry (its slice column
  // is off by 1.6 mm here), so there the affine is checked against the source NIfTI alone.
  const variants: Array<[string, () => Volume, SeriesOptions, boolean]> = [
    ['reversed file order and InstanceNumber', () => phantom(), { reverse: true }, true],
    ['an oblique acquisition', () => phantom({ obliqueDeg: [12, -8, 20] }), {}, true],
    ['slices stored feet-first (LPI)', () => phantom({ orientation: 'LPI' }), {}, true],
    ['gantry tilt (sheared affine)', () => tilted(phantom(), 15), {}, false],
    ['unsigned pixels with slope 0.5 and intercept -1024', () => phantom(), { unsigned: true, slope: 0.5, intercept: -1024 }, true],
    ['implicit VR', () => phantom(), { implicit: true }, true],
    ['Enhanced CT, frames in reverse order', () => phantom(), { enhanced: true, reverse: true }, true],
  ];
  it.each(variants)('reads %s', async (name, make, options, compareDcm2niixAffine) => {
    const image = make();
    const dir = await writeDicomSeries(image, path.join(root, name.replace(/\W+/g, '-')), options);
    const series = await readDicomSeries(dir);
    expectSameRas(series.volume, image);
    expectSameVolume(series.volume, await dcm2niixVolume(dir), compareDcm2niixAffine);
    if (name.startsWith('gantry')) expect(series.tiltDeg).toBeCloseTo(15, 3);
    if (options.enhanced) expect(series.slices.map((s) => s.frameNumber)).toEqual(Array.from({ length: SHAPE[2] }, (_, k) => SHAPE[2] - k));
  });

  it('masks the bits above BitsStored (12-bit unsigned with junk in the high nibble)', async () => {
    const dir = await writeDicomSeries(axial, path.join(root, 'bits12'), { unsigned: true, bitsStored: 12, junkHighBits: true, intercept: -1024 });
    expectSameRas((await readDicomSeries(dir)).volume, axial);
  });

  const syntaxes: Array<[SyntaxKind, string]> = [
    ['deflated', '1.2.840.10008.1.2.1.99'],
    ['rle', '1.2.840.10008.1.2.5'],
    ['jpeg-14', '1.2.840.10008.1.2.4.57'],
    ['jpeg-14-sv1', '1.2.840.10008.1.2.4.70'],
    ['jpeg-ls', '1.2.840.10008.1.2.4.80'],
    ['jpeg-2000', '1.2.840.10008.1.2.4.90'],
  ];
  let plain = '';
  let plainReference: Volume;
  it.each(syntaxes)('reads %s (%s) into the same volume', async (kind, uid) => {
    if (!plain) {
      plain = await writeDicomSeries(axial, path.join(root, 'plain'), { intercept: -1024 });
      plainReference = await dcm2niixVolume(plain);
    }
    const dir = convertSeries(plain, path.join(root, kind), kind);
    expect(transferSyntaxOf(path.join(dir, readdirSync(dir)[0]))).toBe(uid);
    const series = await readDicomSeries(dir);
    expect(series.transferSyntaxes).toEqual([uid]);
    expectSameRas(series.volume, axial);
    // Debian's dcm2niix reads neither deflate nor JPEG-LS: its reference is the uncompressed series.
    expectSameVolume(series.volume, plainReference);
  });

  it('reads a zip of the folder, from disk and from memory, with --series choosing', async () => {
    const zip = zipDirectory(axialDir);
    const zipFile = path.join(root, 'study.zip');
    writeFileSync(zipFile, zip);
    const fromDisk = await readDicomSeries(zipFile);
    expectSameRas(fromDisk.volume, axial);
    const fromMemory = await readDicomBuffers(zip);
    expect(fromMemory.seriesInstanceUid).toBe(fromDisk.seriesInstanceUid);
    const files = filesUnder(axialDir);
    const mpr = fromDisk.inventory.find((s) => s.imageType.startsWith('DERIVED'))!;
    const chosen = await readDicomBuffers(files, { seriesUid: mpr.seriesInstanceUid });
    expect(chosen.volume.shape).toEqual([4, 4, 3]);
    expect(chosen.selectionReason).toMatch(/as asked/);
  });
});
