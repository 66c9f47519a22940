/**
 * A zipped DICOM series through `spleen-trt serve --queue` and a `spleen-trt worker` process on a
 * real Redis: the stored zip is read by the worker with the same DICOM reader, and the SEG it
 * writes, served by the service, reads back (pydicom) into exactly the mask an in-process
 * Segmenter gives on the series; a zip without DICOM is refused before anything is stored or queued.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDicomBuffers, Segmenter } from '../../../src/index.js';
import { hasDicomTools, run, tempDir, writeDicomSeries } from '../../helpers/dicom-series.js';
import { redisAvailable, RedisServer } from '../../helpers/redis-server.js';
import { CLI, startCli, startServeQueue } from '../../helpers/start-cli.js';
import { requireTool, SYSTEM_PYTHON } from '../../helpers/system-tools.js';
import { zipDirectory } from '../../helpers/zip.js';
import { smallPhantom } from '../server/server-test-helpers.js';

const READ_SEG = path.join(import.meta.dirname, '../../helpers/read-dicom-seg.py');

describe.runIf(existsSync(CLI) && redisAvailable() && requireTool(hasDicomTools(), 'pydicom, dcmtk, gdcm, dcm2niix'))('serve --queue: zipped DICOM series', () => {
  let redis: RedisServer;
  let base: string;
  const children: ChildProcess[] = [];
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-serve-queue-dicom-'));
  const root = tempDir('queue-dicom');
  let seriesDir = '';

  beforeAll(async () => {
    seriesDir = await writeDicomSeries(smallPhantom(3).image, path.join(root, 'series'), { intercept: -1024 });
    redis = await RedisServer.start();
    const served = await startServeQueue(redis.url, dataDir);
    children.push(served.child);
    base = served.base;
    const worker = await startCli(['worker', '--queue', redis.url, '--data-dir', dataDir, '--name', 'dicom-node', '--backend', 'onnxruntime', '--threads', '1'], /"event":"ready"/);
    children.push(worker.child);
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await redis?.destroy();
  });

  it('runs the zip on the worker and serves a SEG equal to the in-process mask', async () => {
    const zip = zipDirectory(seriesDir);
    const response = await fetch(`${base}/v1/segmentations?wait=60`, { method: 'POST', headers: { 'content-type': 'application/zip' }, body: zip });
    const job = await response.json();
    expect(response.status).toBe(200);
    const series = await readDicomBuffers(zip);
    expect(job).toMatchObject({ state: 'done', worker: 'dicom-node', input: { format: 'dicom', seriesInstanceUid: series.seriesInstanceUid } });
    expect(Object.keys(job.urls).sort()).toEqual(['ct', 'mask', 'preview', 'seg', 'self', 'stl']);

    const seg = await fetch(`${base}/v1/segmentations/${job.id}/seg.dcm`);
    expect(seg.headers.get('content-type')).toBe('application/dicom');
    const segFile = path.join(root, 'queue.seg.dcm');
    writeFileSync(segFile, new Uint8Array(await seg.arrayBuffer()));
    const raw = `${segFile}.mask.raw`;
    run(SYSTEM_PYTHON, [READ_SEG, segFile, seriesDir, raw]);
    const segmenter = await Segmenter.create({ backend: 'onnxruntime', threads: 1 });
    try {
      const reference = (await segmenter.segment(series.volume)).mask.data;
      expect(reference.some((v) => v === 1)).toBe(true);
      expect(Buffer.from(readFileSync(raw)).equals(Buffer.from(reference))).toBe(true);
    } finally {
      await segmenter.close();
    }
    expect((await fetch(`${base}/v1/segmentations/${job.id}/mask.stl`)).headers.get('content-type')).toBe('model/stl');
  });

  it('refuses a zip without DICOM with 422 before storing or queueing it', async () => {
    const dir = tempDir('not-dicom');
    writeFileSync(path.join(dir, 'readme.txt'), 'not DICOM');
    const response = await fetch(`${base}/v1/segmentations`, { method: 'POST', headers: { 'content-type': 'application/zip' }, body: zipDirectory(dir) });
    expect(response.status).toBe(422);
    expect((await response.json()).code).toBe('ERR_DICOM_INVALID');
    const inputs = path.join(dataDir, 'inputs');
    expect(existsSync(inputs) ? readdirSync(inputs) : []).toEqual([]);
  });
});
