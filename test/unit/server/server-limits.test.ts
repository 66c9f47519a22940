/**
 * Limits, bad inputs, the queue, cancel and the time limit, on a real listening server with a
 * Segmenter double whose runs the test holds and releases. Every refused upload must leave
 * nothing in the data dir.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeNifti } from '../../../src/index.js';
import { JobStore } from '../../../src/server/job-store.js';
import { ControlledSegmenter, postVolume, smallCtBytes, startServer, storedFiles, waitFinished, type TestServer } from './server-test-helpers.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function expectProblem(response: Response, status: number, code: string): Promise<any> {
  const body = await response.json();
  expect({ status: response.status, code: body.code }).toEqual({ status, code });
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(body.detail).not.toMatch(/\/tmp|spleen-serve|uploads|at .*\.js/);
  return body;
}

async function expectNothingStored(s: TestServer): Promise<void> {
  expect(await storedFiles(s.dataDir)).toEqual({ jobs: [], uploads: [] });
}

/** A NIfTI-1 header (no voxels) declaring the given dim. */
function headerOnly(dim: number[]): Uint8Array {
  const bytes = encodeNifti({ data: new Float32Array(8), shape: [2, 2, 2], affine: Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]) }, { datatype: 'int16' });
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  for (let i = 0; i < 8; i++) view.setInt16(40 + 2 * i, dim[i] ?? 1, true);
  return bytes.subarray(0, 352);
}

/** Sends headers and part of a body by hand, then stalls or drops the connection. */
function partialUpload(base: string, body: Uint8Array, declared: number, then: 'stall' | 'drop'): Promise<{ status?: number; body?: string }> {
  const url = new URL(`${base}/v1/segmentations`);
  return new Promise((resolve) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': declared } });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', () => resolve({}));
    req.write(body);
    if (then === 'drop') setTimeout(() => { req.destroy(); resolve({}); }, 100);
  });
}

