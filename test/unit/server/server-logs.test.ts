/**
 * The service's logs: every request line carries the request id, and nothing from the upload (a
 * file name, which often holds a patient's name, or the header's text) is ever written.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { encodeNifti } from '../../../src/index.js';
import { ControlledSegmenter, smallPhantom, startServer } from './server-test-helpers.js';

describe('logs', () => {
  it('carry the request id and no patient data', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        callback();
      },
    });
    const server = await startServer({ segmenter: new ControlledSegmenter(), logger: { level: 'info', stream }, auth: { tokens: ['log-token-0123456789ab'] } });
    try {
      const form = new FormData();
      const ct = gzipSync(encodeNifti(smallPhantom(1).image, { datatype: 'int16', description: 'PATIENT^SECRET' }));
      form.append('file', new Blob([ct]), 'DOE_JOHN_19600101.nii.gz');
      const response = await fetch(`${server.base}/v1/segmentations?wait=10`, { method: 'POST', body: form, headers: { authorization: 'Bearer log-token-0123456789ab' } });
      const job = await response.json();
      expect(job.state).toBe('done');
      await fetch(`${server.base}/v1/segmentations?wait=10`, { method: 'POST', body: 'x', headers: { 'content-type': 'application/octet-stream' } });
    } finally {
      await server.close();
    }
    const text = lines.join('\n');
    expect(text).not.toMatch(/DOE_JOHN/);
    expect(text).not.toMatch(/log-token-0123456789ab/);
    expect(text).not.toMatch(/PATIENT|SECRET/); // the NIfTI descrip
    const requestLines = lines.map((l) => JSON.parse(l)).filter((l) => l.req || l.res);
    expect(requestLines.length).toBeGreaterThanOrEqual(4);
    for (const line of requestLines) expect(line.reqId).toMatch(/^[0-9a-f-]{36}$/);
    expect(lines.map((l) => JSON.parse(l)).some((l) => l.msg === 'job accepted' && /^[0-9a-f]{32}$/.test(l.jobId))).toBe(true);
    expect(lines.map((l) => JSON.parse(l)).some((l) => l.msg === 'request refused' && l.code === 'ERR_UNAUTHORIZED')).toBe(true);
  });
});
