import { describe, expect, it } from 'vitest';
import { checkPlanHeader, parsePlanHeader, planVersionMismatch } from '../../../src/inference/plan-header.js';
import { fakePlan } from './fake-tensorrt.js';
import { thrownError as catchError } from '../../helpers/rejection.js';

describe('parsePlanHeader', () => {
  it('reads the magic and the four version bytes at offset 24', () => {
    // Hand-built: "ftrt", 20 bytes of anything, then 10.3.0.26.
    const plan = new Uint8Array(40).fill(0xee);
    plan.set([0x66, 0x74, 0x72, 0x74], 0);
    plan.set([10, 3, 0, 26], 24);
    plan.set([0, 0, 0, 0], 4); // serialization version 0: the only layout with the version at 24
    expect(parsePlanHeader(plan)).toEqual({ serializationVersion: 0, tensorrtVersion: '10.3.0.26', major: 10, minor: 3, patch: 0, build: 26 });
  });

  it('does not read bytes 24..27 as a version when the serialization version is not 0 (trtexec)', () => {
    const plan = fakePlan([10, 3, 0, 26]);
    plan.set([2, 0, 0, 0], 4);
    expect(parsePlanHeader(plan)).toEqual({ serializationVersion: 2, tensorrtVersion: null, major: null, minor: null, patch: null, build: null });
    plan.set([0, 0, 0, 1], 4); // little-endian: 1 << 24
    expect(parsePlanHeader(plan).serializationVersion).toBe(16_777_216);
    // Nothing to compare: TensorRT's deserialization decides, so no mismatch is claimed.
    expect(planVersionMismatch(parsePlanHeader(plan), '11.1.0')).toBeNull();
    expect(checkPlanHeader(plan, '10.3.0').tensorrtVersion).toBeNull();
  });

  it('reads a plan that is a view into a larger buffer', () => {
    const inner = fakePlan([11, 1, 0, 4]);
    const outer = new Uint8Array(inner.length + 13);
    outer.set(inner, 13);
    expect(parsePlanHeader(outer.subarray(13)).tensorrtVersion).toBe('11.1.0.4');
  });

  it('says "not a TensorRT plan" for other bytes, naming the magic it found', () => {
    const onnx = new Uint8Array(64);
    onnx.set([0x08, 0x08, 0x3a], 0);
    const error = catchError(() => parsePlanHeader(onnx, 'model.onnx'));
    expect(error.code).toBe('ERR_ENGINE_INCOMPATIBLE');
    expect(error.message).toMatch(/^model\.onnx is not a TensorRT plan: magic 0x003a0808/);
    // Big-endian "ftrt" is not the magic either.
    const swapped = fakePlan();
    swapped.set([0x74, 0x72, 0x74, 0x66], 0);
    expect(catchError(() => parsePlanHeader(swapped)).message).toMatch(/not a TensorRT plan/);
  });

  it('says "not a TensorRT plan" for truncated bytes, even with the right magic', () => {
    for (const length of [0, 4, 27]) {
      const error = catchError(() => parsePlanHeader(fakePlan().subarray(0, length)));
      expect(error.code).toBe('ERR_ENGINE_INCOMPATIBLE');
      expect(error.message).toMatch(new RegExp(`not a TensorRT plan: ${length} bytes`));
    }
    expect(parsePlanHeader(fakePlan().subarray(0, 28)).major).toBe(10);
  });

  it('rejects a non-Uint8Array as a caller mistake', () => {
    expect(() => parsePlanHeader('plan' as never)).toThrow(TypeError);
  });
});

describe('checkPlanHeader / planVersionMismatch', () => {
  it('accepts the same major.minor.patch, whatever the build number', () => {
    expect(checkPlanHeader(fakePlan([10, 3, 0, 26]), '10.3.0').build).toBe(26);
    expect(checkPlanHeader(fakePlan([10, 3, 0, 26]), '10.3.0.99').tensorrtVersion).toBe('10.3.0.26');
  });

  it('names both versions for a plan from another TensorRT', () => {
    const cases: Array<[[number, number, number, number], string]> = [
      [[10, 3, 0, 26], '10.4.0'],
      [[10, 3, 0, 26], '10.3.1'],
      [[10, 8, 0, 43], '11.0.0'],
      [[11, 0, 0, 1], '10.16.0'],
    ];
    for (const [built, loaded] of cases) {
      const error = catchError(() => checkPlanHeader(fakePlan(built), loaded, { source: 'spleen.plan' }));
      expect(error.code).toBe('ERR_ENGINE_INCOMPATIBLE');
      expect(error.message).toBe(`spleen.plan was built by TensorRT ${built.join('.')}, loaded ${loaded}`);
    }
  });

  it('lets version-compatible plans run on later versions of the same major only', () => {
    const header = parsePlanHeader(fakePlan([10, 3, 0, 26]));
    expect(planVersionMismatch(header, '10.3.0', { versionCompatible: true })).toBeNull();
    expect(planVersionMismatch(header, '10.16.1', { versionCompatible: true })).toBeNull();
    expect(planVersionMismatch(header, '10.2.0', { versionCompatible: true })).toMatch(/version-compatible by TensorRT 10\.3\.0\.26.*loaded 10\.2\.0/);
    expect(planVersionMismatch(header, '11.0.0', { versionCompatible: true })).toMatch(/runs on 10\.x/);
  });

  it('rejects a malformed loaded version as a caller mistake', () => {
    expect(() => checkPlanHeader(fakePlan(), 'ten')).toThrow(TypeError);
  });
});
