import { describe, expect, it } from 'vitest';
import { seededUnetWeights } from '../../../src/model/seeded-weights.js';
import { unetStateDictSpec } from '../../../src/model/unet-architecture.js';
import { parityCases, stateDictFixtures, toUnetConfig } from './unet-fixtures.js';

describe('seededUnetWeights', () => {
  const configs = stateDictFixtures();

  for (const c of parityCases().filter((p) => p.weightChecksums)) {
    it(`reproduces the Python port bit for bit (${c.case}, seed ${c.seed})`, () => {
      const weights = seededUnetWeights(c.seed, toUnetConfig(configs[c.config].config));
      const checksums = Object.entries(c.weightChecksums ?? {});
      expect(checksums.length).toBeGreaterThan(10);
      for (const [name, expected] of checksums) {
        const values = weights.get(name);
        expect(values, name).toBeDefined();
        const v = values ?? new Float32Array(0);
        const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
        let bitsSum = 0;
        for (const b of bits) bitsSum += b; // exact: < 2^53 for these sizes
        expect(bitsSum, name).toBe(expected.bitsSum);
        expect([v[0], v[v.length >> 1], v[v.length - 1]], name).toEqual([expected.first, expected.middle, expected.last]);
      }
    });
  }

  it('fills every state_dict key with the right size', () => {
    const weights = seededUnetWeights(1);
    const spec = unetStateDictSpec();
    expect([...weights.keys()]).toEqual(spec.map((e) => e.name));
    for (const e of spec) expect(weights.get(e.name)?.length, e.name).toBe(e.shape.reduce((a, b) => a * b, 1));
  });

  it('is deterministic and depends on the seed', () => {
    const a = seededUnetWeights(42).get('model.0.conv.unit1.conv.weight');
    const b = seededUnetWeights(42).get('model.0.conv.unit1.conv.weight');
    const c = seededUnetWeights(43).get('model.0.conv.unit1.conv.weight');
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('keeps BatchNorm statistics and slopes in their documented ranges', () => {
    const w = seededUnetWeights(5);
    const inRange = (name: string, low: number, high: number) => {
      const v = w.get(name) ?? new Float32Array(0);
      expect(v.length).toBeGreaterThan(0);
      expect(Math.min(...v), name).toBeGreaterThanOrEqual(low);
      expect(Math.max(...v), name).toBeLessThanOrEqual(high);
    };
    inRange('model.1.submodule.0.conv.unit0.adn.N.running_var', 0.5, 1.5);
    inRange('model.1.submodule.0.conv.unit0.adn.N.weight', 0.8, 1.2);
    inRange('model.1.submodule.0.conv.unit0.adn.A.weight', 0.15, 0.35);
    // 3x3x3 conv from 16 channels: bound sqrt(3 / (16 * 27)).
    const bound = Math.sqrt(3 / (16 * 27));
    inRange('model.1.submodule.0.conv.unit0.conv.weight', -bound, bound);
    expect(w.get('model.0.conv.unit0.adn.N.num_batches_tracked')).toEqual(new Float32Array([0]));
  });

  it('rejects non-integer seeds', () => {
    expect(() => seededUnetWeights(1.5)).toThrow(RangeError);
    expect(() => seededUnetWeights('1' as unknown as number)).toThrow(TypeError);
  });
});
