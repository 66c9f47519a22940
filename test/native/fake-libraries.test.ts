// The probing logic against stand-ins for libcuda.so.1 and TensorRT, built here with `cc` from
// test/native/fixtures: no GPU or TensorRT needed. Each case runs the addon in a child Node whose
// LD_LIBRARY_PATH holds only the fakes' directories. Expected values are the fakes' documented
// behaviour (see the comments at the top of each fixture).
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/native/addon.js';
import {
  buildFakeLibrary,
  ensureAddonBuilt,
  hasCCompiler,
  makeTempDir,
  runtimeInfoWithLibraryPath,
} from './native-test-helpers.js';

const canRun = process.platform === 'linux' && hasCCompiler();
let root: string;
// An addon compiled against TensorRT headers looks only for that major's libraries (one binary
// serves one major); without headers it looks for 11, then 10. null: no headers.
let compiledMajor: number | null = null;

beforeAll(() => {
  if (!canRun) return;
  ensureAddonBuilt();
  root = makeTempDir('fakes');
  const headers = loadAddon()?.getRuntimeInfo().compiledWith.tensorrtHeaders ?? null;
  compiledMajor = headers === null ? null : Number(headers.split('.')[0]);
});

/** Skips a test about libnvinfer.so.10 when the addon was compiled for another major. */
function needsMajor10(skip: () => void): void {
  if (compiledMajor !== null && compiledMajor !== 10) skip();
}

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** A fresh directory under the test's temp root. */
function dir(name: string): string {
  return path.join(root, name);
}

