/**
 * The DICOM SEG writer checked by independent readers: dciodvfy (no errors), dcmtk's dcmdump, and
 * pydicom rebuilding the mask from the frames' source references (test/helpers/read-dicom-seg.py).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readDicomSeries, writeDicomSeg, type DicomSeries } from '../../../src/dicom/index.js';
import { makePhantom, type LabelVolume } from '../../../src/index.js';
import { hasDicomTools, run, tempDir, tilted, writeDicomSeries, type SeriesOptions } from '../../helpers/dicom-series.js';
import { hasCommand, requireTool, SYSTEM_PYTHON } from '../../helpers/system-tools.js';

const READ_SEG = path.join(import.meta.dirname, '../../helpers/read-dicom-seg.py');
const DEMO = { name: 'spleen-phantom-demo', version: '1.0.0', warning: 'demo weights' };

/** Bright voxels on slices 3..14 only: a mask with empty slices at both ends. */
function testMask(series: DicomSeries, empty = false): LabelVolume {
  const { shape, data } = series.volume;
  const mask = new Uint8Array(data.length);
  if (!empty) for (let v = 0; v < data.length; v++) mask[v] = data[v] > 60 && v % shape[2] >= 3 && v % shape[2] <= 14 ? 1 : 0;
  return { data: mask, shape: series.volume.shape, spacingMm: series.volume.spacingMm, affine: series.volume.affine };
}

/** dciodvfy's complaints, warnings apart (none are expected either; they are printed for review). */
function dciodvfyErrors(file: string): string[] {
  const output = run('sh', ['-c', 'dciodvfy "$1" 2>&1; true', 'sh', file]);
  const warnings = output.split('\n').filter((l) => l.startsWith('Warning'));
  if (warnings.length > 0) console.warn(warnings.join('\n'));
  return output.split('\n').filter((l) => l.startsWith('Error'));
}

function readBack(seg: string, sourceDir: string, shape: number[]): { mask: Uint8Array; info: Record<string, unknown> } {
  const raw = `${seg}.mask.raw`;
  const info = JSON.parse(run(SYSTEM_PYTHON, [READ_SEG, seg, sourceDir, raw])) as Record<string, unknown>;
  const mask = new Uint8Array(readFileSync(raw));
  expect(mask.length).toBe(shape[0] * shape[1] * shape[2]);
  return { mask, info };
}

describe.runIf(requireTool(hasDicomTools() && hasCommand('dciodvfy'), 'pydicom, dcmtk, dciodvfy (dicom3tools)'))('writeDicomSeg', () => {
  const root = tempDir('dicom-seg');
  const image = makePhantom({ shape: [48, 40, 18], spacingMm: [7.5, 8.5, 14], seed: 4 }).image;
  let axialDir = '';
  let axial: DicomSeries;

  beforeAll(async () => {
    axialDir = await writeDicomSeries(image, path.join(root, 'axial'), { intercept: -1024 });
    axial = await readDicomSeries(axialDir);
  });

  it('passes dciodvfy, reads back in dcmdump and pydicom as exactly the mask, empty frames left out', async () => {
    const mask = testMask(axial);
    const file = path.join(root, 'axial.seg.dcm');
    const written = await writeDicomSeg(file, axial, mask, { model: DEMO });
    expect(written.frameSlices).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    expect(dciodvfyErrors(file)).toEqual([]);
    const dump = run('dcmdump', ['-q', '+P', '0028,0008', '+P', '0062,0001', '+P', '0002,0010', '-Un', file]);
    expect(dump).toMatch(/\(0028,0008\) IS \[12\]/);
    expect(dump).toMatch(/\(0062,0001\) CS \[BINARY\]/);
    expect(dump).toMatch(/\[1\.2\.840\.10008\.1\.2\.1\]/);
    const { mask: back, info } = readBack(file, axialDir, axial.volume.shape);
    expect(Buffer.from(back).equals(Buffer.from(mask.data))).toBe(true);
    expect(info).toMatchObject({
      frames: 12,
      segmentationType: 'BINARY',
      transferSyntax: '1.2.840.10008.1.2.1',
      category: '91723000',
      type: '78961009',
      algorithmType: 'AUTOMATIC',
      algorithmName: 'spleen-phantom-demo 1.0.0',
      patientId: 'PHANTOM-0001',
      studyUid: axial.studyInstanceUid,
      frameOfReferenceUid: axial.frameOfReferenceUid,
    });
    expect(info.seriesUid).not.toBe(axial.seriesInstanceUid);
    expect(info.seriesDescription).toMatch(/NOT FOR CLINICAL USE/);
    expect(info.maxPositionErrorMm).toBeLessThan(1e-6);
  });

  const sources: Array<[string, SeriesOptions, number]> = [
    ['a series stored in reverse order', { reverse: true }, 0],
    ['an Enhanced CT with frames in reverse order', { enhanced: true, reverse: true }, 0],
    ['a gantry-tilted series', {}, 12],
  ];
  it.each(sources)('maps frames to slices by SOPInstanceUID for %s', async (name, options, tiltDeg) => {
    const source = tiltDeg === 0 ? image : tilted(image, tiltDeg);
    const dir = await writeDicomSeries(source, path.join(root, name.replace(/\W+/g, '-')), { intercept: -1024, ...options });
    const series = await readDicomSeries(dir);
    const mask = testMask(series);
    const file = path.join(dir, '..', `${path.basename(dir)}.seg.dcm`);
    await writeDicomSeg(file, series, mask, { model: { name: 'bundle', version: '0.5.9' } });
    expect(dciodvfyErrors(file)).toEqual([]);
    const { mask: back, info } = readBack(file, dir, series.volume.shape);
    expect(Buffer.from(back).equals(Buffer.from(mask.data))).toBe(true);
    expect(info.seriesDescription).not.toMatch(/CLINICAL/);
  });

  it('copies a Latin-1 patient name into the UTF-8 SEG unchanged', async () => {
    const dir = await writeDicomSeries(image, path.join(root, 'latin1'), { intercept: -1024 });
    const script = [
      'import os, sys, pydicom',
      'for name in os.listdir(sys.argv[1]):',
      '    p = os.path.join(sys.argv[1], name)',
      '    ds = pydicom.dcmread(p)',
      "    ds.SpecificCharacterSet = 'ISO_IR 100'",
      "    ds.PatientName = 'M\u00fcller^J\u00fcrgen'",
      '    ds.save_as(p)',
    ].join('\n');
    run(SYSTEM_PYTHON, ['-c', script, dir]);
    const series = await readDicomSeries(dir);
    expect(series.source.PatientName).toBe('M\u00fcller^J\u00fcrgen');
    const file = path.join(root, 'latin1.seg.dcm');
    await writeDicomSeg(file, series, testMask(series), { model: DEMO });
    const { info } = readBack(file, dir, series.volume.shape);
    expect(info).toMatchObject({ patientName: 'M\u00fcller^J\u00fcrgen', charset: 'ISO_IR 192' });
  });

  it('keeps every frame when the mask is empty', async () => {
    const file = path.join(root, 'empty.seg.dcm');
    const written = await writeDicomSeg(file, axial, testMask(axial, true), { model: DEMO });
    expect(written.frameSlices).toHaveLength(18);
    expect(dciodvfyErrors(file)).toEqual([]);
    const { mask: back, info } = readBack(file, axialDir, axial.volume.shape);
    expect(info.frames).toBe(18);
    expect(back.every((v) => v === 0)).toBe(true);
  });
});
