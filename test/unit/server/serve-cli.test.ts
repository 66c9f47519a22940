/**
 * `spleen-trt serve` as a process (dist/, built by `npm test`): auth rules at startup, restart
 * recovery after a kill, graceful shutdown on SIGTERM, token re-read on SIGHUP.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNifti, makePhantom } from '../../../src/index.js';
import { gzipSync } from 'node:zlib';
import { postVolume, smallCtBytes, waitFinished } from './server-test-helpers.js';

const MAIN = path.resolve('dist/cli/main.js');
const TOKEN_A = 'cli-token-a-0123456789';
const TOKEN_B = 'cli-token-b-0123456789';

interface Served {
  child: ChildProcess;
  base: string;
  exited: Promise<number | null>;
  stderr: () => string;
}

/** Starts the CLI and resolves once it prints where it listens (bounded). */
function serve(args: string[], env: Record<string, string> = {}): Promise<Served> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--port', '0', '--threads', '2', '--log-level', 'warn', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 60_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /spleen-trt serve: (http:\/\/\S+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve({ child, base: match[1], exited, stderr: () => stderr });
      }
    });
    child.on('exit', () => reject(new Error(`serve exited: ${stderr}`)));
  });
}

async function waitState(base: string, id: string, state: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if ((await (await fetch(`${base}/v1/segmentations/${id}`)).json()).state === state) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`job ${id} never reached ${state}`);
}

describe.skipIf(!existsSync(MAIN))('spleen-trt serve (process)', () => {
  let dataDir: string;
  let largeCt: Uint8Array;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'spleen-serve-cli-'));
    // Several windows: long enough (seconds) to still be running when signalled.
    largeCt = gzipSync(encodeNifti(makePhantom({ seed: 3, shape: [160, 160, 40], spacingMm: [1.5, 1.5, 4] }).image, { datatype: 'int16' }), { level: 1 });
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses to start without a token, and --no-auth on a non-loopback host (exit 2)', () => {
    const env = { ...process.env, SPLEEN_TRT_TOKENS: '' };
    const noToken = spawnSync(process.execPath, [MAIN, 'serve', '--host', '0.0.0.0'], { encoding: 'utf8', env });
    expect(noToken.status).toBe(2);
    expect(noToken.stderr).toMatch(/token is required/);
    const open = spawnSync(process.execPath, [MAIN, 'serve', '--host', '0.0.0.0', '--no-auth'], { encoding: 'utf8', env });
    expect(open.status).toBe(2);
    expect(open.stderr).toMatch(/only allowed on a loopback/);
    const short = spawnSync(process.execPath, [MAIN, 'serve'], { encoding: 'utf8', env: { ...env, SPLEEN_TRT_TOKENS: 'short' } });
    expect(short.status).toBe(2);
  });

  it('after a kill, finished jobs are still served and the interrupted one is failed with ERR_INTERRUPTED', async () => {
    const first = await serve(['--no-auth', '--data-dir', dataDir]);
    const done = await (await postVolume(first.base, smallCtBytes(1), '?wait=60')).json();
    expect(done.state).toBe('done');
    const mask = new Uint8Array(await (await fetch(`${first.base}${done.urls.mask}`)).arrayBuffer());
    const interrupted = await (await postVolume(first.base, largeCt)).json();
    await waitState(first.base, interrupted.id, 'running');
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await serve(['--no-auth', '--data-dir', dataDir]);
    try {
      const again = await (await fetch(`${second.base}/v1/segmentations/${done.id}`)).json();
      expect(again).toMatchObject({ state: 'done', summary: done.summary });
      expect(new Uint8Array(await (await fetch(`${second.base}${done.urls.mask}`)).arrayBuffer())).toEqual(mask);
      const lost = await (await fetch(`${second.base}/v1/segmentations/${interrupted.id}`)).json();
      expect(lost).toMatchObject({ state: 'failed', error: { code: 'ERR_INTERRUPTED' } });
      expect(existsSync(path.join(dataDir, 'jobs', interrupted.id, 'input.nii.gz'))).toBe(false);
    } finally {
      second.child.kill('SIGKILL');
      await second.exited;
    }
  });

  it('SIGTERM: the running job finishes within the grace period, the queued one is cancelled, exit 0', async () => {
    const served = await serve(['--no-auth', '--data-dir', dataDir, '--grace-s', '60']);
    const running = await (await postVolume(served.base, largeCt)).json();
    await waitState(served.base, running.id, 'running');
    const queued = await (await postVolume(served.base, smallCtBytes(2))).json();
    expect(queued.state).toBe('queued');
    served.child.kill('SIGTERM');
    expect(await served.exited).toBe(0);
    const records = await Promise.all([running.id, queued.id].map(async (id) => JSON.parse(await readFile(path.join(dataDir, 'jobs', id, 'job.json'), 'utf8'))));
    expect(records[0]).toMatchObject({ state: 'done', artifacts: ['mask.nii.gz', 'preview.png'] });
    expect(records[1]).toMatchObject({ state: 'cancelled', error: { code: 'ERR_SHUTTING_DOWN' } });
  });

  it('SIGTERM past the grace period cancels the running job and still exits 0', async () => {
    const served = await serve(['--no-auth', '--data-dir', dataDir, '--grace-s', '0.2']);
    const running = await (await postVolume(served.base, largeCt)).json();
    await waitState(served.base, running.id, 'running');
    served.child.kill('SIGTERM');
    expect(await served.exited).toBe(0);
    const record = JSON.parse(await readFile(path.join(dataDir, 'jobs', running.id, 'job.json'), 'utf8'));
    expect(record).toMatchObject({ state: 'cancelled', error: { code: 'ERR_SHUTTING_DOWN' }, artifacts: [] });
    expect(existsSync(path.join(dataDir, 'jobs', running.id, 'mask.nii.gz'))).toBe(false);
  });

  it('re-reads the token file on SIGHUP', async () => {
    const tokenFile = path.join(dataDir, 'tokens.txt');
    await writeFile(tokenFile, `# tokens\n${TOKEN_A}\n`);
    const served = await serve(['--token-file', tokenFile, '--data-dir', dataDir]);
    try {
      const metrics = (token: string) => fetch(`${served.base}/metrics`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
      expect(await metrics(TOKEN_A)).toBe(200);
      expect(await metrics(TOKEN_B)).toBe(401);
      await writeFile(tokenFile, `${TOKEN_B}\n`);
      served.child.kill('SIGHUP');
      for (let i = 0; i < 100 && (await metrics(TOKEN_B)) !== 200; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await metrics(TOKEN_B)).toBe(200);
      expect(await metrics(TOKEN_A)).toBe(401);
    } finally {
      served.child.kill('SIGTERM');
      expect(await served.exited).toBe(0);
    }
  });
});
