/**
 * The service as a plugin inside someone else's fastify app, under a prefix: its routes, parsers,
 * auth and error handler stay inside it; the host's own routes behave as before.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { segmentationPlugin } from '../../../src/server/index.js';
import { ControlledSegmenter, postVolume, smallCtBytes } from './server-test-helpers.js';

describe('segmentationPlugin in a host app', () => {
  it('mounts under a prefix without changing the host', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'spleen-embed-'));
    const host = Fastify();
    host.post('/echo', async (request) => ({ echoed: request.body }));
    host.get('/boom', async () => {
      throw new Error('host error');
    });
    await host.register(segmentationPlugin, { prefix: '/spleen', segmenter: new ControlledSegmenter(), dataDir, auth: { tokens: ['embed-token-0123456789'] } });
    await host.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(host.server.address() as { port: number }).port}`;
    try {
      // The host keeps its JSON parser, its (default) error format and needs no token.
      const echo = await fetch(`${base}/echo`, { method: 'POST', body: JSON.stringify({ a: 1 }), headers: { 'content-type': 'application/json' } });
      expect(await echo.json()).toEqual({ echoed: { a: 1 } });
      const boom = await fetch(`${base}/boom`);
      expect(boom.status).toBe(500);
      expect((await boom.json()).code).toBeUndefined();

      const headers = { authorization: 'Bearer embed-token-0123456789' };
      expect((await postVolume(`${base}/spleen`, smallCtBytes(1))).status).toBe(401);
      const response = await postVolume(`${base}/spleen`, smallCtBytes(1), '?wait=10', headers);
      expect(response.status).toBe(200);
      const job = await response.json();
      expect(job.urls.self).toBe(`/spleen/v1/segmentations/${job.id}`);
      expect(response.headers.get('location')).toBe(job.urls.self);
      expect((await fetch(`${base}${job.urls.mask}`, { headers })).status).toBe(200);
      expect((await fetch(`${base}/spleen/healthz`)).status).toBe(200);
      expect(await (await fetch(`${base}/spleen/`)).text()).toContain('<base href="/spleen/">');
    } finally {
      await host.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
