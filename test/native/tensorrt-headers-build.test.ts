// The addon compiled WITH TensorRT headers (its builder and runtime code), on a machine without
// TensorRT or a GPU. Opt-in, because the headers are never part of the repository: point
// SPLEEN_TRT_TEST_TENSORRT_INCLUDE_DIR at a TensorRT include/ (and, for TensorRT < 10.14,
// SPLEEN_TRT_TEST_TENSORRT_PARSER_INCLUDE_DIR at a directory with NvOnnxParser.h), e.g. from
//   git --git-dir=<NVIDIA/TensorRT mirror> archive v10.16 include | tar -x -C /tmp/trt-10.16
// The build goes to a temporary directory; build/Release stays the plain build.
//
// Checked: it links no CUDA or TensorRT library, not even statically (the CUDA driver API and
// TensorRT are dlopen'd: CUDA 13's runtime would refuse drivers older than R580), it loads and
// answers without them, and with fake TensorRT libraries every path fails cleanly with its code.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildFakeLibrary, hasCCompiler, makeTempDir, repoRoot, runtimeInfoWithLibraryPath } from './native-test-helpers.js';
import { runTensorRtChild } from './tensorrt-test-helpers.js';

const includeDir = process.env.SPLEEN_TRT_TEST_TENSORRT_INCLUDE_DIR ?? '';
const parserDir = process.env.SPLEEN_TRT_TEST_TENSORRT_PARSER_INCLUDE_DIR ?? includeDir;
const hasCmake = spawnSync('cmake', ['--version']).status === 0;
const enabled =
  process.platform === 'linux' && includeDir !== '' && existsSync(path.join(includeDir, 'NvInfer.h')) && hasCmake && hasCCompiler();

/** major.minor.patch from NvInferVersion.h (numeric macros, or the *_ENTERPRISE ones of 10.13+). */
function headerVersion(directory: string): [number, number, number] {
  const text = readFileSync(path.join(directory, 'NvInferVersion.h'), 'utf8');
  const part = (name: string): number => {
    for (const macro of [`NV_TENSORRT_${name}`, `TRT_${name}_ENTERPRISE`]) {
      const match = new RegExp(`#define\\s+${macro}\\s+(\\d+)`).exec(text);
      if (match) return Number(match[1]);
    }
    throw new Error(`no ${name} version in NvInferVersion.h`);
  };
  return [part('MAJOR'), part('MINOR'), part('PATCH')];
}

let buildDir: string;
let addon: string;
let version: [number, number, number];

