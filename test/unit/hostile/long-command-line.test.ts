/**
 * Finding 1: a long command line (`infer *.nii.gz` on a big folder) crashed the process with SIGSEGV
 * inside onnxruntime's worker thread (its telemetry regex-matches /proc/self/cmdline recursively).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ortWorkerStackMb } from '../../../src/inference/ort-worker-stack.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const CLI = path.join(ROOT, 'dist/cli/main.js');

describe.runIf(existsSync(CLI))('a long command line', () => {
  it('infer with 600 paths (30 KB of arguments) reports each missing file instead of crashing', () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-argv-'));
    const paths = Array.from({ length: 600 }, (_, i) => path.join(tmp, 'a-rather-long-folder-name', `case_${String(i).padStart(4, '0')}.nii.gz`));
    const result = spawnSync(process.execPath, [CLI, 'infer', ...paths, '-o', path.join(tmp, 'out')], { encoding: 'utf8', timeout: 120_000 });
    expect(result.signal).toBeNull();
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/\[600\/600\] case_0599\.nii\.gz: error ERR_FILE_NOT_FOUND/);
  });

  it("a main-thread onnxruntime session survives 150 KB of arguments (the env is created in a worker first)", () => {
    const code = `
      const { createOnnxRuntimeBackend } = await import(${JSON.stringify(path.join(ROOT, 'dist/inference/onnxruntime-backend.js'))});
      const { loadDefaultModel } = await import(${JSON.stringify(path.join(ROOT, 'dist/model/load-model.js'))});
      const backend = await createOnnxRuntimeBackend(loadDefaultModel().onnx, { thread: 'main', intraOpThreads: 1 });
      await backend.close();
      console.log('main thread ok');`;
    const args = Array.from({ length: 3000 }, (_, i) => `/a/rather/long/folder/name/case_${String(i).padStart(5, '0')}.nii.gz`);
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', code, ...args], { encoding: 'utf8', timeout: 120_000 });
    expect(result.signal).toBeNull();
    expect(result.stdout, result.stderr).toMatch(/main thread ok/);
  });

  it('sizes the worker stack from the command line', () => {
    expect(ortWorkerStackMb(100)).toBe(5);
    expect(ortWorkerStackMb(2 * 1024 * 1024)).toBeGreaterThan(1024);
  });
});
