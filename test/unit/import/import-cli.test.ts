import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { importCommand } from '../../../src/cli/import-command.js';
import { UsageError } from '../../../src/cli/usage-error.js';
import { IMPORT_FIXTURES, TINY_BUNDLE } from './import-fixtures.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const CLI = path.join(ROOT, 'dist/cli/main.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-import-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function captured(argv: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  try {
    return { code: await importCommand(argv), stdout };
  } finally {
    spy.mockRestore();
  }
}

describe('spleen-trt import (command function)', () => {
  it('imports a bundle directory and prints a summary, or the manifest with --json', async () => {
    const out = path.join(tmp, 'a');
    const { code, stdout } = await captured([TINY_BUNDLE, '-o', out]);
    expect(code).toBe(0);
    expect(stdout).toContain(`wrote ${out}`);
    expect(stdout).toMatch(/pipeline {3}pixdim 1\.25 x 1\.5 x 2\.5 mm, window \[-100, 240\] -> \[0, 1\] clipped, ROI 64x64x48, sw batch 2, overlap 0\.25, constant/);
    const json = await captured([TINY_BUNDLE, '-o', path.join(tmp, 'b'), '--json', '--name', 'renamed']);
    const parsed = JSON.parse(json.stdout);
    expect(parsed.manifest).toEqual(JSON.parse(readFileSync(path.join(tmp, 'b', 'model.json'), 'utf8')));
    expect(parsed.manifest.name).toBe('renamed');
  });

  it('builds a bare checkpoint with the network given by flags', async () => {
    const out = path.join(tmp, 'c');
    const args = [path.join(TINY_BUNDLE, 'models', 'model.pt'), '-o', out, '--channels', '2,4,6,8,10', '--num-res-units', '2', '--json'];
    const { code, stdout } = await captured(args);
    expect(code).toBe(0);
    expect(JSON.parse(stdout).manifest.network).toMatchObject({ channels: [2, 4, 6, 8, 10], strides: [2, 2, 2, 2], numResUnits: 2 });
  });

  it('reports usage mistakes as UsageError', async () => {
    await expect(importCommand([TINY_BUNDLE])).rejects.toThrow(UsageError);
    await expect(importCommand(['-o', path.join(tmp, 'd')])).rejects.toThrow(UsageError);
    await expect(importCommand([TINY_BUNDLE, '-o', path.join(tmp, 'd'), '--channels', '2,x'])).rejects.toThrow(/--channels expects comma-separated positive integers/);
    expect((await captured(['--help'])).stdout).toMatch(/^Usage: spleen-trt import/);
  });
});

describe.runIf(existsSync(path.join(ROOT, 'dist/cli/import-command.js')))('spleen-trt import (built CLI)', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });

  it('exits 0 on success, 1 with "error ERR_MODEL_INVALID" for a legacy checkpoint, 2 for a usage mistake', () => {
    const ok = run(['import', path.join(IMPORT_FIXTURES, 'tiny-onnx-export.onnx'), '-o', path.join(tmp, 'cli-ok')]);
    expect(ok.status).toBe(0);
    expect(readdirSync(path.join(tmp, 'cli-ok')).sort()).toEqual(['model.json', 'model.onnx']);
    const legacy = run(['import', path.join(IMPORT_FIXTURES, 'ckpt-legacy.pt'), '-o', path.join(tmp, 'cli-bad')]);
    expect(legacy.status).toBe(1);
    expect(legacy.stderr).toMatch(/^error ERR_MODEL_INVALID: .*legacy/);
    expect(existsSync(path.join(tmp, 'cli-bad'))).toBe(false);
    expect(run(['import', TINY_BUNDLE]).status).toBe(2);
  });
});
