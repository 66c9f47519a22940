/**
 * Bad DICOM input ends in a coded SpleenTrtError that names the problem, before any pixel buffer
 * is allocated where the headers already tell.
 */
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readDicomBuffers, readDicomSeries } from '../../../src/dicom/index.js';
import { makePhantom } from '../../../src/index.js';
import { convertSeries, hasDicomTools, run, tempDir, writeDicomSeries } from '../../helpers/dicom-series.js';
import { rejection } from '../../helpers/rejection.js';
import { requireTool, SYSTEM_PYTHON } from '../../helpers/system-tools.js';

describe.runIf(requireTool(hasDicomTools(), 'pydicom, dcmtk, gdcm tools and dcm2niix'))('readDicomSeries on bad input', () => {
  const root = tempDir('dicom-bad');
  let good = '';
  let files: string[] = [];

  /** A copy of the good series to damage. */
  function copy(name: string): string {
    const dir = path.join(root, name);
    cpSync(good, dir, { recursive: true });
    return dir;
  }

  beforeAll(async () => {
    const { image } = makePhantom({ shape: [32, 32, 8], spacingMm: [8, 8, 20], seed: 2 });
    good = await writeDicomSeries(image, path.join(root, 'good'));
    files = readdirSync(good).sort();
  });

  it('a truncated file', async () => {
    const dir = copy('truncated');
    const file = path.join(dir, files[3]);
    truncateSync(file, readFileSync(file).length - 700);
    const error = await rejection(readDicomSeries(dir));
    expect(error.code).toBe('ERR_DICOM_INVALID');
    expect(error.message).toMatch(/truncated/);
  });

  it('a file that only looks like DICOM', async () => {
    const fake = new Uint8Array(600);
    fake.set(Buffer.from('DICM'), 128);
    fake.fill(0x41, 132);
    const error = await rejection(readDicomBuffers([{ name: 'fake.dcm', bytes: fake }]));
    expect(error.code).toBe('ERR_DICOM_INVALID');
    expect(error.message).toMatch(/fake\.dcm is not a readable DICOM file/);
  });

  it('no DICOM at all', async () => {
    const dir = path.join(root, 'empty');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'notes.txt'), 'hello');
    const error = await rejection(readDicomSeries(dir));
    expect(error.code).toBe('ERR_DICOM_INVALID');
    expect(error.message).toMatch(/No DICOM files/);
  });

  it('a series of one slice', async () => {
    const dir = path.join(root, 'one');
    mkdirSync(dir);
    cpSync(path.join(good, files[0]), path.join(dir, files[0]));
    const error = await rejection(readDicomSeries(dir));
    expect(error.code).toBe('ERR_DICOM_INVALID');
    expect(error.message).toMatch(/1 slice: a volume needs at least 2/);
  });

  it('a missing slice', async () => {
    const dir = copy('missing');
    rmSync(path.join(dir, files[4]));
    const error = await rejection(readDicomSeries(dir));
    expect(error.message).toMatch(/Missing slices or irregular spacing/);
  });

  it('a duplicate position', async () => {
    const dir = copy('duplicate');
    cpSync(path.join(dir, files[2]), path.join(dir, 'copy-of-2'));
    const error = await rejection(readDicomSeries(dir));
    expect(error.message).toMatch(/Duplicate slice position/);
  });

  it('mixed orientations', async () => {
    const dir = copy('mixed-iop');
    run('dcmodify', ['-nb', '-m', '(0020,0037)=0.9961947\\0.0871557\\0\\-0.0871557\\0.9961947\\0', path.join(dir, files[5])]);
    const error = await rejection(readDicomSeries(dir));
    expect(error.message).toMatch(/Mixed orientations/);
  });

  it('differing rows and columns', async () => {
    const dir = copy('mixed-size');
    run('dcmodify', ['-nb', '-m', '(0028,0010)=16', path.join(dir, files[1])]);
    const error = await rejection(readDicomSeries(dir));
    expect(error.code).toBe('ERR_DICOM_INVALID');
    expect(error.message).toMatch(/Differing image sizes/);
  });

  it('a rows x columns x frames bomb, refused from the header', async () => {
    const dir = copy('bomb');
    for (const name of files) run('dcmodify', ['-nb', '-m', '(0028,0010)=65535', '-m', '(0028,0011)=65535', path.join(dir, name)]);
    const error = await rejection(readDicomSeries(dir));
    expect(error.code).toBe('ERR_DICOM_INVALID');
    expect(error.message).toMatch(/65535x65535x8 = \d+ voxels, more than the limit/);
  });

  it('an Enhanced CT claiming 1000 frames of 30000 x 30000', async () => {
    const dir = path.join(root, 'bomb-frames');
    mkdirSync(dir);
    const file = path.join(dir, 'mf.dcm');
    const script = [
      'import pydicom, sys',
      'from pydicom.dataset import Dataset, FileMetaDataset',
      'ds = pydicom.dcmread(sys.argv[1])',
      "ds.SOPClassUID = '1.2.840.10008.5.1.4.1.1.2.1'",
      'ds.NumberOfFrames = 1000',
      'ds.Rows = 30000',
      'ds.Columns = 30000',
      'ds.PerFrameFunctionalGroupsSequence = [Dataset() for _ in range(1000)]',
      'ds.save_as(sys.argv[2])',
    ].join('\n');
    run(SYSTEM_PYTHON, ['-c', script, path.join(good, files[0]), file]);
    const error = await rejection(readDicomSeries(dir));
    expect(error.code).toBe('ERR_DICOM_INVALID');
    expect(error.message).toMatch(/30000x30000x1000 = \d+ voxels, more than the limit/);
  });

  it('a transfer syntax it does not read, by name', async () => {
    const dir = convertSeries(good, path.join(root, 'big-endian'), 'big-endian');
    const error = await rejection(readDicomSeries(dir));
    expect(error.code).toBe('ERR_DICOM_UNSUPPORTED');
    expect(error.message).toMatch(/1\.2\.840\.10008\.1\.2\.2 \(Explicit VR Big Endian \(retired\)\) is not supported/);
  });

  it('a --series that is not there', async () => {
    const error = await rejection(readDicomSeries(good, { seriesUid: '1.2.3.4' }));
    expect(error.message).toMatch(/Series 1\.2\.3\.4 is not in the input/);
  });
});

