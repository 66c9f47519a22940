/**
 * A zipped DICOM series through the service (in-process runner): upload -> 202 -> done, the SEG
 * downloaded and read back by pydicom into exactly the mask the in-process DICOM path gives
 * (readDicomBuffers -> segment), the STL and the CT as NIfTI; bad zips refused with a code and
 * nothing stored; no patient data in the job's status.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readDicomBuffers, readNifti, type DicomSeries } from '../../../src/index.js';
import { hasDicomTools, run, tempDir, writeDicomSeries } from '../../helpers/dicom-series.js';
import { requireTool, SYSTEM_PYTHON } from '../../helpers/system-tools.js';
import { zipDirectory } from '../../helpers/zip.js';
import { ControlledSegmenter, postVolume, smallPhantom, startServer, storedFiles, waitFinished, type TestServer } from './server-test-helpers.js';

const READ_SEG = path.join(import.meta.dirname, '../../helpers/read-dicom-seg.py');

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A zip holding one entry (stored, not deflated) named `name`. */
function zipOf(name: string, data: Uint8Array): Uint8Array {
  const root = tempDir('zip-one');
  const file = path.join(root, name);
  run('mkdir', ['-p', path.dirname(file)]);
  writeFileSync(file, data);
  return zipDirectory(root);
}

