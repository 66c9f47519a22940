// examples/ run as a user would run them (they import 'spleen-trt' by name: the package's
// self-reference, so dist/ as built by npm test): the minimal script on a phantom CT, and the
// node:http service answering a segmentation, a bad upload, and a clean shutdown.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foregroundDice, makePhantom, parseNifti, writeNifti } from '../../src/index.js';
import { autoCpuBackend } from '../../src/inference/cpu-backend-choice.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const work = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-examples-'));
const ct = path.join(work, 'ct.nii.gz');
const phantom = makePhantom({ shape: [64, 64, 24], spacingMm: [2.5, 2.5, 5], seed: 5 });

beforeAll(async () => {
  await writeNifti(ct, phantom.image);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('examples/', () => {
  it('segment-file.mjs writes the mask next to the input', () => {
    const result = spawnSync(process.execPath, [path.join(repoRoot, 'examples', 'segment-file.mjs'), ct], {
      cwd: work,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(result.status, result.stderr).toBe(0);
    const output = path.join(work, 'ct_trans.nii.gz');
    expect(result.stdout).toContain(`${output}: spleen `);
    expect(existsSync(output)).toBe(true);
    const mask = parseNifti(readFileSync(output)).volume;
    expect(mask.shape).toEqual([64, 64, 24]);
    expect(foregroundDice(Uint8Array.from(mask.data), phantom.label.data)).toBeGreaterThan(0.9);
  });

  it('http-service.mjs segments an upload, rejects a bad one with its code, and shuts down on SIGTERM', async () => {
    const service = spawn(process.execPath, [path.join(repoRoot, 'examples', 'http-service.mjs'), '0'], { cwd: work });
    let stdout = '';
    let stderr = '';
    service.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    service.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => service.once('exit', (code) => resolve(code)));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setInterval(() => {
          const match = /listening on http:\/\/localhost:(\d+)/.exec(stdout);
          if (match) {
            clearInterval(timer);
            resolve(Number(match[1]));
          }
        }, 50);
        void exited.then((code) => reject(new Error(`service exited (${code}): ${stderr}`)));
      });
      const base = `http://127.0.0.1:${port}`;

      const health = await fetch(`${base}/health`);
      expect(await health.json()).toEqual({ status: 'ok', backend: autoCpuBackend().name });

      const ok = await fetch(`${base}/segment`, { method: 'POST', body: readFileSync(ct) });
      expect(ok.status).toBe(200);
      expect(Number(ok.headers.get('x-spleen-volume-ml'))).toBeGreaterThan(0);
      const mask = parseNifti(gunzipSync(Buffer.from(await ok.arrayBuffer()))).volume;
      expect(mask.shape).toEqual([64, 64, 24]);
      expect(foregroundDice(Uint8Array.from(mask.data), phantom.label.data)).toBeGreaterThan(0.9);

      const bad = await fetch(`${base}/segment`, { method: 'POST', body: 'not a nifti file' });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toBe('ERR_NIFTI_INVALID');
    } finally {
      service.kill('SIGTERM');
    }
    expect(await exited, stderr).toBe(0);
    expect(stdout).toContain('closed');
  });
});
