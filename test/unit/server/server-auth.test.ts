/**
 * Auth and CORS rules on a real listening server: bearer tokens (constant-time compare, a token
 * source that can change), public routes, no-auth only for loopback connections.
 */
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { isLoopback, parseTokens } from '../../../src/server/auth.js';
import { ControlledSegmenter, postVolume, smallCtBytes, startServer, type TestServer } from './server-test-helpers.js';

const TOKEN_A = 'token-a-0123456789abcdef';
const TOKEN_B = 'token-b-0123456789abcdef';
let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('bearer tokens', () => {
  it('the job API and /metrics need a valid token; health, readiness, viewer and OpenAPI do not', async () => {
    let tokens = [TOKEN_A];
    server = await startServer({ segmenter: new ControlledSegmenter(), auth: { tokens: () => tokens } });
    const ct = smallCtBytes(1);
    for (const headers of [{}, bearer('wrong-token-0123456789'), bearer(TOKEN_A.slice(0, -1)), { authorization: TOKEN_A }, { authorization: `Basic ${TOKEN_A}` }]) {
      const response = await postVolume(server.base, ct, '', headers);
      expect(response.status).toBe(401);
      expect((await response.json()).code).toBe('ERR_UNAUTHORIZED');
    }
    expect((await fetch(`${server.base}/metrics`)).status).toBe(401);
    expect((await fetch(`${server.base}/v1/segmentations/${'0'.repeat(32)}`)).status).toBe(401);
    for (const path of ['/healthz', '/readyz', '/', '/viewer/app.js', '/openapi.json']) {
      expect((await fetch(`${server.base}${path}`)).status, path).toBe(200);
    }
    const accepted = await postVolume(server.base, ct, '?wait=10', bearer(TOKEN_A));
    expect(accepted.status).toBe(200);
    const job = await accepted.json();
    expect((await fetch(`${server.base}${job.urls.mask}`, { headers: bearer(TOKEN_A) })).status).toBe(200);
    expect((await fetch(`${server.base}${job.urls.mask}`)).status).toBe(401);
    // The token source is read at each request (the CLI swaps it on SIGHUP).
    tokens = [TOKEN_B];
    expect((await fetch(`${server.base}/metrics`, { headers: bearer(TOKEN_A) })).status).toBe(401);
    expect((await fetch(`${server.base}/metrics`, { headers: bearer(TOKEN_B) })).status).toBe(200);
    // Nothing was stored for the refused submissions.
    expect((await fetch(`${server.base}/metrics`, { headers: bearer(TOKEN_B) }).then((r) => r.text())).match(/spleen_trt_upload_bytes_total (\d+)/)?.[1]).toBe(String(ct.length));
  });

  it('token files: one per line, comments and blank lines skipped', () => {
    expect(parseTokens(`# ops\n${TOKEN_A}\n\n  ${TOKEN_B}  \r\n`)).toEqual([TOKEN_A, TOKEN_B]);
  });
});

describe('no auth', () => {
  it('serves loopback connections only', async () => {
    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('10.0.0.1')).toBe(false);
    server = await startServer({ segmenter: new ControlledSegmenter(), auth: false });
    expect((await fetch(`${server.base}/metrics`)).status).toBe(200);
  });

  const external = Object.values(os.networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  it.runIf(external !== undefined)('refuses a connection that arrives on a non-loopback address (403)', async () => {
    const app = (await import('../../../src/server/create-segmentation-server.js')).createSegmentationServer({
      segmenter: new ControlledSegmenter(),
      dataDir: await (await import('node:fs/promises')).mkdtemp(`${os.tmpdir()}/spleen-serve-ext-`),
      auth: false,
      logger: false,
    });
    await app.listen({ host: '0.0.0.0', port: 0 });
    try {
      const port = (app.server.address() as { port: number }).port;
      const response = await fetch(`http://${external}:${port}/healthz`);
      expect(response.status).toBe(403);
      expect((await response.json()).code).toBe('ERR_FORBIDDEN');
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe('CORS', () => {
  it('is off unless origins are configured', async () => {
    server = await startServer({ segmenter: new ControlledSegmenter() });
    const plain = await fetch(`${server.base}/healthz`, { headers: { origin: 'https://viewer.example' } });
    expect(plain.headers.get('access-control-allow-origin')).toBeNull();
    await server.close();
    server = await startServer({ segmenter: new ControlledSegmenter(), corsOrigins: ['https://viewer.example'] });
    const allowed = await fetch(`${server.base}/healthz`, { headers: { origin: 'https://viewer.example' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://viewer.example');
    const other = await fetch(`${server.base}/healthz`, { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
