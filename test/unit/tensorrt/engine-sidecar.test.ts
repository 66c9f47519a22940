import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SpleenTrtError } from '../../../src/errors.js';
import { checkSidecar, parseSidecar, readSidecar, serializeSidecar, sidecarPathFor, type EngineSidecar } from '../../../src/inference/engine-sidecar.js';
import { sha256Hex } from '../../../src/model/load-model.js';
import { A100, fakePlan, H100 } from './fake-tensorrt.js';

const plan = fakePlan([10, 3, 0, 26]);
const onnxSha = 'a'.repeat(64);

function sidecar(overrides: Partial<EngineSidecar> = {}): EngineSidecar {
  return {
    format: 'spleen-trt-engine',
    formatVersion: 1,
    plan: { sha256: sha256Hex(plan), bytes: plan.length, tensorrtVersion: '10.3.0.26' },
    onnx: { sha256: onnxSha, builtSha256: 'b'.repeat(64), inputName: 'input_0', outputName: 'output_0', dynamicBatchRewritten: false, fp16Converted: false },
    tensorrtVersion: '10.3.0',
    gpu: { index: 0, ...A100 },
    cuda: { driverVersion: '12.4', toolkit: '12.4.131' },
    precision: 'fp16',
    profile: { min: 1, opt: 4, max: 8 },
    spatialShape: [96, 96, 96],
    build: { workspaceBytes: null, optLevel: 3, versionCompatible: false, hardwareCompat: 'none' },
    packageVersion: '0.1.0',
    createdAt: '2026-06-01T00:00:00.000Z',
    ...overrides,
  };
}

const here = { tensorrtVersion: '10.3.0', gpu: A100 };

describe('checkSidecar', () => {
  it('finds nothing wrong on the machine and with the inputs that built the plan', () => {
    expect(checkSidecar(sidecar(), { ...here, onnxSha256: onnxSha, precision: 'fp16', profile: { min: 1, opt: 4, max: 8 }, spatialShape: [96, 96, 96], plan })).toEqual([]);
    // A newer driver is no mismatch; neither is the build number of the same TensorRT release.
    expect(checkSidecar(sidecar({ cuda: { driverVersion: '11.8', toolkit: null } }), { ...here, tensorrtVersion: '10.3.0.99' })).toEqual([]);
  });

  it('lists every mismatch at once', () => {
    const reasons = checkSidecar(sidecar(), {
      tensorrtVersion: '10.4.0',
      gpu: H100,
      onnxSha256: 'c'.repeat(64),
      precision: 'fp32',
      profile: { min: 1, opt: 8, max: 16 },
      spatialShape: [128, 128, 64],
      plan: fakePlan([10, 3, 0, 26], 'another engine'),
    });
    expect(reasons).toEqual([
      'TensorRT: built by 10.3.0, loaded 10.4.0',
      'GPU compute capability: built for 8.0, this GPU has 9.0',
      'GPU: built on NVIDIA A100-SXM4-80GB, this GPU is NVIDIA H100 80GB HBM3',
      `ONNX: built from sha256 ${onnxSha}, the model has ${'c'.repeat(64)}`,
      'precision: built fp16, requested fp32',
      'batch profile: built 1/4/8, requested 1/8/16',
      'window shape: built 96x96x96, requested 128x128x64',
      expect.stringMatching(/^plan file: sha256 [0-9a-f]{64}, the sidecar describes [0-9a-f]{64} \(plan replaced or corrupted\)$/),
    ]);
  });

  it('checks only what it is given', () => {
    expect(checkSidecar(sidecar(), { ...here, plan: { sha256: sha256Hex(plan) } })).toEqual([]);
    expect(checkSidecar(sidecar(), { ...here, plan: { sha256: '0'.repeat(64) } })).toHaveLength(1);
  });

  it('applies version compatibility: same major, built at or below the loaded version', () => {
    const vc = sidecar({ build: { ...sidecar().build, versionCompatible: true } });
    expect(checkSidecar(vc, { ...here, tensorrtVersion: '10.9.1' })).toEqual([]);
    expect(checkSidecar(vc, { ...here, tensorrtVersion: '10.2.0' })).toEqual([expect.stringMatching(/^TensorRT: built version-compatible by 10\.3\.0.*loaded 10\.2\.0$/)]);
    expect(checkSidecar(vc, { ...here, tensorrtVersion: '11.0.0' })).toHaveLength(1);
  });

  it("applies hardware compatibility: 'ampere+' runs on any GPU of compute capability 8.0 or later", () => {
    const hc = sidecar({ build: { ...sidecar().build, hardwareCompat: 'ampere+' } });
    expect(checkSidecar(hc, { ...here, gpu: H100 })).toEqual([]);
    expect(checkSidecar(hc, { ...here, gpu: { name: 'NVIDIA RTX A6000', computeCapability: '8.6' } })).toEqual([]);
    expect(checkSidecar(hc, { ...here, gpu: { name: 'Tesla V100-SXM2-16GB', computeCapability: '7.0' } })).toEqual([
      'GPU: built for Ampere or later (compute capability >= 8.0), this GPU is Tesla V100-SXM2-16GB (compute 7.0)',
    ]);
  });
});