beforeAll(() => {
  if (!enabled) return;
  version = headerVersion(includeDir);
  buildDir = path.join(os.tmpdir(), `spleen-trt-headers-${version.join('.')}-${process.getuid?.() ?? 0}`);
  const cmakeJs = path.join(repoRoot, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
  const result = spawnSync(
    process.execPath,
    [
      cmakeJs,
      'compile',
      '--directory',
      repoRoot,
      '--out',
      buildDir,
      '--parallel',
      String(os.availableParallelism()),
      `--CDNODE_EXECUTABLE=${process.execPath}`,
      '--CDSPLEEN_TRT_WERROR=ON',
      `--CDTENSORRT_INCLUDE_DIR=${includeDir}`,
      `--CDTENSORRT_PARSER_INCLUDE_DIR=${parserDir}`,
    ],
    { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, TENSORRT_ROOT: '' } },
  );
  if (result.status !== 0) throw new Error(`cmake-js failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  addon = path.join(buildDir, 'Release', 'spleen_trt.node');
}, 600_000);

describe.runIf(enabled)('the addon built with TensorRT headers', () => {
  it('needs no CUDA or TensorRT library to load (readelf: no DT_NEEDED on them)', ({ skip }) => {
    const readelf = spawnSync('readelf', ['-d', addon], { encoding: 'utf8' });
    if (readelf.status !== 0) skip();
    const needed = [...readelf.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((match) => match[1]);
    expect(needed).toContain('libc.so.6');
    expect(needed.filter((name) => /cuda|nvinfer|nvonnxparser|cublas|cudnn/.test(name))).toEqual([]);
  });

  it('contains no static CUDA runtime (nm: no cudart symbols)', ({ skip }) => {
    const nm = spawnSync('nm', [addon], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (nm.status !== 0) skip();
    const cudart = nm.stdout.split('\n').filter((line) => /cudart|cudaGetErrorString|cudaMalloc\b|cudaStreamCreate/.test(line));
    expect(cudart).toEqual([]);
  });

  it('records the header version and loads without CUDA or TensorRT', () => {
    const { async: info } = runtimeInfoWithLibraryPath([], addon);
    expect(info.compiledWith.tensorrtHeaders).toBe(version.join('.'));
    expect(info.compiledWith.cudaToolkit).not.toBeNull();
  });

  it('without libnvinfer: ERR_TENSORRT_UNAVAILABLE naming the library of its major', () => {
    const report = runTensorRtChild(addon, [], version[0]);
    expect(report.status.available).toBe(false);
    expect(report.status.reason).toContain(`libnvinfer.so.${version[0]}`);
    for (const outcome of [report.build, report.loadPlan, report.loadGarbage]) {
      expect(outcome.code).toBe('ERR_TENSORRT_UNAVAILABLE');
      expect(outcome.message).toContain(`libnvinfer.so.${version[0]}`);
    }
  });

  it('with a fake libnvinfer older than the headers: unavailable, saying so', ({ skip }) => {
    if (version[1] === 0) skip();
    const trt = makeTempDir('trt-old');
    const older = version[0] * 10000 + (version[1] - 1) * 100;
    buildFakeLibrary(trt, `libnvinfer.so.${version[0]}`, 'fake_nvinfer.c', { FAKE_VERSION: older });
    const report = runTensorRtChild(addon, [trt], version[0]);
    expect(report.status.available).toBe(false);
    expect(report.status.reason).toContain('older than the TensorRT');
    expect(report.build.code).toBe('ERR_TENSORRT_UNAVAILABLE');
  });

  it('with a fake libnvinfer of the headers version: builder/runtime creation fails cleanly', () => {
    const trt = makeTempDir('trt-same');
    const same = version[0] * 10000 + version[1] * 100 + version[2];
    buildFakeLibrary(trt, `libnvinfer.so.${version[0]}`, 'fake_nvinfer.c', { FAKE_VERSION: same });
    buildFakeLibrary(trt, `libnvonnxparser.so.${version[0]}`, 'fake_nvonnxparser.c');

    const report = runTensorRtChild(addon, [trt], version[0]);

    expect(report.status).toEqual({ available: true, version: version.join('.') });
    // No GPU here: libcuda.so.1 is not found, and the error says so. On a machine with a GPU the
    // fake's null builder and runtime are reported instead.
    const expectedCodes = ['ERR_NO_GPU', 'ERR_TENSORRT_UNAVAILABLE'];
    expect(expectedCodes).toContain(report.build.code);
    expect(expectedCodes).toContain(report.loadPlan.code);
    if (report.build.code === 'ERR_NO_GPU') expect(report.build.message).toContain('CUDA driver');
    else expect(report.build.message).toContain('createInferBuilder returned null');
    expect(report.loadGarbage.code).toBe('ERR_ENGINE_INCOMPATIBLE');
    expect(report.loadGarbage.message).toContain('Not a TensorRT plan');
  });

  it('with a plan header from another major: ERR_ENGINE_INCOMPATIBLE naming both versions', () => {
    const trt = makeTempDir('trt-major');
    buildFakeLibrary(trt, `libnvinfer.so.${version[0]}`, 'fake_nvinfer.c', {
      FAKE_VERSION: version[0] * 10000 + version[1] * 100 + version[2],
    });
    const report = runTensorRtChild(addon, [trt], version[0] + 1);
    expect(report.loadPlan.code).toBe('ERR_ENGINE_INCOMPATIBLE');
    expect(report.loadPlan.message).toContain(`built by TensorRT ${version[0] + 1}.1.0`);
    expect(report.loadPlan.message).toContain(`the loaded TensorRT is ${version.join('.')}`);
    // And without a parser, building says which library is missing.
    expect(report.build.code).toBe('ERR_TENSORRT_UNAVAILABLE');
    expect(report.build.message).toContain(`libnvonnxparser.so.${version[0]}`);
  });

  it('passes the core C++ tests built in that configuration', () => {
    const run = spawnSync('ctest', ['--test-dir', buildDir, '--output-on-failure'], { encoding: 'utf8' });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('100% tests passed');
  });
});
