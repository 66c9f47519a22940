import { describe, expect, it } from 'vitest';
import { columnNorms, fromRows, identity4, invert4, multiply4, transformPoint } from '../../../src/volume/affine.js';

describe('affine maths', () => {
  const oblique = fromRows([
    [0.8 * Math.cos(0.3), -0.9 * Math.sin(0.3), 0, 12.5],
    [0.8 * Math.sin(0.3), 0.9 * Math.cos(0.3), 0, -40],
    [0, 0, -5, 100],
  ]);

  it('inverts: A * inv(A) is the identity', () => {
    const product = multiply4(oblique, invert4(oblique));
    const expected = identity4();
    product.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 12));
  });

  it('rejects a singular matrix', () => {
    expect(() => invert4(fromRows([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]))).toThrow(RangeError);
  });

  it('column norms are the voxel sizes', () => {
    const [a, b, c] = columnNorms(oblique);
    expect(a).toBeCloseTo(0.8, 12);
    expect(b).toBeCloseTo(0.9, 12);
    expect(c).toBeCloseTo(5, 12);
  });

  it('transforms a point with the translation', () => {
    expect(transformPoint(oblique, [0, 0, 2])).toEqual([12.5, -40, 90]);
  });
});