describe.runIf(canRun)('TensorRT probing with fake libraries', () => {
  it('reports a lone libnvinfer.so.10 as TensorRT 10.13.0, with the parser and builder resource missing', ({ skip }) => {
    needsMajor10(skip);
    const trt = dir('trt-only');
    buildFakeLibrary(trt, 'libnvinfer.so.10', 'fake_nvinfer.c', { FAKE_VERSION: 101300 });

    const { async: info, sync } = runtimeInfoWithLibraryPath([trt]);

    expect(info.tensorrt.available).toBe(true);
    expect(info.tensorrt.version).toBe('10.13.0');
    expect(info.tensorrt.major).toBe(10);
    expect(info.tensorrt.libraryPath).toBe(path.join(trt, 'libnvinfer.so.10'));
    expect(info.tensorrt.reason).toBeUndefined();
    expect(info.tensorrt.parserAvailable).toBe(false);
    expect(info.tensorrt.parserReason).toContain('libnvonnxparser.so.10');
    expect(info.tensorrt.parserReason).toContain('cannot open shared object file');
    expect(info.tensorrt.builderResourceAvailable).toBe(false);
    expect(info.tensorrt.builderResourceReason).toContain('libnvinfer_builder_resource.so.10.13.0');
    expect(sync).toEqual(info);
  });

  it('finds the parser and builder resource next to it', ({ skip }) => {
    needsMajor10(skip);
    const trt = dir('trt-full');
    buildFakeLibrary(trt, 'libnvinfer.so.10', 'fake_nvinfer.c', { FAKE_VERSION: 100700 });
    buildFakeLibrary(trt, 'libnvonnxparser.so.10', 'fake_nvonnxparser.c');
    buildFakeLibrary(trt, 'libnvinfer_builder_resource.so.10.7.0', 'fake_builder_resource.c');

    const { tensorrt } = runtimeInfoWithLibraryPath([trt]).async;

    expect(tensorrt).toEqual({
      available: true,
      version: '10.7.0',
      major: 10,
      libraryPath: path.join(trt, 'libnvinfer.so.10'),
      parserAvailable: true,
      parserLibraryPath: path.join(trt, 'libnvonnxparser.so.10'),
      builderResourceAvailable: true,
      builderResourcePath: path.join(trt, 'libnvinfer_builder_resource.so.10.7.0'),
      // No libcuda on the path: the driver's version is unknown, so it is not known to suffice.
      requiredDriverCudaVersion: '11.8',
      driverSufficient: false,
      driverNote: "the CUDA driver's version is unknown",
    });
  });

  it('prefers TensorRT 11 over 10 when both are installed (or takes its compiled major)', () => {
    const trt11 = dir('trt-11');
    const trt10 = dir('trt-10');
    buildFakeLibrary(trt11, 'libnvinfer.so.11', 'fake_nvinfer.c', { FAKE_VERSION: 110100 });
    buildFakeLibrary(trt10, 'libnvinfer.so.10', 'fake_nvinfer.c', { FAKE_VERSION: 101300 });

    const { tensorrt } = runtimeInfoWithLibraryPath([trt10, trt11]).async;

    const major = compiledMajor ?? 11;
    expect(tensorrt.available).toBe(true);
    expect(tensorrt.version).toBe(major === 11 ? '11.1.0' : '10.13.0');
    expect(tensorrt.major).toBe(major);
    expect(tensorrt.parserReason).toContain(`libnvonnxparser.so.${major}`);
  });

  it('rejects a libnvinfer without a factory symbol, naming the symbol', ({ skip }) => {
    needsMajor10(skip);
    const trt = dir('trt-no-runtime');
    buildFakeLibrary(trt, 'libnvinfer.so.10', 'fake_nvinfer.c', { FAKE_OMIT_RUNTIME: true });

    const { tensorrt } = runtimeInfoWithLibraryPath([trt]).async;

    expect(tensorrt.available).toBe(false);
    expect(tensorrt.version).toBe('10.13.0');
    expect(tensorrt.reason).toContain('createInferRuntime_INTERNAL');
    expect(tensorrt.reason).not.toContain('createInferBuilder_INTERNAL');
  });

  it('rejects a libnvinfer.so.10 that reports another major version', ({ skip }) => {
    needsMajor10(skip);
    const trt = dir('trt-mismatch');
    buildFakeLibrary(trt, 'libnvinfer.so.10', 'fake_nvinfer.c', { FAKE_VERSION: 110000 });

    const { tensorrt } = runtimeInfoWithLibraryPath([trt]).async;

    expect(tensorrt.available).toBe(false);
    expect(tensorrt.reason).toContain('reports version 11.0.0');
  });

  it('rejects a parser library without createNvOnnxParser_INTERNAL', ({ skip }) => {
    needsMajor10(skip);
    const trt = dir('trt-bad-parser');
    buildFakeLibrary(trt, 'libnvinfer.so.10', 'fake_nvinfer.c');
    buildFakeLibrary(trt, 'libnvonnxparser.so.10', 'fake_nvonnxparser.c', { FAKE_OMIT_FACTORY: true });

    const { tensorrt } = runtimeInfoWithLibraryPath([trt]).async;

    expect(tensorrt.available).toBe(true);
    expect(tensorrt.parserAvailable).toBe(false);
    expect(tensorrt.parserReason).toContain('createNvOnnxParser_INTERNAL');
  });
});

