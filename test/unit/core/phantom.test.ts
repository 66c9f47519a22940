import { describe, expect, it } from 'vitest';
import { columnNorms, invert4, transformPoint } from '../../../src/volume/affine.js';
import { makePhantom, mulberry32 } from '../../../src/phantom/make-phantom.js';

describe('makePhantom', () => {
  const options = { shape: [64, 60, 12] as [number, number, number], spacingMm: [3, 3, 10] as [number, number, number], seed: 7 };

  it('is deterministic for a seed and differs across seeds', () => {
    const a = makePhantom(options);
    const b = makePhantom(options);
    const c = makePhantom({ ...options, seed: 8 });
    expect(Buffer.from(a.image.data.buffer).equals(Buffer.from(b.image.data.buffer))).toBe(true);
    expect(Buffer.from(a.image.data.buffer).equals(Buffer.from(c.image.data.buffer))).toBe(false);
  });

  it('stores LPS by default: the first two axes point left and posterior', () => {
    const { image } = makePhantom(options);
    expect(image.affine[0]).toBeLessThan(0);
    expect(image.affine[5]).toBeLessThan(0);
    expect(columnNorms(image.affine)).toEqual([3, 3, 10]);
  });

  it('puts a spleen of plausible size on the patient left with soft-tissue HU', () => {
    const { image, label } = makePhantom(options);
    let count = 0;
    let sumX = 0;
    let sumHu = 0;
    const [n0, n1, n2] = label.shape;
    for (let i = 0; i < n0; i++) for (let j = 0; j < n1; j++) for (let k = 0; k < n2; k++) {
      const index = (i * n1 + j) * n2 + k;
      if (!label.data[index]) continue;
      count++;
      sumX += transformPoint(label.affine, [i, j, k])[0];
      sumHu += image.data[index];
    }
    const volumeMl = (count * 3 * 3 * 10) / 1000;
    expect(volumeMl).toBeGreaterThan(80);
    expect(volumeMl).toBeLessThan(800);
    expect(sumX / count).toBeLessThan(-40); // RAS: patient left is -x
    expect(sumHu / count).toBeGreaterThan(25);
    expect(sumHu / count).toBeLessThan(75);
  });

  it('the label is on the image grid', () => {
    const { image, label } = makePhantom(options);
    expect(label.shape).toEqual(image.shape);
    expect(Array.from(invert4(label.affine))).toEqual(Array.from(invert4(image.affine)));
  });
});

describe('mulberry32', () => {
  it('gives uniform numbers in [0, 1)', () => {
    const random = mulberry32(123);
    let sum = 0;
    for (let i = 0; i < 10000; i++) {
      const x = random();
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
    }
    expect(sum / 10000).toBeGreaterThan(0.48);
    expect(sum / 10000).toBeLessThan(0.52);
  });
});
