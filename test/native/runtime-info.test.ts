import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { getNativeRuntimeInfo, loadAddon, type NativeRuntimeInfo } from '../../src/native/addon.js';
import { addonPath, ensureAddonBuilt, repoRoot } from './native-test-helpers.js';

// Whether the system loader could find `soname`, decided without the addon: LD_LIBRARY_PATH, the
// loader cache, and the default directories.
function loaderFinds(soname: string): boolean {
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    ...['/lib', '/usr/lib', '/lib64', '/usr/lib64'].flatMap((d) => [d, `${d}/${process.arch === 'x64' ? 'x86_64' : 'aarch64'}-linux-gnu`]),
  ];
  if (dirs.some((dir) => existsSync(path.join(dir, soname)))) return true;
  for (const ldconfig of ['ldconfig', '/sbin/ldconfig']) {
    const result = spawnSync(ldconfig, ['-p'], { encoding: 'utf8' });
    if (result.status === 0) return result.stdout.split('\n').some((line) => line.trim().startsWith(`${soname} `));
  }
  return false;
}
const linux = process.platform === 'linux';
const noCudaDriver = linux && !loaderFinds('libcuda.so.1');
const noTensorRt = linux && !loaderFinds('libnvinfer.so.10') && !loaderFinds('libnvinfer.so.11');

let info: NativeRuntimeInfo;

beforeAll(async () => {
  ensureAddonBuilt();
  const result = await getNativeRuntimeInfo();
  if (!result.available) throw new Error(`addon unavailable: ${result.reason}`);
  info = result;
});

describe('getNativeRuntimeInfo', () => {
  it('reports the addon it loaded and the versions it was built with', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(info.available).toBe(true);
    expect(info.addonPath).toBe(addonPath);
    expect(info.addonVersion).toBe(pkg.version);
    expect(info.napiBuildVersion).toBe(8);
    expect(info.napiVersion).toBe(Number(process.versions.napi));
    for (const value of [info.compiledWith.cudaToolkit, info.compiledWith.tensorrtHeaders]) {
      expect(value === null || /^\d+\.\d+(\.\d+)?$/.test(value)).toBe(true);
    }
  });

  it('has the documented shape', () => {
    expect(typeof info.cuda.driverAvailable).toBe('boolean');
    expect(Array.isArray(info.cuda.devices)).toBe(true);
    for (const device of info.cuda.devices) {
      expect(Object.keys(device).sort()).toEqual(['computeCapability', 'index', 'name', 'pciBusId', 'totalMemoryBytes']);
      expect(device.computeCapability).toMatch(/^\d+\.\d+$/);
    }
    expect(typeof info.tensorrt.available).toBe('boolean');
    expect(typeof info.tensorrt.parserAvailable).toBe('boolean');
    expect(typeof info.tensorrt.builderResourceAvailable).toBe('boolean');
    // Optional fields are absent, not undefined, so JSON output and `in` agree.
    expect(Object.values(info.cuda).includes(undefined)).toBe(false);
    expect(Object.values(info.tensorrt).includes(undefined)).toBe(false);
  });

  it.runIf(noCudaDriver)('says the CUDA driver is unavailable, and why, on a machine without one', () => {
    expect(info.cuda.driverAvailable).toBe(false);
    expect(info.cuda.devices).toEqual([]);
    expect(info.cuda.driverVersion).toBeUndefined();
    expect(info.cuda.reason).toContain('libcuda.so.1');
    expect(info.cuda.reason).toContain('cannot open shared object file');
  });

  it.runIf(noTensorRt)('says TensorRT is unavailable and lists the file names it tried', () => {
    expect(info.tensorrt.available).toBe(false);
    expect(info.tensorrt.version).toBeUndefined();
    // Built with TensorRT headers, the addon looks only for that major's library.
    const headers = info.compiledWith.tensorrtHeaders;
    const tried = headers === null ? 'tried libnvinfer.so.11, libnvinfer.so.10' : `tried libnvinfer.so.${headers.split('.')[0]}`;
    expect(info.tensorrt.reason).toContain(tried);
    expect(info.tensorrt.parserAvailable).toBe(false);
    expect(info.tensorrt.parserReason).toBeDefined();
    expect(info.tensorrt.builderResourceAvailable).toBe(false);
  });

  it('gives the same answer synchronously and asynchronously', async () => {
    const addon = loadAddon();
    expect(addon).not.toBeNull();
    const [syncInfo, asyncInfo] = [addon!.getRuntimeInfo(), await addon!.getRuntimeInfoAsync()];
    expect(asyncInfo).toEqual(syncInfo);
    expect(asyncInfo.cuda.driverAvailable).toBe(info.cuda.driverAvailable);
  });

  it('settles many concurrent async calls', async () => {
    const addon = loadAddon()!;
    const results = await Promise.all(Array.from({ length: 8 }, () => addon.getRuntimeInfoAsync()));
    for (const result of results) expect(result).toEqual(results[0]);
  });
});