describe.runIf(canRun)('CUDA driver probing with fake libraries', () => {
  it('reports cuInit failing with the CUDA error name and number', () => {
    const cuda = dir('cuda-no-device');
    buildFakeLibrary(cuda, 'libcuda.so.1', 'fake_cuda.c', { FAKE_INIT_RESULT: 100 });

    const { async: info, sync } = runtimeInfoWithLibraryPath([cuda]);

    expect(info.cuda).toEqual({
      driverAvailable: false,
      driverVersion: '12.4',
      libraryPath: path.join(cuda, 'libcuda.so.1'),
      reason: 'cuInit(0) failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected',
      devices: [],
    });
    expect(sync.cuda).toEqual(info.cuda);
  });

  it('reports the bare error number when the driver cannot name it', () => {
    const cuda = dir('cuda-unnamed-error');
    buildFakeLibrary(cuda, 'libcuda.so.1', 'fake_cuda.c', { FAKE_INIT_RESULT: 999, FAKE_NO_ERROR_NAMES: true });

    const { cuda: info } = runtimeInfoWithLibraryPath([cuda]).async;

    expect(info.driverAvailable).toBe(false);
    expect(info.reason).toBe('cuInit(0) failed: CUDA error 999');
  });

  it('lists one device with its name, compute capability, memory and PCI bus id', () => {
    const cuda = dir('cuda-one-device');
    buildFakeLibrary(cuda, 'libcuda.so.1', 'fake_cuda.c', { FAKE_DEVICE_COUNT: 1 });

    const { cuda: info } = runtimeInfoWithLibraryPath([cuda]).async;

    expect(info.driverAvailable).toBe(true);
    expect(info.driverVersion).toBe('12.4');
    expect(info.reason).toBeUndefined();
    expect(info.devices).toEqual([
      // 80 GiB = 80 * 2^30 bytes: above 2^32, so a 32-bit truncation would show.
      { index: 0, name: 'Fake GPU 0', computeCapability: '9.0', totalMemoryBytes: 85_899_345_920, pciBusId: '0000:3B:00.0' },
    ]);
  });

  it('keeps the healthy devices when one fails, and says which failed', () => {
    const cuda = dir('cuda-failing-device');
    buildFakeLibrary(cuda, 'libcuda.so.1', 'fake_cuda.c', { FAKE_DEVICE_COUNT: 3, FAKE_FAILING_DEVICE: 1 });

    const { cuda: info } = runtimeInfoWithLibraryPath([cuda]).async;

    expect(info.driverAvailable).toBe(true);
    expect(info.devices.map((device) => [device.index, device.computeCapability, device.pciBusId])).toEqual([
      [0, '9.0', '0000:3B:00.0'],
      [2, '9.2', '0000:3D:00.0'],
    ]);
    expect(info.reason).toBe('device 1: cuDeviceGetName failed: CUDA_ERROR_UNKNOWN (999): unknown error');
  });

  it('names a required symbol the driver lacks', () => {
    const cuda = dir('cuda-no-pci');
    buildFakeLibrary(cuda, 'libcuda.so.1', 'fake_cuda.c', { FAKE_OMIT_PCI_BUS_ID: true });

    const { cuda: info } = runtimeInfoWithLibraryPath([cuda]).async;

    expect(info.driverAvailable).toBe(false);
    expect(info.devices).toEqual([]);
    expect(info.reason).toContain('lacks required symbols');
    expect(info.reason).toContain('cuDeviceGetPCIBusId');
  });

  it('looks for per-GPU builder resources using the compute capabilities the driver reports', ({ skip }) => {
    needsMajor10(skip);
    const cuda = dir('cuda-for-trt');
    const trt = dir('trt-split-resource');
    buildFakeLibrary(cuda, 'libcuda.so.1', 'fake_cuda.c', { FAKE_DEVICE_COUNT: 1 });
    buildFakeLibrary(trt, 'libnvinfer.so.10', 'fake_nvinfer.c', { FAKE_VERSION: 101600 });
    buildFakeLibrary(trt, 'libnvinfer_builder_resource_sm90.so.10.16.0', 'fake_builder_resource.c');

    const { async: info } = runtimeInfoWithLibraryPath([cuda, trt]);

    expect(info.cuda.devices.map((device) => device.computeCapability)).toEqual(['9.0']);
    expect(info.tensorrt.builderResourceAvailable).toBe(true);
    expect(info.tensorrt.builderResourcePath).toBe(path.join(trt, 'libnvinfer_builder_resource_sm90.so.10.16.0'));
    // The fake driver reports CUDA 12.4 (cuDriverGetVersion): enough for TensorRT 10's CUDA 12 packages.
    expect(info.tensorrt.driverSufficient).toBe(true);
    expect(info.tensorrt.requiredDriverCudaVersion).toBe('11.8');
    expect(info.tensorrt.driverNote).toContain('not those for CUDA 13.x');
  });
});
