import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addonBuildCommand,
  addonCandidates,
  matchingPrebuild,
  getNativeAddonPath,
  getNativeLoadError,
  loadAddon,
  tryLoadAddon,
} from '../../src/native/addon.js';
import { addonPath, ensureAddonBuilt, makeTempDir as makeTempDirOnce } from './native-test-helpers.js';

const tempDirs: string[] = [];
function makeTempDir(prefix: string): string {
  const directory = makeTempDirOnce(prefix);
  tempDirs.push(directory);
  return directory;
}

beforeAll(() => {
  ensureAddonBuilt();
});

afterAll(() => {
  for (const directory of tempDirs) rmSync(directory, { recursive: true, force: true });
});

describe('loadAddon', () => {
  it('loads build/Release/spleen_trt.node with both entry points', () => {
    const addon = loadAddon();
    expect(getNativeLoadError()).toBeNull();
    expect(addon).not.toBeNull();
    expect(typeof addon?.getRuntimeInfo).toBe('function');
    expect(typeof addon?.getRuntimeInfoAsync).toBe('function');
    expect(getNativeAddonPath()).toBe(addonPath);
  });

  it('returns the cached object on the second call', () => {
    const first = loadAddon();
    const second = loadAddon();
    expect(first).not.toBeNull();
    expect(second).toBe(first);
  });
});

describe('the addon in several Node environments', () => {
  it('loads in worker threads and the main thread, and tears down cleanly', () => {
    // Each worker is its own environment with its own instance data and cleanup hook; the
    // process-wide CUDA/TensorRT state is shared. A crash at teardown shows as a non-zero status.
    const script = `
      const { Worker } = require('node:worker_threads');
      const addon = require(process.env.ADDON);
      const code = 'const a = require(process.env.ADDON); a.getRuntimeInfoAsync().then((i) => require("node:worker_threads").parentPort.postMessage(i.addonVersion));';
      const runs = Array.from({ length: 3 }, () => new Promise((resolve, reject) => {
        const worker = new Worker(code, { eval: true });
        worker.once('message', resolve);
        worker.once('error', reject);
      }));
      Promise.all(runs).then((versions) => {
        process.stdout.write(JSON.stringify({ versions, main: addon.getRuntimeInfo().addonVersion }));
      });
    `;
    const result = spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      env: { ...process.env, ADDON: addonPath },
      timeout: 30_000,
    });
    expect(result.status, result.stderr).toBe(0);
    const output = JSON.parse(result.stdout) as { versions: string[]; main: string };
    expect(output.versions).toEqual([output.main, output.main, output.main]);
    expect(output.main).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('tryLoadAddon', () => {
  it('names every file it tried when none loads, without throwing', () => {
    const directory = makeTempDir('load');
    const missing = path.join(directory, 'missing.node');
    const notAnAddon = path.join(directory, 'not-an-addon.cjs');
    writeFileSync(notAnAddon, 'module.exports = { hello: 1 };\n');
    const broken = path.join(directory, 'broken.node');
    writeFileSync(broken, 'this is not a shared library');

    const result = tryLoadAddon([missing, notAnAddon, broken]);

    expect(result.addon).toBeNull();
    expect(result.path).toBeNull();
    expect(result.error).toBeInstanceOf(Error);
    expect(result.error?.message).toContain(`${missing}: not found`);
    expect(result.error?.message).toContain(`${notAnAddon}: not a spleen-trt addon`);
    expect(result.error?.message).toContain(broken);
    expect(result.error?.message).toContain('npm run build:addon');
  });

  it('skips failures and returns the first candidate that loads', () => {
    const missing = path.join(makeTempDir('load'), 'missing.node');
    const result = tryLoadAddon([missing, addonPath]);
    expect(result.error).toBeNull();
    expect(result.path).toBe(addonPath);
    // Node caches native modules by path: the same file gives the same exports object.
    expect(result.addon).toBe(loadAddon());
  });
});

describe('addonCandidates', () => {
  it("tries the local build first, then the prebuild node-gyp-build picks for this platform (prebuildify's names)", () => {
    const root = makeTempDir('prebuilds');
    const here = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    const elsewhere = path.join(root, 'prebuilds', 'plan9-mips');
    mkdirSync(here, { recursive: true });
    mkdirSync(elsewhere, { recursive: true });
    // What `prebuildify --napi --tag-libc --name spleen-trt` writes, next to builds for another
    // libc, another Node ABI, and a stray file; the loader rejected prebuildify's name before.
    const libc = process.platform === 'linux' ? 'glibc' : null;
    const ours = libc === null ? 'spleen-trt.node' : 'spleen-trt.glibc.node';
    for (const file of [ours, 'spleen-trt.musl.node', 'spleen-trt.abi1.node', 'readme.txt']) writeFileSync(path.join(here, file), '');
    writeFileSync(path.join(elsewhere, 'spleen-trt.node'), '');

    expect(matchingPrebuild(root)).toBe(path.join(here, ours));
    expect(addonCandidates(root)).toEqual([path.join(root, 'build', 'Release', 'spleen_trt.node'), path.join(here, ours)]);
  });

  it('has only the local build when there are no prebuilds', () => {
    const root = makeTempDir('prebuilds');
    expect(matchingPrebuild(root)).toBeNull();
    expect(addonCandidates(root)).toEqual([path.join(root, 'build', 'Release', 'spleen_trt.node')]);
  });
});

describe('addonBuildCommand', () => {
  it('names npm rebuild where the package is a dependency, npm run build:addon in a checkout', () => {
    expect(addonBuildCommand(path.join('/srv', 'app', 'node_modules', 'spleen-trt'))).toMatch(/^npm rebuild spleen-trt /);
    expect(addonBuildCommand(path.join('/work', 'spleen-trt'))).toBe('npm run build:addon');
  });
});
