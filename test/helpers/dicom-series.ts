/**
 * Builds DICOM series for the tests with independent tools: pydicom writes the series from a
 * NIfTI (test/helpers/make-dicom-series.py), dcmtk and gdcm convert transfer syntaxes, dcm2niix
 * converts back for the reference volume. Everything lands in a temporary directory.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readNifti, writeNifti, type Volume } from '../../src/index.js';
import { hasCommand, hasPythonModules, SYSTEM_PYTHON } from './system-tools.js';

const SCRIPT = path.join(import.meta.dirname, 'make-dicom-series.py');

/** True when every tool the DICOM fixtures need is installed. */
export function hasDicomTools(): boolean {
  return (
    hasPythonModules('pydicom', 'nibabel', 'numpy') &&
    ['dcmconv', 'dcmcrle', 'dcmcjpeg', 'dcmcjpls', 'gdcmconv', 'dcm2niix', 'dcmdump', 'dcmodify'].every(hasCommand)
  );
}

export function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${result.stderr}${result.stdout}`);
  return `${result.stdout}${result.stderr}`;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `spleen-trt-${prefix}-`));
}

export interface SeriesOptions {
  slope?: number;
  intercept?: number;
  unsigned?: boolean;
  bitsStored?: number;
  junkHighBits?: boolean;
  reverse?: boolean;
  implicit?: boolean;
  enhanced?: boolean;
  extras?: boolean;
  seriesUid?: string;
}

/** Writes `image` (integer HU) as a NIfTI, then as a DICOM series in `outDir` with pydicom. */
export async function writeDicomSeries(image: Volume, outDir: string, options: SeriesOptions = {}): Promise<string> {
  const nifti = `${outDir}.source.nii.gz`;
  await writeNifti(nifti, image, { datatype: 'int16' });
  const args = [SCRIPT, nifti, outDir];
  if (options.slope !== undefined) args.push('--slope', String(options.slope));
  if (options.intercept !== undefined) args.push('--intercept', String(options.intercept));
  if (options.bitsStored !== undefined) args.push('--bits-stored', String(options.bitsStored));
  if (options.seriesUid !== undefined) args.push('--series-uid', options.seriesUid);
  for (const [flag, on] of [
    ['--unsigned', options.unsigned],
    ['--junk-high-bits', options.junkHighBits],
    ['--reverse', options.reverse],
    ['--implicit', options.implicit],
    ['--enhanced', options.enhanced],
    ['--extras', options.extras],
  ] as const) {
    if (on) args.push(flag);
  }
  run(SYSTEM_PYTHON, args);
  return outDir;
}

export type SyntaxKind = 'deflated' | 'rle' | 'jpeg-14' | 'jpeg-14-sv1' | 'jpeg-ls' | 'jpeg-2000' | 'big-endian';

/** Converts every file of a flat series directory to another transfer syntax, into `outDir`. */
export function convertSeries(inDir: string, outDir: string, kind: SyntaxKind): string {
  mkdirSync(outDir, { recursive: true });
  for (const name of readdirSync(inDir)) {
    const src = path.join(inDir, name);
    const dst = path.join(outDir, name);
    switch (kind) {
      case 'deflated': run('dcmconv', ['+td', src, dst]); break;
      case 'big-endian': run('dcmconv', ['+tb', src, dst]); break;
      case 'rle': run('dcmcrle', [src, dst]); break;
      case 'jpeg-14': run('dcmcjpeg', ['+el', src, dst]); break;
      case 'jpeg-14-sv1': run('dcmcjpeg', ['+e1', src, dst]); break;
      case 'jpeg-ls': run('dcmcjpls', [src, dst]); break;
      case 'jpeg-2000': run('gdcmconv', ['--j2k', src, dst]); break;
    }
  }
  return outDir;
}

/** The transfer syntax UID of a file, as dcmdump reads it. */
export function transferSyntaxOf(file: string): string {
  const line = run('dcmdump', ['-s', '-Un', '+P', '0002,0010', '-q', file]).split('\n')[0];
  return /\[(.*?)\]/.exec(line)?.[1] ?? line;
}

/**
 * dcm2niix's NIfTI of a series directory: the volume with the most slices. For gantry tilt it also
 * writes a resampled `_Tilt_` volume; the one returned is the unresampled one.
 */
export async function dcm2niixVolume(seriesDir: string): Promise<Volume> {
  const out = tempDir('dcm2niix');
  run('dcm2niix', ['-z', 'n', '-f', 'v', '-o', out, seriesDir]);
  const volumes = await Promise.all(readdirSync(out).filter((n) => n.endsWith('.nii') && !n.includes('_Tilt_')).map(async (n) => (await readNifti(path.join(out, n))).volume));
  if (volumes.length === 0) throw new Error(`dcm2niix wrote no NIfTI for ${seriesDir}`);
  return volumes.sort((a, b) => b.shape[2] - a.shape[2])[0];
}

/** The same image with its slice axis sheared along j by `degrees`: a gantry-tilted acquisition. */
export function tilted(image: Volume, degrees: number): Volume {
  const a = Float64Array.from(image.affine);
  const kLength = Math.hypot(a[2], a[6], a[10]);
  const jLength = Math.hypot(a[1], a[5], a[9]);
  const shift = Math.tan((degrees * Math.PI) / 180) * kLength;
  for (let r = 0; r < 3; r++) a[r * 4 + 2] += (shift * a[r * 4 + 1]) / jLength;
  return { ...image, affine: a };
}
