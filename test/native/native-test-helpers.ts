// Shared by the native tests: make sure the addon is built, build fake CUDA/TensorRT libraries
// with the system C compiler, and run the addon in a child process whose library path points at
// them (LD_LIBRARY_PATH is read once, at process start).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeAddonRuntimeInfo } from '../../src/native/addon.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const addonPath = path.join(repoRoot, 'build', 'Release', 'spleen_trt.node');
const fixtures = path.join(repoRoot, 'test', 'native', 'fixtures');

function newestMtime(entry: string): number {
  const stat = statSync(entry);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(entry).map((name) => newestMtime(path.join(entry, name))));
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Runs `task` holding build/.test-build-lock. Test files run in parallel processes and share
 * build/, so builds there take turns (mkdir is atomic). `done` is checked again after every wait.
 */
export function withBuildLock(done: () => boolean, task: () => void): void {
  if (done()) return;
  const lock = path.join(repoRoot, 'build', '.test-build-lock');
  mkdirSync(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock} (remove it if stale)`);
      sleep(200);
      if (done()) return;
    }
  }
  try {
    if (!done()) task();
  } finally {
    rmdirSync(lock);
  }
}

/** Builds the addon when it is missing or older than its sources. */
export function ensureAddonBuilt(): void {
  const sources = Math.max(newestMtime(path.join(repoRoot, 'native')), newestMtime(path.join(repoRoot, 'CMakeLists.txt')));
  const fresh = (): boolean => existsSync(addonPath) && statSync(addonPath).mtimeMs >= sources;
  withBuildLock(fresh, () => {
    const result = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'build-addon.mjs'), '--force'], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, SPLEEN_TRT_REQUIRE_ADDON: '1' },
    });
    if (result.status !== 0) {
      throw new Error(`building the addon failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
    }
  });
}

/** True when `cc` can build shared libraries here (the fake-library tests need it). */
export function hasCCompiler(): boolean {
  const result = spawnSync('cc', ['--version'], { encoding: 'utf8' });
  return result.status === 0;
}

export function makeTempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `spleen-trt-${prefix}-`));
}

/**
 * Compiles test/native/fixtures/<source> into <directory>/<fileName> as a shared library, with
 * `defines` (e.g. { FAKE_INIT_RESULT: 100 }) choosing the fake's behaviour.
 */
export function buildFakeLibrary(
  directory: string,
  fileName: string,
  source: string,
  defines: Record<string, string | number | true> = {},
): string {
  mkdirSync(directory, { recursive: true });
  const output = path.join(directory, fileName);
  const flags = Object.entries(defines).map(([name, value]) => (value === true ? `-D${name}` : `-D${name}=${value}`));
  const result = spawnSync('cc', ['-shared', '-fPIC', '-O0', ...flags, '-o', output, path.join(fixtures, source)], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`cc failed for ${fileName}: ${result.stderr}`);
  return output;
}

/** What the child process reports: both entry points, so they can be compared. */
export interface ChildRuntimeInfo {
  async: NativeAddonRuntimeInfo;
  sync: NativeAddonRuntimeInfo;
}

const childScript = `
const addon = require(process.env.SPLEEN_TRT_TEST_ADDON);
addon.getRuntimeInfoAsync().then((info) => {
  process.stdout.write(JSON.stringify({ async: info, sync: addon.getRuntimeInfo() }));
});
`;

/** Loads the addon (default: build/Release) in a fresh Node whose LD_LIBRARY_PATH is exactly `libraryDirs`. */
export function runtimeInfoWithLibraryPath(libraryDirs: readonly string[], addon: string = addonPath): ChildRuntimeInfo {
  const result = spawnSync(process.execPath, ['-e', childScript], {
    encoding: 'utf8',
    env: { ...process.env, LD_LIBRARY_PATH: libraryDirs.join(path.delimiter), SPLEEN_TRT_TEST_ADDON: addon },
    timeout: 30_000,
  });
  if (result.status !== 0) {
    throw new Error(`child exited with ${result.status ?? result.signal}: ${result.stderr}`);
  }
  return JSON.parse(result.stdout) as ChildRuntimeInfo;
}
