/**
 * The CLI as a user runs it: a child process on the built package (npm test builds dist/ first).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makePhantom, readNifti, writeNifti } from '../../../src/index.js';
import { readNiftiChannels } from '../../../src/nifti/index.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const CLI = path.join(ROOT, 'dist/cli/main.js');

function run(args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

describe.runIf(existsSync(CLI))('spleen-trt CLI', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-cli-'));
  const inputs = path.join(tmp, 'in');
  const good = path.join(inputs, 'case_a.nii.gz');
  const corrupt = path.join(inputs, 'case_b.nii.gz');

  beforeAll(async () => {
    mkdirSync(inputs);
    const { image } = makePhantom({ shape: [48, 40, 12], spacingMm: [3, 3, 8], seed: 5 });
    await writeNifti(good, image, { datatype: 'int16' });
    // A real file cut in half: the gzip stream ends early.
    const bytes = readFileSync(good);
    writeFileSync(corrupt, bytes.subarray(0, bytes.length >> 1));
  });

  it('runs as an executable, as npx and npm bin links run it', () => {
    const result = spawnSync(CLI, ['--version'], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('prints usage and exits 2 without a command', () => {
    const { code, stdout } = run([]);
    expect(code).toBe(2);
    expect(stdout).toMatch(/Usage: spleen-trt <command>/);
  });

  it('exits 2 for an unknown command or a bad flag value', () => {
    expect(run(['segment-everything']).code).toBe(2);
    const bad = run(['infer', good, '--overlap', '1.5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--overlap expects a number in \[0, 0\.9\]/);
    expect(run(['infer', good, '--no-such-flag']).code).toBe(2);
  });

  it('runs the good file, reports the bad and the missing one, exits 1, and leaves no partial output', () => {
    const out = path.join(tmp, 'out-mixed');
    const missing = path.join(inputs, 'missing.nii.gz');
    const { code, stderr } = run(['infer', good, corrupt, missing, '-o', out]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/case_b\.nii\.gz: error ERR_NIFTI_INVALID/);
    expect(stderr).toMatch(/missing\.nii\.gz: error ERR_FILE_NOT_FOUND/);
    expect(allFiles(out).map((f) => path.relative(out, f))).toEqual([path.join('case_a', 'case_a_trans.nii.gz')]);
  });

  it('writes the bundle-compatible mask: float32 {0,1} on the input grid, sform and qform code 1', async () => {
    const out = path.join(tmp, 'out-json');
    const { code, stdout } = run(['infer', good, '-o', out, '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.files).toHaveLength(1);
    const file = report.files[0];
    expect(file.ok).toBe(true);
    expect(file.timings.totalMs).toBeGreaterThan(0);
    const mask = await readNifti(file.output);
    const input = await readNifti(good);
    expect(mask.header.datatype).toBe(16);
    expect(mask.header.sform_code).toBe(1);
    expect(mask.header.qform_code).toBe(1);
    expect(mask.volume.shape).toEqual(input.volume.shape);
    Array.from(mask.volume.affine).forEach((v, i) => expect(v).toBeCloseTo(input.volume.affine[i], 5));
    expect(mask.volume.data.every((v) => v === 0 || v === 1)).toBe(true);
    expect(mask.volume.data.reduce((a, b) => a + b, 0)).toBe(file.summary.voxelCount);
  });

  it('--output-dtype uint8 and --save-stages write the stage files with their own grids', async () => {
    const out = path.join(tmp, 'out-stages');
    const { code } = run(['infer', inputs + '/case_a.nii.gz', '-o', out, '--output-dtype', 'uint8', '--save-stages']);
    expect(code).toBe(0);
    const dir = path.join(out, 'case_a');
    expect((await readNifti(path.join(dir, 'case_a_trans.nii.gz'))).header.datatype).toBe(2);
    const pre = await readNifti(path.join(dir, 'preprocessed.nii.gz'));
    expect(pre.volume.spacingMm.map((s) => Number(s.toFixed(3)))).toEqual([1.5, 1.5, 2]);
    const logits = await readNiftiChannels(path.join(dir, 'logits.nii.gz'));
    expect(logits.volume.channels).toBe(2);
    expect(logits.volume.shape).toEqual(pre.volume.shape);
    const probability = await readNifti(path.join(dir, 'probability.nii.gz'));
    const input = await readNifti(good);
    expect(probability.volume.shape).toEqual(input.volume.shape);
    expect(probability.volume.data.every((p) => p >= 0 && p <= 1)).toBe(true);
  });

  it('-o <file.nii.gz> with one input writes the mask to that file; with several it is a usage error', async () => {
    const file = path.join(tmp, 'out-file', 'mask.nii.gz');
    const { code } = run(['infer', good, '-o', file]);
    expect(code).toBe(0);
    expect(allFiles(path.join(tmp, 'out-file'))).toEqual([file]);
    expect((await readNifti(file)).volume.shape).toEqual([48, 40, 12]);
    const two = run(['infer', good, good, '-o', path.join(tmp, 'two.nii.gz')]);
    expect(two.code).toBe(2);
    expect(two.stderr).toMatch(/names one file, but there are 2 inputs/);
    expect(existsSync(path.join(tmp, 'two.nii.gz'))).toBe(false);
  });

  it('takes a directory and skips non-NIfTI files', () => {
    const out = path.join(tmp, 'out-dir');
    writeFileSync(path.join(inputs, 'notes.txt'), 'not an image');
    const { code, stderr } = run(['infer', inputs, '-o', out]);
    expect(code).toBe(1); // case_b is corrupt
    expect(stderr).toMatch(/\[1\/2\] case_a/);
    expect(stderr).not.toMatch(/notes\.txt/);
  });

  it('info --json reports onnxruntime and the native addon state', () => {
    const { code, stdout } = run(['info', '--json']);
    expect(code).toBe(0);
    const info = JSON.parse(stdout);
    expect(info.onnxruntime.available).toBe(true);
    expect(typeof info.tensorrt.reason).toBe('string');
    expect(info.cpu.cores).toBeGreaterThan(0);
    // auto's CPU backend: oneDNN only where it opened with AVX-512 kernels.
    const onednnFast = info.onednn.available === true && info.onednn.isa === 'avx512_core';
    expect(info.cpuBackend.name).toBe(onednnFast ? 'onednn' : 'onnxruntime');
    const text = run(['info']).stdout;
    expect(text).toContain(`cpu backend (auto): ${info.cpuBackend.name} (${info.cpuBackend.reason})`);
  });

  it('demo generates a sample, segments the spleen with the trained default model and reports its Dice', async () => {
    const out = path.join(tmp, 'demo');
    const { code, stderr } = run(['demo', '-o', out]);
    expect(code).toBe(0);
    expect(stderr).toMatch(/synthetic phantoms/);
    const dice = Number(/Dice against the ground truth: ([0-9.]+)/.exec(stderr)?.[1]);
    expect(dice).toBeGreaterThanOrEqual(0.9);
    const mask = await readNifti(path.join(out, 'sample_ct', 'sample_ct_trans.nii.gz'));
    expect(mask.volume.shape).toEqual([384, 384, 40]);
    expect(existsSync(path.join(out, 'sample_label.nii.gz'))).toBe(true);
    const png = readFileSync(path.join(out, 'preview.png'));
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
  });
});