describe.runIf(requireTool(hasDicomTools(), 'pydicom, dcmtk, gdcm, dcm2niix'))('serve: zipped DICOM series', () => {
  const root = tempDir('serve-dicom');
  let seriesDir = '';
  let zip: Uint8Array;
  let series: DicomSeries;

  beforeAll(async () => {
    seriesDir = await writeDicomSeries(smallPhantom(2).image, path.join(root, 'series'), { intercept: -1024 });
    zip = zipDirectory(seriesDir);
    series = await readDicomBuffers(zip);
  });

  it('segments an uploaded zip and offers the SEG (equal to the in-process DICOM path), the STL and the CT', async () => {
    const segmenter = new ControlledSegmenter();
    server = await startServer({ segmenter });
    const response = await postVolume(server.base, zip, '', { 'content-type': 'application/zip' });
    expect(response.status).toBe(202);
    const accepted = await response.json();
    expect(accepted.input).toMatchObject({ format: 'dicom', shape: series.volume.shape, seriesInstanceUid: series.seriesInstanceUid });
    const job = await waitFinished(server.base, accepted.id);
    expect(job.state).toBe('done');
    expect(Object.keys(job.urls).sort()).toEqual(['ct', 'mask', 'preview', 'seg', 'self', 'stl']);
    // Nothing about the patient in the status: the fixture's name, ID and birth date.
    expect(JSON.stringify(job)).not.toMatch(/Phantom|PHANTOM-0001|19700101/);

    const seg = await fetch(`${server.base}/v1/segmentations/${job.id}/seg.dcm`);
    expect(seg.status).toBe(200);
    expect(seg.headers.get('content-type')).toBe('application/dicom');
    expect(seg.headers.get('content-disposition')).toBe(`attachment; filename="${job.id}-seg.dcm"`);
    const segFile = path.join(root, 'job.seg.dcm');
    writeFileSync(segFile, new Uint8Array(await seg.arrayBuffer()));
    const raw = `${segFile}.mask.raw`;
    const info = JSON.parse(run(SYSTEM_PYTHON, [READ_SEG, segFile, seriesDir, raw]));
    expect(info).toMatchObject({ segmentationType: 'BINARY', type: '78961009', studyUid: series.studyInstanceUid, frameOfReferenceUid: series.frameOfReferenceUid });
    // The in-process DICOM path: the same reader and the same Segmenter on the same zip.
    const expected = (await new ControlledSegmenter().segment(series.volume)).mask.data;
    const back = new Uint8Array(await (await import('node:fs/promises')).readFile(raw));
    expect(expected.some((v) => v === 1)).toBe(true);
    expect(Buffer.from(back).equals(Buffer.from(expected))).toBe(true);

    const stl = await fetch(`${server.base}/v1/segmentations/${job.id}/mask.stl`);
    expect(stl.headers.get('content-type')).toBe('model/stl');
    const stlBytes = new Uint8Array(await stl.arrayBuffer());
    // Binary STL: 80-byte header, triangle count, 50 bytes per triangle.
    const triangles = new DataView(stlBytes.buffer).getUint32(80, true);
    expect(triangles).toBeGreaterThan(0);
    expect(stlBytes.length).toBe(84 + 50 * triangles);

    const ct = await fetch(`${server.base}/v1/segmentations/${job.id}/ct.nii.gz`);
    const ctVolume = (await readNifti(new Uint8Array(await ct.arrayBuffer()))).volume;
    expect(ctVolume.shape).toEqual(series.volume.shape);
    expect(Array.from(ctVolume.affine)).toEqual(Array.from(series.volume.affine).map((v) => Math.fround(v)));
    expect(Buffer.from(ctVolume.data.buffer).equals(Buffer.from(series.volume.data.buffer))).toBe(true);
  });

  it('takes the zip in multipart/form-data too', async () => {
    server = await startServer({ segmenter: new ControlledSegmenter() });
    const form = new FormData();
    form.append('file', new Blob([Buffer.from(zip)]), 'study.zip');
    const response = await fetch(`${server.base}/v1/segmentations?wait=30`, { method: 'POST', body: form });
    const job = await response.json();
    expect(job).toMatchObject({ state: 'done', input: { format: 'dicom' } });
    expect(job.urls.seg).toBe(`/v1/segmentations/${job.id}/seg.dcm`);
  });

  it('refuses a corrupt zip, a zip without DICOM, a voxel bomb and a zip bomb with 4xx codes, storing nothing and naming no entry', async () => {
    const segmenter = new ControlledSegmenter();
    server = await startServer({ segmenter, limits: { maxVoxels: series.volume.data.length - 1 } });
    const expectRefused = async (body: Uint8Array, status: number, code: string): Promise<any> => {
      const response = await postVolume(server!.base, body);
      const problem = await response.json();
      expect({ status: response.status, code: problem.code }).toEqual({ status, code });
      expect(await storedFiles(server!.dataDir)).toEqual({ jobs: [], uploads: [] });
      return problem;
    };
    await expectRefused(zip.subarray(0, Math.floor(zip.length / 2)), 422, 'ERR_DICOM_INVALID');
    // Folder names from a hospital may hold a patient's name: never repeated back.
    const text = await expectRefused(zipOf('DOE_JOHN_12345/notes.txt', new TextEncoder().encode('not DICOM')), 422, 'ERR_DICOM_INVALID');
    expect(text.detail).not.toMatch(/DOE_JOHN/);
    // An entry that does not inflate: the zip layer names it, the service does not.
    const broken = zipOf('DOE_JOHN_12345/IM1', new Uint8Array(100)).slice();
    broken[30 + 'DOE_JOHN_12345/IM1'.length + 2] ^= 0xff;
    const inflate = await expectRefused(broken, 422, 'ERR_DICOM_INVALID');
    expect(inflate.detail).toMatch(/does not inflate/);
    expect(inflate.detail).not.toMatch(/DOE_JOHN/);
    // One voxel over the limit: refused from the headers, before the pixels are read.
    await expectRefused(zip, 422, 'ERR_DICOM_INVALID');
    // A zip bomb: an entry declaring 3.75 GiB inflated, refused from its declared size (413).
    const bomb = zipOf('PATIENT_NAME/IM1', new Uint8Array(16)).slice();
    const view = new DataView(bomb.buffer);
    view.setUint32(22, 0xf0000000, true);
    for (let p = bomb.length - 22; p >= 0; p--) {
      if (view.getUint32(p, true) === 0x02014b50) view.setUint32(p + 24, 0xf0000000, true);
    }
    const tooLarge = await expectRefused(bomb, 413, 'ERR_INPUT_TOO_LARGE');
    expect(tooLarge.detail).not.toMatch(/PATIENT_NAME/);
    expect(segmenter.runs).toBe(0);
  });
});