describe('parseSidecar / readSidecar', () => {
  it('round-trips through its JSON', () => {
    const s = sidecar();
    expect(parseSidecar(JSON.parse(serializeSidecar(s)))).toEqual(s);
    expect(serializeSidecar(s).endsWith('}\n')).toBe(true);
  });

  it.each<[string, (j: Record<string, any>) => void, RegExp]>([
    ['another format', (j) => (j.format = 'something'), /format is "something"/],
    ['a newer format version', (j) => (j.formatVersion = 2), /formatVersion 2 is not 1/],
    ['a bad sha256', (j) => (j.plan.sha256 = 'xyz'), /plan\.sha256 is not a sha256/],
    ['an unknown precision', (j) => (j.precision = 'int8'), /precision "int8"/],
    ['an unordered profile', (j) => (j.profile = { min: 4, opt: 1, max: 8 }), /profile 4\/1\/8/],
    ['a missing GPU name', (j) => delete j.gpu.name, /gpu\.name is not a string/],
    ['a bad TensorRT version', (j) => (j.tensorrtVersion = 'ten'), /tensorrtVersion "ten"/],
    ['a bad spatial shape', (j) => (j.spatialShape = [96, 96]), /spatialShape/],
    ['a bad hardware level', (j) => (j.build.hardwareCompat = 'hopper+'), /hardwareCompat/],
  ])('rejects %s with ERR_ENGINE_INCOMPATIBLE naming the field', (_name, mutate, pattern) => {
    const json = JSON.parse(serializeSidecar(sidecar()));
    mutate(json);
    let error: unknown;
    try {
      parseSidecar(json, 'x.plan.json');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SpleenTrtError);
    expect((error as SpleenTrtError).code).toBe('ERR_ENGINE_INCOMPATIBLE');
    expect((error as Error).message).toMatch(/^Engine sidecar x\.plan\.json is invalid: /);
    expect((error as Error).message).toMatch(pattern);
  });

  it('reads <plan>.json: null when absent, ERR_ENGINE_INCOMPATIBLE when not JSON', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-sidecar-'));
    const planPath = path.join(dir, 'a.plan');
    expect(sidecarPathFor(planPath)).toBe(`${planPath}.json`);
    expect(await readSidecar(planPath)).toBeNull();
    writeFileSync(`${planPath}.json`, serializeSidecar(sidecar()));
    expect((await readSidecar(planPath))?.gpu.name).toBe(A100.name);
    writeFileSync(`${planPath}.json`, '{"format": "spleen-trt-engine",');
    await expect(readSidecar(planPath)).rejects.toMatchObject({ code: 'ERR_ENGINE_INCOMPATIBLE', message: expect.stringMatching(/not valid JSON/) });
  });
});
