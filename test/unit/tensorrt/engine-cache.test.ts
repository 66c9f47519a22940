import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  defaultEngineCacheDir,
  engineCacheKey,
  engineCachePlanPath,
  ensureCachedEngine,
  lookupCachedEngine,
  type EngineCacheKeyInput,
  type EnsureCachedEngineOptions,
} from '../../../src/inference/engine-cache.js';
import { buildUnetOnnx } from '../../../src/model/build-unet-onnx.js';
import { sha256Hex } from '../../../src/model/load-model.js';
import { seededUnetWeights } from '../../../src/model/seeded-weights.js';
import { A100, fakeDeps, FakeNative, fakePlan } from './fake-tensorrt.js';

const base: EngineCacheKeyInput = {
  onnxSha256: '1'.repeat(64),
  precision: 'fp16',
  profile: { min: 1, opt: 4, max: 8 },
  spatialShape: [96, 96, 96],
  tensorrtVersion: '10.3.0',
  gpu: A100,
  build: { workspaceBytes: null, optLevel: 3, versionCompatible: false, hardwareCompat: 'none' },
};

describe('engineCacheKey', () => {
  it('is a stable sha256 of the inputs, independent of object key order and TensorRT build number', () => {
    const key = engineCacheKey(base);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    const reordered: EngineCacheKeyInput = {
      build: { hardwareCompat: 'none', versionCompatible: false, optLevel: 3, workspaceBytes: null },
      gpu: { computeCapability: '8.0', name: A100.name },
      tensorrtVersion: '10.3.0.26',
      spatialShape: [96, 96, 96],
      profile: { max: 8, opt: 4, min: 1 },
      precision: 'fp16',
      onnxSha256: '1'.repeat(64),
    };
    expect(engineCacheKey(reordered)).toBe(key);
    expect(engineCacheKey(structuredClone(base))).toBe(key);
  });

  it('changes with every input that makes a plan valid', () => {
    const variants: Array<[string, EngineCacheKeyInput]> = [
      ['onnx', { ...base, onnxSha256: '2'.repeat(64) }],
      ['precision fp32', { ...base, precision: 'fp32' }],
      ['precision tf32', { ...base, precision: 'tf32' }],
      ['profile min', { ...base, profile: { min: 2, opt: 4, max: 8 } }],
      ['profile opt', { ...base, profile: { min: 1, opt: 8, max: 8 } }],
      ['profile max', { ...base, profile: { min: 1, opt: 4, max: 16 } }],
      ['spatial shape', { ...base, spatialShape: [96, 96, 64] }],
      ['TensorRT patch', { ...base, tensorrtVersion: '10.3.1' }],
      ['TensorRT minor', { ...base, tensorrtVersion: '10.4.0' }],
      ['GPU name', { ...base, gpu: { ...A100, name: 'NVIDIA A100-PCIE-40GB' } }],
      ['compute capability', { ...base, gpu: { ...A100, computeCapability: '8.6' } }],
      ['workspace', { ...base, build: { ...base.build, workspaceBytes: 2 ** 32 } }],
      ['opt level', { ...base, build: { ...base.build, optLevel: 5 } }],
      ['version compatible', { ...base, build: { ...base.build, versionCompatible: true } }],
      ['hardware compat', { ...base, build: { ...base.build, hardwareCompat: 'ampere+' } }],
    ];
    const keys = new Set([engineCacheKey(base), ...variants.map(([, v]) => engineCacheKey(v))]);
    expect(keys.size).toBe(variants.length + 1);
  });

  it("leaves the GPU out of hardware-compatible ('ampere+') keys", () => {
    const hc = { ...base, build: { ...base.build, hardwareCompat: 'ampere+' as const } };
    expect(engineCacheKey({ ...hc, gpu: { name: 'NVIDIA H100', computeCapability: '9.0' } })).toBe(engineCacheKey(hc));
  });

  it('names the plan file after the ONNX, the precision and the key', () => {
    const file = engineCachePlanPath('/cache', base);
    expect(path.dirname(file)).toBe('/cache');
    expect(path.basename(file)).toBe(`111111111111-fp16-${engineCacheKey(base).slice(0, 24)}.plan`);
  });
});

describe('defaultEngineCacheDir', () => {
  it('is $SPLEEN_TRT_CACHE_DIR when set, else ~/.cache/spleen-trt/engines', () => {
    expect(defaultEngineCacheDir({ SPLEEN_TRT_CACHE_DIR: '/data/engines' }, '/home/u')).toBe('/data/engines');
    expect(defaultEngineCacheDir({}, '/home/u')).toBe('/home/u/.cache/spleen-trt/engines');
    expect(defaultEngineCacheDir({ SPLEEN_TRT_CACHE_DIR: '' }, '/home/u')).toBe('/home/u/.cache/spleen-trt/engines');
  });
});

