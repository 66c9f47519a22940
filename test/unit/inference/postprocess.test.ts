import { describe, expect, it } from 'vitest';
import { argmaxForeground, softmaxChannels } from '../../../src/inference/postprocess.js';
import { fixtureIndex, readF32, readU8 } from './sliding-window-fixtures.js';

describe('softmaxChannels', () => {
  it('matches torch.softmax(x, dim=0) to within 1e-6', () => {
    for (const c of fixtureIndex.softmax) {
      const logits = readF32(c.logitsFile);
      const expected = readF32(c.probsFile);
      const p = softmaxChannels(logits, c.channels);
      expect(p.length).toBe(expected.length);
      let worst = 0;
      let exact = 0;
      expected.forEach((x, v) => {
        worst = Math.max(worst, Math.abs(x - p[v]));
        if (x === p[v]) exact++;
      });
      expect(worst).toBeLessThanOrEqual(1e-6);
      // differences are only torch's 1-ulp SIMD exp, never systematic
      expect(exact / expected.length).toBeGreaterThan(0.8);
    }
  });

  it('gives hand values', () => {
    // float32 results: 6 decimals. [C][voxels]: voxel 0 = (0, ln 3), voxel 1 = (2, 2), voxel 2 = (-50, 150), voxel 3 = (1, 0)
    const p = softmaxChannels(Float32Array.from([0, 2, -50, 1, Math.log(3), 2, 150, 0]), 2);
    expect(p[0]).toBeCloseTo(0.25, 6);
    expect(p[4]).toBeCloseTo(0.75, 6);
    expect([p[1], p[5]]).toEqual([0.5, 0.5]);
    expect([p[2], p[6]]).toEqual([0, 1]); // exp(-200) underflows in float32
    expect(p[3]).toBeCloseTo(Math.E / (Math.E + 1), 6);
    const q = softmaxChannels(Float32Array.from([1, 2, 3]), 3);
    const z = Math.exp(1) + Math.exp(2) + Math.exp(3);
    [1, 2, 3].forEach((x, c) => expect(q[c]).toBeCloseTo(Math.exp(x) / z, 6));
    expect(softmaxChannels(Float32Array.from([5, 7]), 1)).toEqual(Float32Array.from([1, 1]));
  });

  it('propagates NaN and rejects bad arguments', () => {
    const p = softmaxChannels(Float32Array.from([Number.NaN, 1, 1, 1]), 2);
    expect(Number.isNaN(p[0]) && Number.isNaN(p[2])).toBe(true);
    expect(p[1]).toBe(0.5);
    expect(() => softmaxChannels(Float32Array.from([1, 2, 3]), 2)).toThrow(RangeError);
    expect(() => softmaxChannels(new Float64Array(4) as unknown as Float32Array, 2)).toThrow(TypeError);
    expect(() => softmaxChannels(new Float32Array(4), 0)).toThrow(/channels/);
  });
});

describe('argmaxForeground', () => {
  it('matches torch.argmax(x, dim=0), ties and NaNs included', () => {
    for (const c of fixtureIndex.argmax) {
      const labels = argmaxForeground(readF32(c.probsFile), c.channels);
      expect(labels).toEqual(readU8(c.labelsFile));
    }
  });

  it('sends ties to background: foreground iff p1 > p0 strictly', () => {
    // voxels: (0.5, 0.5), (0.4, 0.6), (0.6, 0.4), (0, 0), (-0, 0)
    expect(argmaxForeground(Float32Array.from([0.5, 0.4, 0.6, 0, -0, 0.5, 0.6, 0.4, 0, 0]), 2)).toEqual(
      Uint8Array.from([0, 1, 0, 0, 0]),
    );
    // 3 channels: first maximum wins
    expect(argmaxForeground(Float32Array.from([0.2, 0.3, 0.4, 0.3, 0.4, 0.3]), 3)).toEqual(Uint8Array.from([1, 0]));
  });

  it('rejects bad arguments', () => {
    expect(() => argmaxForeground(new Float32Array(5), 2)).toThrow(RangeError);
    expect(() => argmaxForeground([0, 1] as unknown as Float32Array, 2)).toThrow(TypeError);
  });
});
