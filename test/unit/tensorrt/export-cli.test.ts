/**
 * `spleen-trt export` as a user runs it: a child process on the built package (npm test builds
 * dist/ first). Where TensorRT is missing (every machine without a GPU) it must say why, exit 1
 * and write nothing; usage mistakes exit 2 before anything is read or built.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseByteSize } from '../../../src/cli/export-command.js';
import { UsageError } from '../../../src/cli/usage-error.js';
import { buildUnetOnnx } from '../../../src/model/build-unet-onnx.js';
import { seededUnetWeights } from '../../../src/model/seeded-weights.js';
import { getTensorRtStatus } from '../../../src/runtime-info.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const CLI = path.join(ROOT, 'dist/cli/main.js');
const tensorRt = await getTensorRtStatus();

function run(args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('parseByteSize', () => {
  it.each<[string, number]>([
    ['4GiB', 4 * 2 ** 30],
    ['512MiB', 512 * 2 ** 20],
    ['512mib', 512 * 2 ** 20],
    ['2GB', 2e9],
    ['1.5G', 1.5 * 2 ** 30],
    ['64K', 65536],
    ['1TiB', 2 ** 40],
    ['1048576', 1048576],
    ['100B', 100],
    [' 8 MiB ', 8 * 2 ** 20],
  ])('%s = %d bytes', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each(['', 'GiB', '4 gigs', '-1GiB', '0', '0.3B', '1e3', '4GiBs'])('rejects %j as a usage error', (text) => {
    expect(() => parseByteSize(text)).toThrow(UsageError);
  });
});

describe.runIf(existsSync(CLI))('spleen-trt export', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-export-'));
  const config = { inChannels: 1, outChannels: 2, channels: [4, 8], strides: [2], kernelSize: 3, upKernelSize: 3, numResUnits: 1 };
  const onnx = path.join(tmp, 'model.onnx');
  writeFileSync(onnx, buildUnetOnnx(seededUnetWeights(1, config), config));

  it('is listed in the help and prints its options', () => {
    expect(run(['help']).stdout).toMatch(/^ {2}export {16}build a TensorRT engine/m);
    const help = run(['export', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: spleen-trt export \(--onnx <file> \| --model <dir\|default>\) -o <plan>/);
    for (const flag of ['--precision', '--dynamic-batch', '--timing-cache', '--workspace', '--opt-level', '--version-compatible', '--hardware-compat', '--device', '--json']) {
      expect(help.stdout).toContain(flag);
    }
  });

  it.each<[string, string[], RegExp]>([
    ['no model', ['-o', 'x.plan'], /exactly one of --onnx <file> and --model/],
    ['two models', ['--onnx', 'a.onnx', '--model', 'default', '-o', 'x.plan'], /exactly one of/],
    ['no output', ['--onnx', 'a.onnx'], /needs -o <plan>/],
    ['a bad precision', ['--model', 'default', '-o', 'x.plan', '--precision', 'int8'], /--precision expects one of fp32, tf32, fp16, got "int8"/],
    ['an unordered profile', ['--model', 'default', '-o', 'x.plan', '--dynamic-batch', '1,8,4'], /--dynamic-batch expects three batch sizes/],
    ['a two-entry profile', ['--model', 'default', '-o', 'x.plan', '--dynamic-batch', '1,8'], /--dynamic-batch expects/],
    ['a bad size', ['--model', 'default', '-o', 'x.plan', '--workspace', '4 gigs'], /--workspace expects a size like 4GiB/],
    ['opt level 7', ['--model', 'default', '-o', 'x.plan', '--opt-level', '7'], /--opt-level expects an integer in 0\.\.5/],
    ['a bad hardware level', ['--model', 'default', '-o', 'x.plan', '--hardware-compat', 'hopper+'], /--hardware-compat expects one of none, ampere\+/],
    ['a negative device', ['--model', 'default', '-o', 'x.plan', '--device', '-1'], /--device/],
    ['a positional', ['model.onnx', '-o', 'x.plan'], /takes no positional arguments/],
    ['an unknown flag', ['--model', 'default', '-o', 'x.plan', '--fp16'], /Unknown option '--fp16'/],
  ])('exits 2 for %s', (_name, args, message) => {
    const { code, stderr } = run(['export', ...args]);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it('exits 1 with ERR_FILE_NOT_FOUND for a missing ONNX', () => {
    const { code, stderr } = run(['export', '--onnx', path.join(tmp, 'missing.onnx'), '-o', path.join(tmp, 'missing.plan')]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^error ERR_FILE_NOT_FOUND: ONNX model not found: /);
  });

  it.runIf(!tensorRt.usable)('without TensorRT: exits 1 with ERR_TENSORRT_UNAVAILABLE and the reason, and writes nothing', () => {
    const out = path.join(tmp, 'out');
    const plan = path.join(out, 'spleen.plan');
    for (const source of [['--onnx', onnx], ['--model', 'default']]) {
      const { code, stdout, stderr } = run(['export', ...source, '-o', plan, '--precision', 'fp16', '--timing-cache', path.join(out, 'timing.cache'), '--json']);
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr).toMatch(/^error ERR_TENSORRT_UNAVAILABLE: \S.{10,}\n$/);
      expect(existsSync(out)).toBe(false);
    }
    expect(readdirSync(tmp)).toEqual(['model.onnx']);
  });
});