describe('bad inputs get a 4xx with a code and leave nothing stored', () => {
  it('not NIfTI, truncated gzip, empty body, wrong content type, 4-D, zip', async () => {
    const segmenter = new ControlledSegmenter();
    server = await startServer({ segmenter });
    const ct = smallCtBytes(1);
    await expectProblem(await postVolume(server.base, new TextEncoder().encode('definitely not a volume')), 422, 'ERR_NIFTI_INVALID');
    await expectProblem(await postVolume(server.base, ct.subarray(0, Math.floor(ct.length / 2))), 422, 'ERR_NIFTI_INVALID');
    await expectProblem(await postVolume(server.base, new Uint8Array(0)), 400, 'ERR_BAD_REQUEST');
    await expectProblem(await fetch(`${server.base}/v1/segmentations`, { method: 'POST', body: ct, headers: { 'content-type': 'text/plain' } }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    await expectProblem(await fetch(`${server.base}/v1/segmentations`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    await expectProblem(await postVolume(server.base, headerOnly([4, 8, 8, 8, 3])), 422, 'ERR_NIFTI_INVALID');
    // A zip is taken as a DICOM series (server-dicom.test.ts): a broken one is refused as such.
    await expectProblem(await postVolume(server.base, Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0])), 422, 'ERR_DICOM_INVALID');
    const form = new FormData();
    form.append('note', 'no file here');
    await expectProblem(await fetch(`${server.base}/v1/segmentations`, { method: 'POST', body: form }), 400, 'ERR_BAD_REQUEST');
    await expectNothingStored(server);
    expect(segmenter.runs).toBe(0);
  });

  it('header bombs: too many voxels or too long an axis, refused from the header (gzip too)', async () => {
    server = await startServer({ segmenter: new ControlledSegmenter(), limits: { maxVoxels: 100_000, maxDim: 300 } });
    // 32767^3 declared in a 352-byte file: refused before anything is inflated.
    await expectProblem(await postVolume(server.base, headerOnly([3, 32767, 32767, 32767])), 413, 'ERR_VOLUME_TOO_LARGE');
    await expectProblem(await postVolume(server.base, gzipSync(headerOnly([3, 32767, 32767, 32767]))), 413, 'ERR_VOLUME_TOO_LARGE');
    await expectProblem(await postVolume(server.base, headerOnly([3, 400, 2, 2])), 413, 'ERR_VOLUME_TOO_LARGE');
    // Under the limits but the voxels are missing: the full read refuses it.
    await expectProblem(await postVolume(server.base, headerOnly([3, 40, 40, 40])), 422, 'ERR_NIFTI_INVALID');
    // A real volume just over the voxel limit (48*48*16 = 36864 > 30000).
    await server.close();
    server = await startServer({ segmenter: new ControlledSegmenter(), limits: { maxVoxels: 30_000 } });
    await expectProblem(await postVolume(server.base, smallCtBytes(1)), 413, 'ERR_VOLUME_TOO_LARGE');
    await expectNothingStored(server);
  });

  it('body size: by Content-Length before reading, and by counting a chunked body', async () => {
    const ct = smallCtBytes(1);
    server = await startServer({ segmenter: new ControlledSegmenter(), limits: { maxUploadBytes: ct.length - 1 } });
    await expectProblem(await postVolume(server.base, ct), 413, 'ERR_PAYLOAD_TOO_LARGE');
    // A stream body has no Content-Length: the byte count refuses it.
    const chunked = new ReadableStream({
      start(controller) {
        controller.enqueue(ct);
        controller.close();
      },
    });
    const response = await fetch(`${server.base}/v1/segmentations`, { method: 'POST', body: chunked, headers: { 'content-type': 'application/octet-stream' }, duplex: 'half' } as RequestInit);
    await expectProblem(response, 413, 'ERR_PAYLOAD_TOO_LARGE');
    const form = new FormData();
    form.append('file', new Blob([ct]), 'ct.nii.gz');
    // The same file in multipart, streamed (no Content-Length): the file part's own limit.
    const encoded = new Response(form);
    const formBytes = new Uint8Array(await encoded.arrayBuffer());
    const multipart = await fetch(`${server.base}/v1/segmentations`, {
      method: 'POST',
      body: new ReadableStream({ start: (c) => (c.enqueue(formBytes), c.close()) }),
      headers: { 'content-type': encoded.headers.get('content-type')! },
      duplex: 'half',
    } as RequestInit);
    await expectProblem(multipart, 413, 'ERR_PAYLOAD_TOO_LARGE');
    await expectNothingStored(server);
  });

  it('a body that stops arriving gets 408; one cut off leaves nothing', async () => {
    server = await startServer({ segmenter: new ControlledSegmenter(), limits: { uploadIdleTimeoutMs: 300 } });
    const ct = smallCtBytes(1);
    // All but the declared last 1000 bytes arrive, then nothing.
    const stalled = await partialUpload(server.base, ct, ct.length + 1000, 'stall');
    expect(stalled.status).toBe(408);
    expect(JSON.parse(stalled.body!).code).toBe('ERR_UPLOAD_TIMEOUT');
    await partialUpload(server.base, ct, ct.length + 1000, 'drop');
    // The server sees the drop asynchronously: bounded wait for the cleanup.
    for (let i = 0; i < 50 && (await storedFiles(server.dataDir)).uploads.length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    await expectNothingStored(server);
  });

  it('unknown and malformed job ids', async () => {
    server = await startServer({ segmenter: new ControlledSegmenter() });
    await expectProblem(await fetch(`${server.base}/v1/segmentations/${'0'.repeat(32)}`), 404, 'ERR_NOT_FOUND');
    await expectProblem(await fetch(`${server.base}/v1/segmentations/..%2F..%2Fetc`), 400, 'ERR_BAD_REQUEST');
    await expectProblem(await fetch(`${server.base}/v1/segmentations/${'A'.repeat(32)}/mask`), 400, 'ERR_BAD_REQUEST');
    await expectProblem(await fetch(`${server.base}/no/such/route`), 404, 'ERR_NOT_FOUND');
  });
});

describe('queue, concurrency, cancel, time limit', () => {
  it('a client sending a large body into a full queue reads the 429 (the body is drained, not reset)', async () => {
    const segmenter = new ControlledSegmenter({ autoRelease: false });
    server = await startServer({ segmenter, limits: { maxQueue: 1 } });
    await postVolume(server.base, smallCtBytes(1));
    await segmenter.started();
    expect((await postVolume(server.base, smallCtBytes(1))).status).toBe(202); // waits behind the first: the queue is full
    // 8 MiB, the size of a real CT upload: far more than the socket buffers hold, so a server that
    // answered and closed with unread bytes would reset the connection under the client's write.
    const large = new Uint8Array(8 * 1024 * 1024);
    for (let attempt = 0; attempt < 4; attempt++) {
      const refused = await fetch(`${server.base}/v1/segmentations`, { method: 'POST', body: large, headers: { 'content-type': 'application/octet-stream' } });
      expect(refused.headers.get('connection')).not.toBe('close');
      await expectProblem(refused, 429, 'ERR_QUEUE_FULL');
    }
    segmenter.release();
  });

  it('runs one volume at a time while uploads are accepted; a full queue answers 429 with Retry-After', async () => {
    const segmenter = new ControlledSegmenter({ autoRelease: false });
    server = await startServer({ segmenter, limits: { maxQueue: 2 } });
    const ct = smallCtBytes(1);
    const first = await (await postVolume(server.base, ct)).json();
    await segmenter.started();
    const queued = await Promise.all([postVolume(server.base, ct), postVolume(server.base, ct)]);
    expect(queued.map((r) => r.status)).toEqual([202, 202]);
    const jobs = await Promise.all(queued.map((r) => r.json()));
    expect(jobs.map((j) => j.state)).toEqual(['queued', 'queued']);
    const positions = await Promise.all(jobs.map(async (j) => (await (await fetch(`${server!.base}/v1/segmentations/${j.id}`)).json()).queuePosition));
    expect(positions.sort()).toEqual([0, 1]);
    const full = await postVolume(server.base, ct);
    expect(Number(full.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await expectProblem(full, 429, 'ERR_QUEUE_FULL');
    const ready = await fetch(`${server.base}/readyz`);
    expect(ready.status).toBe(503);
    expect((await ready.json()).reason).toBe('queue full');
    // Release the held runs one by one until all three jobs are done (bounded).
    const ids = [first.id, ...jobs.map((j) => j.id)];
    const deadline = Date.now() + 20_000;
    const states = async () => Promise.all(ids.map(async (id) => (await (await fetch(`${server!.base}/v1/segmentations/${id}`)).json()).state));
    while ((await states()).some((s) => s !== 'done') && Date.now() < deadline) {
      segmenter.release();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await states()).toEqual(['done', 'done', 'done']);
    expect(segmenter.runs).toBe(3);
    expect(segmenter.maxRunning).toBe(1);
    const metrics = await (await fetch(`${server.base}/metrics`)).text();
    expect(metrics).toMatch(/spleen_trt_rejected_total\{code="ERR_QUEUE_FULL"\} 1/);
  });

  it('DELETE cancels a running job (its AbortSignal) and a queued one, and deletes them', async () => {
    const segmenter = new ControlledSegmenter({ autoRelease: false });
    server = await startServer({ segmenter });
    const ct = smallCtBytes(1);
    const running = await (await postVolume(server.base, ct)).json();
    await segmenter.started();
    const queued = await (await postVolume(server.base, ct)).json();
    const cancelQueued = await (await fetch(`${server.base}/v1/segmentations/${queued.id}`, { method: 'DELETE' })).json();
    expect(cancelQueued).toMatchObject({ state: 'cancelled', error: { code: 'ERR_ABORTED' } });
    const cancelRunning = await (await fetch(`${server.base}/v1/segmentations/${running.id}`, { method: 'DELETE' })).json();
    expect(cancelRunning).toMatchObject({ state: 'cancelled', error: { code: 'ERR_ABORTED' } });
    expect(segmenter.aborted).toBe(1);
    expect(segmenter.runs).toBe(1);
    for (const id of [running.id, queued.id]) expect((await fetch(`${server.base}/v1/segmentations/${id}`)).status).toBe(404);
    expect((await storedFiles(server.dataDir)).jobs).toEqual([]);
  });

  it('a job over the time limit fails with ERR_JOB_TIMEOUT and keeps no artifacts', async () => {
    const segmenter = new ControlledSegmenter({ autoRelease: false });
    server = await startServer({ segmenter, limits: { jobTimeoutMs: 200 } });
    const accepted = await (await postVolume(server.base, smallCtBytes(1))).json();
    const job = await waitFinished(server.base, accepted.id);
    expect(job).toMatchObject({ state: 'failed', error: { code: 'ERR_JOB_TIMEOUT' } });
    expect(job.urls.mask).toBeUndefined();
    await expectProblem(await fetch(`${server.base}/v1/segmentations/${job.id}/mask`), 404, 'ERR_NOT_FOUND');
  });

  it('?wait returns 202 when the job is not done in time', async () => {
    const segmenter = new ControlledSegmenter({ autoRelease: false });
    server = await startServer({ segmenter });
    const response = await postVolume(server.base, smallCtBytes(1), '?wait=0.2');
    expect(response.status).toBe(202);
    expect((await response.json()).state).toBe('running');
    segmenter.release();
  });

  it('retention: finished jobs expire by age, and the oldest go first over the size cap', async () => {
    const segmenter = new ControlledSegmenter();
    server = await startServer({ segmenter, retention: { maxAgeMs: 1500 } });
    const job = await (await postVolume(server.base, smallCtBytes(1), '?wait=10')).json();
    expect(job.state).toBe('done');
    await server.handle.runner.wait(job.id, 0);
    const deadline = Date.now() + 10_000;
    while ((await fetch(`${server.base}/v1/segmentations/${job.id}`)).status === 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await fetch(`${server.base}/v1/segmentations/${job.id}`)).status).toBe(404);
    await server.close();

    // Size cap: room for one finished job, not two.
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'spleen-serve-cap-'));
    server = await startServer({ segmenter, dataDir });
    const a = await (await postVolume(server.base, smallCtBytes(1), '?wait=10')).json();
    await server.close();
    const size = await new JobStore(dataDir).size(a.id);
    expect(size).toBeGreaterThan(0);
    server = await startServer({ segmenter, dataDir, retention: { maxBytes: Math.floor(size * 1.5) } });
    expect((await fetch(`${server.base}/v1/segmentations/${a.id}`)).status).toBe(200);
    const b = await (await postVolume(server.base, smallCtBytes(2), '?wait=10')).json();
    expect(b.state).toBe('done');
    for (let i = 0; i < 100 && (await fetch(`${server.base}/v1/segmentations/${a.id}`)).status === 200; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await fetch(`${server.base}/v1/segmentations/${a.id}`)).status).toBe(404);
    expect((await fetch(`${server.base}/v1/segmentations/${b.id}`)).status).toBe(200);
    await server.close();
    server = undefined;
    await rm(dataDir, { recursive: true, force: true });
  });
});
