/**
 * The job API end to end on a real listening server and the real Segmenter (embedded default
 * model) on small phantoms: the service's answers are checked against calling Segmenter.segment
 * in process on the same volume.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNifti, Segmenter, type SegmentResult } from '../../../src/index.js';
import { niivueBundlePath } from '../../../src/server/routes/viewer.js';
import { postVolume, smallCtBytes, startServer, waitFinished, type TestServer } from './server-test-helpers.js';

describe('segmentation service API (real Segmenter)', () => {
  let segmenter: Segmenter;
  let server: TestServer;
  let reference: SegmentResult;
  const ct = smallCtBytes(1);

  beforeAll(async () => {
    segmenter = await Segmenter.create({ backend: 'onnxruntime', threads: 2 });
    reference = await segmenter.segment(parseNifti(ct).volume);
    server = await startServer({ segmenter });
  });
  afterAll(async () => {
    await server?.close();
    await segmenter?.close();
  });

  it('POST ?wait answers with the finished job; its summary, mask and preview match the in-process result', async () => {
    const response = await postVolume(server.base, ct, '?wait=60');
    expect(response.status).toBe(200);
    const job = await response.json();
    expect(response.headers.get('location')).toBe(`/v1/segmentations/${job.id}`);
    expect(job.state).toBe('done');
    expect(job.id).toMatch(/^[0-9a-f]{32}$/);
    expect(job.input.shape).toEqual([48, 48, 16]);
    expect(job.summary.voxelCount).toBe(reference.summary.voxelCount);
    expect(job.summary.voxelCount).toBeGreaterThan(0);
    expect(job.summary.volumeMl).toBeCloseTo(reference.summary.volumeMl, 9);
    expect(job.summary.boundingBox).toEqual(reference.summary.boundingBox);
    expect(job.summary.centroidMm).toEqual(reference.summary.centroidMm);
    expect(job.progress).toEqual({ stage: 'done', windowsDone: reference.windowCount, windowsTotal: reference.windowCount });
    expect(job.timings.totalMs).toBeGreaterThan(0);
    expect(job).not.toHaveProperty('reqId');
    expect(job).not.toHaveProperty('artifacts');

    const mask = await fetch(`${server.base}${job.urls.mask}`);
    expect(mask.status).toBe(200);
    expect(mask.headers.get('content-type')).toBe('application/gzip');
    const decoded = parseNifti(new Uint8Array(await mask.arrayBuffer()));
    expect(decoded.volume.shape).toEqual([48, 48, 16]);
    expect(Array.from(decoded.volume.data, (v) => (v > 0.5 ? 1 : 0))).toEqual(Array.from(reference.mask.data));

    const preview = await fetch(`${server.base}${job.urls.preview}`);
    expect(preview.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await preview.arrayBuffer()).subarray(1, 4).toString()).toBe('PNG');

    const probability = await fetch(`${server.base}/v1/segmentations/${job.id}/probability`);
    expect(probability.status).toBe(404);
    expect((await probability.json()).code).toBe('ERR_NOT_FOUND');
  });

  it('POST without wait answers 202 at once; polling shows the states; probability when asked for', async () => {
    const response = await postVolume(server.base, ct, '?probability=true');
    expect(response.status).toBe(202);
    const accepted = await response.json();
    expect(['queued', 'running']).toContain(accepted.state);
    const early = await fetch(`${server.base}/v1/segmentations/${accepted.id}/mask`);
    // Unless it already finished, the mask is not ready yet.
    if (early.status !== 200) expect((await early.json()).code).toBe('ERR_NOT_READY');
    const job = await waitFinished(server.base, accepted.id);
    expect(job.state).toBe('done');
    expect(job.probability).toBe(true);
    const probability = await fetch(`${server.base}${job.urls.probability}`);
    expect(probability.status).toBe(200);
    const p = parseNifti(new Uint8Array(await probability.arrayBuffer())).volume.data;
    expect(Math.min(...p)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...p)).toBeLessThanOrEqual(1);
    // argmax of the probability map is the mask (foreground where p > 0.5)
    expect(p.reduce((n, v) => n + (v > 0.5 ? 1 : 0), 0)).toBe(reference.summary.voxelCount);
  });

  it('accepts one file in multipart/form-data', async () => {
    const form = new FormData();
    form.append('file', new Blob([ct]), 'anything.nii.gz');
    const response = await fetch(`${server.base}/v1/segmentations?wait=60`, { method: 'POST', body: form });
    expect(response.status).toBe(200);
    const job = await response.json();
    expect(job.summary.voxelCount).toBe(reference.summary.voxelCount);
  });

  it('DELETE removes a finished job and its files; then 404', async () => {
    const job = await (await postVolume(server.base, ct, '?wait=60')).json();
    const deleted = await fetch(`${server.base}/v1/segmentations/${job.id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    expect((await deleted.json()).id).toBe(job.id);
    expect((await fetch(`${server.base}/v1/segmentations/${job.id}`)).status).toBe(404);
    expect((await fetch(`${server.base}/v1/segmentations/${job.id}/mask`)).status).toBe(404);
    expect(existsSync(`${server.dataDir}/jobs/${job.id}`)).toBe(false);
    expect((await fetch(`${server.base}/v1/segmentations/${job.id}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('serves health, readiness, metrics and the OpenAPI document', async () => {
    expect(await (await fetch(`${server.base}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await (await fetch(`${server.base}/readyz`)).json();
    expect(ready).toMatchObject({ ready: true, backend: 'onnxruntime', model: segmenter.info.model.name, maxQueue: 16 });
    const metrics = await (await fetch(`${server.base}/metrics`)).text();
    expect(metrics).toMatch(/spleen_trt_jobs_total\{outcome="done",code=""\} [1-9]/);
    expect(metrics).toMatch(/spleen_trt_queue_depth\{state="queued"\} 0/);
    expect(metrics).toMatch(/spleen_trt_stage_seconds_count\{stage="network"\} [1-9]/);
    expect(metrics).toMatch(/spleen_trt_upload_bytes_total [1-9]/);
    expect(metrics).toMatch(/spleen_trt_download_bytes_total [1-9]/);
    expect(metrics).toMatch(/spleen_trt_info\{backend="onnxruntime",model="spleen-phantom-demo"\} 1/);
    expect(metrics).toMatch(/spleen_trt_nodejs_eventloop_lag_seconds/);
    const openapi = await (await fetch(`${server.base}/openapi.json`)).json();
    expect(openapi.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.paths).sort()).toEqual(
      [
        '/healthz',
        '/readyz',
        '/v1/segmentations',
        '/v1/segmentations/{id}',
        '/v1/segmentations/{id}/mask',
        '/v1/segmentations/{id}/preview.png',
        '/v1/segmentations/{id}/probability',
        '/v1/segmentations/{id}/seg.dcm',
        '/v1/segmentations/{id}/mask.stl',
        '/v1/segmentations/{id}/ct.nii.gz',
      ].sort(),
    );
    expect(openapi.paths['/v1/segmentations'].post.responses['202']).toBeDefined();
    expect(Object.keys(openapi.paths['/v1/segmentations/{id}/seg.dcm'].get.responses['200'].content)).toEqual(['application/dicom']);
    expect(Object.keys(openapi.paths['/v1/segmentations/{id}/mask.stl'].get.responses['200'].content)).toEqual(['model/stl']);
    expect(openapi.paths['/v1/segmentations'].post.description).toMatch(/application\/zip/);
    expect(openapi.components.schemas.Job.properties.input.properties.seriesInstanceUid).toBeDefined();
    expect(openapi.components.schemas.Job.properties.summary).toBeDefined();
  });

  it('serves the viewer page and NiiVue from the package', async () => {
    expect(existsSync(niivueBundlePath())).toBe(true);
    const page = await fetch(`${server.base}/`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('viewer/app.js');
    const niivue = await fetch(`${server.base}/viewer/niivue.js`);
    expect(niivue.status).toBe(200);
    expect((await niivue.text()).length).toBeGreaterThan(100_000);
  });
});
