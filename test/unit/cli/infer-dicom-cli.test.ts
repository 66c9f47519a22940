/**
 * `infer` on DICOM: a folder or zip in, SEG / NIfTI / STL out, the same mask as the NIfTI path
 * (dcm2niix's conversion of the same series), file names free of patient data, and bad input
 * reported with its code and nothing written.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync, cpSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readDicomSeries } from '../../../src/dicom/index.js';
import { makePhantom, readNifti } from '../../../src/index.js';
import { hasDicomTools, run as runTool, tempDir, writeDicomSeries } from '../../helpers/dicom-series.js';
import { requireTool, SYSTEM_PYTHON } from '../../helpers/system-tools.js';
import { zipDirectory } from '../../helpers/zip.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const CLI = path.join(ROOT, 'dist/cli/main.js');
const READ_SEG = path.join(ROOT, 'test/helpers/read-dicom-seg.py');

function cli(args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function allFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)) : [];
}

function segMask(seg: string, sourceDir: string): Uint8Array {
  const raw = `${seg}.raw`;
  runTool(SYSTEM_PYTHON, [READ_SEG, seg, sourceDir, raw]);
  return new Uint8Array(readFileSync(raw));
}

describe.runIf(existsSync(CLI) && requireTool(hasDicomTools(), 'pydicom, dcmtk, gdcm tools and dcm2niix'))('spleen-trt infer on DICOM', () => {
  const tmp = tempDir('infer-dicom');
  const series = path.join(tmp, 'study');
  const niftiDir = path.join(tmp, 'nifti');

  beforeAll(async () => {
    const { image } = makePhantom({ shape: [48, 40, 12], spacingMm: [3, 3, 8], seed: 5 });
    await writeDicomSeries(image, series, { intercept: -1024, reverse: true, extras: true });
    // The NIfTI path's input: dcm2niix's conversion of the same series (the CT files alone).
    cpSync(series, path.join(tmp, 'only-ct'), { recursive: true, filter: (src) => !src.includes('other') && !src.endsWith('.txt') });
    runTool('sh', ['-c', 'mkdir -p "$1" && dcm2niix -z y -f ct -o "$1" "$2" >/dev/null', 'sh', niftiDir, path.join(tmp, 'only-ct')]);
  });

  it('writes SEG + STL for a DICOM folder and the same mask as the NIfTI path', async () => {
    const out = path.join(tmp, 'out');
    const result = cli(['infer', series, path.join(niftiDir, 'ct.nii.gz'), '-o', out, '--stl', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as { files: Array<{ output: string; dicom?: { seriesInstanceUid: string; selection: string; inventory: Array<{ seriesInstanceUid: string; rejected?: string }>; seg: { path: string; frames: number } }; stl?: { path: string; volumeMl: number; surfaceAreaMm2: number }; summary: { volumeMl: number; voxelCount: number } }> };
    const [fromDicom, fromNifti] = report.files;
    expect(fromDicom.dicom!.selection).toMatch(/most slices/);
    expect(fromDicom.dicom!.inventory.map((s) => s.rejected ?? 'chosen').sort()).toEqual(['a localizer', 'chosen', 'image type DERIVED\\SECONDARY\\AXIAL, not ORIGINAL\\PRIMARY']);
    expect(fromDicom.output).toBe(fromDicom.dicom!.seg.path);
    expect(path.basename(fromDicom.output)).toBe(`series-${fromDicom.dicom!.seriesInstanceUid}_seg.dcm`);
    // No patient data in any name written.
    for (const file of allFiles(out)) expect(file).not.toMatch(/phantom|PHANTOM-0001|study/i);
    const niftiMask = (await readNifti(fromNifti.output)).volume.data;
    const back = segMask(fromDicom.output, series);
    expect(back.length).toBe(niftiMask.length);
    let differing = 0;
    for (let v = 0; v < back.length; v++) if (back[v] !== niftiMask[v]) differing++;
    expect(differing).toBe(0);
    expect(fromDicom.summary.voxelCount).toBe(fromNifti.summary.voxelCount);
    expect(fromDicom.summary.voxelCount).toBeGreaterThan(0);
    expect(fromDicom.stl!.path.endsWith('.stl')).toBe(true);
    expect(Math.abs(fromDicom.stl!.volumeMl - fromDicom.summary.volumeMl) / fromDicom.summary.volumeMl).toBeLessThan(0.1);
    expect(fromNifti.stl!.volumeMl).toBeCloseTo(fromDicom.stl!.volumeMl, 3);
  });

  it('reads a zip; -o <file>.dcm names the SEG, --output-format both adds the NIfTI beside it', () => {
    const zip = path.join(tmp, 'upload.zip');
    writeFileSync(zip, zipDirectory(series));
    const out = path.join(tmp, 'zip-out');
    const result = cli(['infer', zip, '-o', path.join(out, 'result.dcm'), '--output-format', 'both']);
    expect(result.code, result.stderr).toBe(0);
    expect(allFiles(out).map((f) => path.basename(f)).sort()).toEqual(['result.dcm', 'result.nii.gz']);
  });

  it('--series reads the series asked for, even one the default rules pass over', async () => {
    const { inventory } = await readDicomSeries(series);
    const mpr = inventory.find((s) => s.imageType.startsWith('DERIVED'))!;
    const out = path.join(tmp, 'series-out');
    const result = cli(['infer', series, '--series', mpr.seriesInstanceUid, '--output-format', 'nifti', '-o', out, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const [report] = (JSON.parse(result.stdout) as { files: Array<{ output: string; dicom: { selection: string } }> }).files;
    expect(report.dicom.selection).toMatch(/as asked \(--series\)/);
    expect(path.basename(report.output)).toBe(`series-${mpr.seriesInstanceUid}_trans.nii.gz`);
    expect((await readNifti(report.output)).volume.shape).toEqual([4, 4, 3]);
  });

  it('bad DICOM: error code, exit 1, nothing written', () => {
    const broken = path.join(tmp, 'broken');
    cpSync(path.join(tmp, 'only-ct'), broken, { recursive: true });
    const victim = allFiles(broken).sort()[4];
    truncateSync(victim, 1000);
    const out = path.join(tmp, 'broken-out');
    const result = cli(['infer', broken, '-o', out, '--stl']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/error ERR_DICOM_INVALID: .*truncated/);
    expect(allFiles(out)).toEqual([]);
  });

  it('refuses a SEG for NIfTI input (usage error)', () => {
    const result = cli(['infer', path.join(niftiDir, 'ct.nii.gz'), '--output-format', 'dicom-seg']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/needs DICOM inputs/);
  });
});
