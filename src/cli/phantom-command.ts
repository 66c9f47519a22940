/**
 * `spleen-trt phantom -o <dir> --count N --seed S`: a series of synthetic abdominal CTs with their
 * spleen labels, in the images/ + labels/ layout `evaluate` reads (and MONAI's training scripts,
 * with matching file names). Case n of seed S is the same on every machine.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { makePhantom, summarizeMask, writeNifti, type Shape3, type Vec3 } from '../index.js';
import { encodePhantomImage } from '../phantom/encode-phantom-image.js';
import { caseSeed, samplePhantomOptions } from '../phantom/sample-phantom-options.js';
import { writeFileAtomic } from '../write-file-atomic.js';
import { ProgressLine } from './progress.js';
import { parseNumberFlag, UsageError } from './usage-error.js';

const gzipAsync = promisify(gzip);

export const PHANTOM_USAGE = `Usage: spleen-trt phantom [-o <dir>] [--count <n>] [--seed <s>] [options]

Writes synthetic abdominal CTs with ground-truth spleen labels:
  <dir>/images/phantom_<s>_<n>.nii.gz   int16 CT in HU (some with scl_slope/scl_inter)
  <dir>/labels/phantom_<s>_<n>.nii.gz   uint8 label, 1 = spleen
  <dir>/phantoms.json                   each case's settings and spleen volume
Each case draws its anatomy (organ sizes, positions, HU, spleen shape) and its acquisition
(spacing 0.6-1.0 mm in-plane and 1-5 mm slices, field of view, LPS/RAS/permuted/oblique
storage, contrast, noise) from the seed. For demonstration and testing, not anatomy.

Options:
  -o, --output <dir>     output directory (default: ./spleen-trt-phantoms)
  --count <n>            number of cases (default: 1)
  --seed <s>             series seed, an integer (default: 1)
  --first <n>            index of the first case (default: 0), to extend a series
  --shape <AxBxC>        the same voxel grid for every case (default: random)
  --spacing <AxBxC>      the same voxel size in mm for every case (default: random)
  --json                 print the manifest as JSON on stdout`;

/** One case as phantoms.json records it. */
export interface PhantomCaseRecord {
  name: string;
  image: string;
  label: string;
  seed: number;
  shape: Shape3;
  spacingMm: Vec3;
  orientation: string;
  obliqueDeg: Vec3;
  contrast: string;
  patientScale: number;
  noiseHu: number;
  storage: { sclSlope: number; sclInter: number } | null;
  hu: { spleen: number; liver: number; kidney: number; muscle: number };
  spleenVoxels: number;
  spleenVolumeMl: number;
}

function parseTriple(value: string | undefined, flag: string, check: (n: number) => boolean, what: string): [number, number, number] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(/[x,]/i).map((p) => Number(p.trim()));
  if (parts.length !== 3 || parts.some((n, i) => value.split(/[x,]/i)[i].trim() === '' || !Number.isFinite(n) || !check(n))) {
    throw new UsageError(`${flag} expects ${what}, got "${value}"`);
  }
  return [parts[0], parts[1], parts[2]];
}

export async function phantomCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      count: { type: 'string' },
      seed: { type: 'string' },
      first: { type: 'string' },
      shape: { type: 'string' },
      spacing: { type: 'string' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${PHANTOM_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`phantom takes no positional arguments, got "${positionals[0]}"`);
  const count = parseNumberFlag(values.count, '--count', (n) => Number.isInteger(n) && n >= 1 && n <= 100000, 'an integer in 1..100000') ?? 1;
  const seed = parseNumberFlag(values.seed, '--seed', (n) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff, 'an integer in 0..4294967295') ?? 1;
  const first = parseNumberFlag(values.first, '--first', (n) => Number.isInteger(n) && n >= 0 && n <= 1e9, 'an integer >= 0') ?? 0;
  const shape = parseTriple(values.shape, '--shape', (n) => Number.isInteger(n) && n >= 1 && n <= 2048, '3 integers in 1..2048 such as 512x512x90');
  const spacingMm = parseTriple(values.spacing, '--spacing', (n) => n > 0 && n < 100, '3 sizes in mm such as 0.8x0.8x2.5');
  const outputDir = values.output ?? 'spleen-trt-phantoms';
  const imagesDir = path.join(outputDir, 'images');
  const labelsDir = path.join(outputDir, 'labels');
  await mkdir(imagesDir, { recursive: true });
  await mkdir(labelsDir, { recursive: true });

  const progress = new ProgressLine();
  const digits = Math.max(3, String(first + count - 1).length);
  const records: PhantomCaseRecord[] = [];
  for (let n = first; n < first + count; n++) {
    const name = `phantom_${seed}_${String(n).padStart(digits, '0')}`;
    const label = `[${n - first + 1}/${count}] ${name}`;
    progress.update(`${label}: generating`);
    const options = samplePhantomOptions(caseSeed(seed, n), { shape, spacingMm });
    const phantom = makePhantom(options);
    progress.update(`${label}: writing`);
    const imagePath = path.join(imagesDir, `${name}.nii.gz`);
    const labelPath = path.join(labelsDir, `${name}.nii.gz`);
    // gzip level 1: noisy CT barely compresses better at 6 (~2 %), which takes ~1.6x as long.
    await writeFileAtomic(imagePath, await gzipAsync(encodePhantomImage(phantom), { level: 1 }));
    await writeNifti(labelPath, { ...phantom.label, data: Float32Array.from(phantom.label.data) }, { datatype: 'uint8', description: 'spleen-trt phantom label' });
    const summary = summarizeMask(phantom.label.data, phantom.label.shape, phantom.label.affine);
    const { info } = phantom;
    records.push({
      name,
      image: path.relative(outputDir, imagePath),
      label: path.relative(outputDir, labelPath),
      seed: info.seed,
      shape: phantom.image.shape,
      spacingMm: phantom.image.spacingMm,
      orientation: info.orientation,
      obliqueDeg: info.obliqueDeg,
      contrast: info.contrast,
      patientScale: info.patientScale,
      noiseHu: info.noiseHu,
      storage: info.storage,
      hu: info.hu,
      spleenVoxels: summary.voxelCount,
      spleenVolumeMl: Math.round(summary.volumeMl * 100) / 100,
    });
    progress.clear();
    if (!values.json) {
      const grid = `${phantom.image.shape.join('x')} @ ${phantom.image.spacingMm.map((s) => Number(s.toFixed(3))).join('x')} mm ${info.orientation}${info.obliqueDeg.some((d) => d !== 0) ? ' oblique' : ''}`;
      process.stderr.write(`${label}: ${grid}, ${info.contrast}, spleen ${summary.volumeMl.toFixed(0)} mL -> ${imagePath}\n`);
    }
  }
  const manifest = { generator: 'spleen-trt phantom', seed, first, count, cases: records };
  await writeFileAtomic(path.join(outputDir, 'phantoms.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  if (values.json) process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
  return 0;
}
