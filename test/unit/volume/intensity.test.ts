import { describe, expect, it } from 'vitest';
import { applyIntensityWindow } from '../../../src/volume/intensity.js';

describe('applyIntensityWindow', () => {
  it('maps the bundle window -57..164 HU onto 0..1 (hand-computed)', () => {
    const out = applyIntensityWindow(Float32Array.of(-57, 164, 53.5, -1000, 3000, -57.5, 164.5));
    expect(Array.from(out)).toEqual([0, 1, 0.5, 0, 1, 0, 1]);
  });

  it('divides by 221 in float32 rather than multiplying by its reciprocal', () => {
    // -54 HU: float32(3) / float32(221) is 0x3c5e6841 (numpy and torch agree); 3 * float32(1/221)
    // is one ulp higher, 0x3c5e6842.
    const [v] = applyIntensityWindow(Float32Array.of(-54));
    const bits = new Uint32Array(Float32Array.of(v).buffer)[0];
    expect(bits.toString(16)).toBe('3c5e6841');
  });

  it('keeps NaN and leaves values unclipped when clip is false', () => {
    const out = applyIntensityWindow(Float32Array.of(Number.NaN, 385), -57, 164, 0, 1, false);
    expect(out[0]).toBeNaN();
    expect(out[1]).toBe(2);
  });

  it('honours other windows and output ranges', () => {
    // [0, 100] -> [-1, 1]: 50 -> 0, 75 -> 0.5, 200 -> clipped to 1.
    expect(Array.from(applyIntensityWindow(Float32Array.of(50, 75, 200), 0, 100, -1, 1))).toEqual([0, 0.5, 1]);
  });

  it('returns a new array and leaves the input alone', () => {
    const input = Float32Array.of(10, 20);
    const out = applyIntensityWindow(input);
    expect(out).not.toBe(input);
    expect(Array.from(input)).toEqual([10, 20]);
  });

  it('rejects a non-Float32Array input, and an out array of another length', () => {
    expect(() => applyIntensityWindow([1, 2] as unknown as Float32Array)).toThrow(TypeError);
    expect(() => applyIntensityWindow(Float32Array.of(1, 2), -57, 164, 0, 1, true, new Float32Array(1))).toThrow(TypeError);
  });

  it('writes into the given out array, which may be the input itself', () => {
    const input = Float32Array.of(-57, 53.5, 164);
    const expected = applyIntensityWindow(input);
    const out = new Float32Array(3);
    expect(applyIntensityWindow(input, -57, 164, 0, 1, true, out)).toBe(out);
    expect(Array.from(out)).toEqual(Array.from(expected));
    expect(applyIntensityWindow(input, -57, 164, 0, 1, true, input)).toBe(input);
    expect(Array.from(input)).toEqual(Array.from(expected));
  });
});