describe('ensureCachedEngine (fake native builder)', () => {
  const config = { inChannels: 1, outChannels: 2, channels: [4, 8], strides: [2], kernelSize: 3, upKernelSize: 3, numResUnits: 1 };
  const onnx = buildUnetOnnx(seededUnetWeights(5, config), config);
  const options = (dir: string, overrides: Partial<EnsureCachedEngineOptions> = {}): EnsureCachedEngineOptions => ({
    dir,
    onnx,
    onnxSha256: sha256Hex(onnx),
    precision: 'fp32',
    profile: { min: 1, opt: 4, max: 8 },
    spatialShape: [16, 16, 16],
    tensorrtVersion: '10.3.0',
    gpu: { index: 0, ...A100 },
    build: { workspaceBytes: null, optLevel: 3, versionCompatible: false, hardwareCompat: 'none' },
    ...overrides,
  });
  const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-cache-'));

  it('builds on a miss, then hits without building', async () => {
    const dir = tmp();
    const deps = fakeDeps();
    expect((await lookupCachedEngine(dir, options(dir))).status).toBe('miss');
    const first = await ensureCachedEngine(options(dir), deps);
    expect(first.built).toBe(true);
    expect(deps.native.builds).toHaveLength(1);
    expect(deps.native.builds[0].spatialShape).toEqual([16, 16, 16]);
    expect(readdirSync(dir).sort()).toEqual([path.basename(first.planPath), `${path.basename(first.planPath)}.json`, expect.stringMatching(/^timing-[0-9a-f]{16}\.cache$/)].sort());
    const second = await ensureCachedEngine(options(dir), deps);
    expect(second.built).toBe(false);
    expect(deps.native.builds).toHaveLength(1);
    expect(Buffer.from(second.plan).equals(Buffer.from(first.plan))).toBe(true);
    // A different precision is another entry.
    const fp16 = await ensureCachedEngine(options(dir, { precision: 'fp16' }), deps);
    expect(fp16.built).toBe(true);
    expect(fp16.planPath).not.toBe(first.planPath);
  });

  it('shares one build between concurrent callers', async () => {
    const dir = tmp();
    const deps = fakeDeps();
    const [a, b] = await Promise.all([ensureCachedEngine(options(dir), deps), ensureCachedEngine(options(dir), deps)]);
    expect(deps.native.builds).toHaveLength(1);
    expect(a.planPath).toBe(b.planPath);
  });

  it('rebuilds a corrupted plan, a plan without sidecar and a plan from another TensorRT, saying why', async () => {
    const dir = tmp();
    const deps = fakeDeps();
    const { planPath } = await ensureCachedEngine(options(dir), deps);

    writeFileSync(planPath, readFileSync(planPath).subarray(0, 20));
    let lookup = await lookupCachedEngine(dir, options(dir));
    expect(lookup.status).toBe('stale');
    expect(lookup.status === 'stale' && lookup.reasons.join('\n')).toMatch(/plan file: sha256 .* \(plan replaced or corrupted\)\n.*not a TensorRT plan/);
    const rebuilt = await ensureCachedEngine(options(dir), deps);
    expect(rebuilt.built).toBe(true);
    expect(rebuilt.staleReasons?.length).toBeGreaterThan(0);
    expect(deps.native.builds).toHaveLength(2);

    writeFileSync(`${planPath}.json`, 'garbage');
    lookup = await lookupCachedEngine(dir, options(dir));
    expect(lookup.status === 'stale' && lookup.reasons).toEqual([expect.stringMatching(/not valid JSON/)]);

    await ensureCachedEngine(options(dir), deps);
    // Same bytes, but a header from 10.2: the sidecar matches the plan, the header does not.
    const sidecar = JSON.parse(readFileSync(`${planPath}.json`, 'utf8'));
    const old = fakePlan([10, 2, 0, 1]);
    writeFileSync(planPath, old);
    sidecar.plan.sha256 = sha256Hex(old);
    writeFileSync(`${planPath}.json`, JSON.stringify(sidecar));
    lookup = await lookupCachedEngine(dir, options(dir));
    expect(lookup.status === 'stale' && lookup.reasons).toEqual(['plan header: built by TensorRT 10.2.0.1, loaded 10.3.0']);
  });

  it('without building allowed: ERR_ENGINE_INCOMPATIBLE for a stale entry, ERR_FILE_NOT_FOUND for a miss', async () => {
    const dir = tmp();
    const deps = fakeDeps();
    await expect(ensureCachedEngine(options(dir, { allowBuild: false }), deps)).rejects.toMatchObject({ code: 'ERR_FILE_NOT_FOUND' });
    const { planPath } = await ensureCachedEngine(options(dir), deps);
    writeFileSync(planPath, 'not a plan at all, long enough to have a header');
    await expect(ensureCachedEngine(options(dir, { allowBuild: false }), deps)).rejects.toMatchObject({
      code: 'ERR_ENGINE_INCOMPATIBLE',
      details: expect.arrayContaining([expect.stringMatching(/not a TensorRT plan/)]),
    });
    expect(deps.native.builds).toHaveLength(1);
  });

  it('a failed build leaves the cache directory without a plan', async () => {
    const dir = tmp();
    const native = new FakeNative({ build: async () => Promise.reject(new Error('out of tactics')) });
    await expect(ensureCachedEngine(options(dir), fakeDeps(native))).rejects.toMatchObject({ code: 'ERR_BUILD_FAILED' });
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });
});