/** Found by the fuzz harness (target dicom): no tools needed, the seeds are committed fixtures. */
describe('readDicomBuffers on an element running past the end of the file', () => {
  it('is ERR_DICOM_INVALID, not a bare string thrown later by an accessor', async () => {
    const dir = path.join(import.meta.dirname, '../../fixtures/dicom/implicit');
    const names = readdirSync(dir).sort();
    const damaged = new Uint8Array(readFileSync(path.join(dir, names[2])));
    // StudyInstanceUID (0020,000D) in implicit VR: tag, then a 4-byte length; declare 16 MiB.
    let at = -1;
    for (let p = 132; p < damaged.length - 8 && at < 0; p++) {
      if (damaged[p] === 0x20 && damaged[p + 1] === 0x00 && damaged[p + 2] === 0x0d && damaged[p + 3] === 0x00) at = p;
    }
    expect(at).toBeGreaterThan(0);
    new DataView(damaged.buffer).setUint32(at + 4, 0x01000000, true);
    const sources = names.map((name, n) => ({ name, bytes: n === 2 ? damaged : new Uint8Array(readFileSync(path.join(dir, name))) }));
    const error = await rejection(readDicomBuffers(sources));
    expect(error).toMatchObject({ code: 'ERR_DICOM_INVALID' });
    expect((error as Error).message).toMatch(/x0020000d .*runs past the end of the file/);
  });
});

/**
 * Found by the long fuzz run (target dicom, seed 1, cases 60031, 60595, 74005: damaged JPEG-LS
 * frames): each alone is ERR_DICOM_INVALID, but after a few hundred such failures CharLS's WASM
 * heap gave "RuntimeError: memory access out of bounds" (uncoded) on the next frame.
 */
describe('the WASM decoders after many failed frames', () => {
  it('stay coded, and an intact JPEG-LS series still reads as the uncompressed one', async () => {
    const { fuzzTargets } = await import('../../../src/fuzz/fuzz-targets.js');
    const { caseRandom } = await import('../../../src/fuzz/fuzz-case.js');
    const target = fuzzTargets().find((t) => t.name === 'dicom')!;
    const inputs = [60031, 60595, 74005].map((index) => target.make(caseRandom(1, 'dicom', index)));
    for (let round = 0; round < 140; round++) {
      for (const input of inputs) expect(await rejection(target.run(input))).toMatchObject({ code: 'ERR_DICOM_INVALID' });
    }
    const fixtures = path.join(import.meta.dirname, '../../fixtures/dicom');
    const jpegLs = await readDicomSeries(path.join(fixtures, 'jpeg-ls'));
    const plain = await readDicomSeries(path.join(fixtures, 'explicit'));
    expect(jpegLs.transferSyntaxes).toEqual(['1.2.840.10008.1.2.4.80']);
    expect(Array.from(jpegLs.volume.data)).toEqual(Array.from(plain.volume.data));
  }, 60_000);
});
