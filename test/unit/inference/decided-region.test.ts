import { describe, expect, it } from 'vitest';
import { decidedRegionLabels, SURE_MARGIN, undecidedBox } from '../../../src/inference/decided-region.js';
import { argmaxForeground, softmaxChannels } from '../../../src/inference/postprocess.js';
import { invertPreprocessing } from '../../../src/volume/invert-preprocessing.js';
import { orientToRas } from '../../../src/volume/orientation.js';
import { resampleToSpacing } from '../../../src/volume/spacing.js';
import type { Shape3, Vec3, Volume } from '../../../src/volume/volume.js';

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A volume stored with axis permutation `perm`, flips `signs` (bit per axis) and `spacing`. */
function storedVolume(shape: Shape3, perm: number[], signs: number, spacing: Vec3, shear = 0): Volume {
  const affine = new Float64Array(16);
  affine[15] = 1;
  perm.forEach((world, i) => (affine[world * 4 + i] = (signs >> i) & 1 ? -spacing[i] : spacing[i]));
  affine[perm[1] * 4 + 2] += shear;
  affine[3] = 5;
  affine[7] = -8;
  affine[11] = 3;
  return { data: new Float32Array(shape[0] * shape[1] * shape[2]), shape, spacingMm: spacing, affine };
}

/**
 * 2-channel logits on `shape`: surely background (l1 - l0 = -6) except inside `blob` (inclusive
 * index box), where they are random around the decision boundary, with a few NaN.
 */
function logitsWithBlob(shape: Shape3, blob: [[number, number], [number, number], [number, number]], seed: number): Float32Array {
  const [n0, n1, n2] = shape;
  const n = n0 * n1 * n2;
  const next = random(seed);
  const logits = new Float32Array(2 * n);
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1; j++) {
      for (let k = 0; k < n2; k++) {
        const v = (i * n1 + j) * n2 + k;
        const inside = i >= blob[0][0] && i <= blob[0][1] && j >= blob[1][0] && j <= blob[1][1] && k >= blob[2][0] && k <= blob[2][1];
        logits[v] = 3;
        logits[n + v] = inside ? 3 + (next() - 0.5) * 10 : -3;
        if (inside && next() < 0.002) logits[n + v] = Number.NaN;
      }
    }
  }
  return logits;
}

function fullPathLabels(logits: Float32Array, volume: Volume): { labels: Uint8Array; decided: Uint8Array | null } {
  const { volume: ras, orientation } = orientToRas(volume);
  const { resampling } = resampleToSpacing(ras, [1.5, 1.5, 2.0]);
  const full = argmaxForeground(invertPreprocessing(softmaxChannels(logits, 2), 2, resampling, orientation), 2);
  return { labels: full, decided: decidedRegionLabels(logits, resampling, orientation) };
}

function gridShapeOf(volume: Volume): Shape3 {
  const { volume: ras } = orientToRas(volume);
  return resampleToSpacing(ras, [1.5, 1.5, 2.0]).volume.shape;
}

describe('undecidedBox', () => {
  it('bounds every voxel that is not surely background, NaN included', () => {
    const shape: Shape3 = [6, 5, 7];
    const n = 6 * 5 * 7;
    const logits = new Float32Array(2 * n);
    for (let v = 0; v < n; v++) logits[n + v] = -SURE_MARGIN - 0.5;
    expect(undecidedBox(logits, shape)).toBeNull();
    logits[n + (1 * 5 + 3) * 7 + 6] = -SURE_MARGIN + 0.5; // (1, 3, 6)
    logits[n + (4 * 5 + 0) * 7 + 2] = Number.NaN; // (4, 0, 2)
    expect(undecidedBox(logits, shape)).toEqual([[1, 4], [0, 3], [2, 6]]);
  });
});

describe('decidedRegionLabels', () => {
  const spacings: Vec3[] = [
    [0.8, 0.8, 5.0],
    [0.7, 2.9, 1.3],
  ];
  const orientations: { perm: number[]; signs: number }[] = [
    { perm: [0, 1, 2], signs: 0 },
    { perm: [0, 1, 2], signs: 3 },
    { perm: [1, 2, 0], signs: 5 },
    { perm: [2, 1, 0], signs: 6 },
  ];

  it('gives the same labels as the full softmax -> inverse -> argmax path', () => {
    let seed = 1;
    for (const spacing of spacings) {
      for (const { perm, signs } of orientations) {
        const volume = storedVolume([37, 30, 23], perm, signs, spacing);
        const grid = gridShapeOf(volume);
        // One blob inside, one at each corner of the grid (the border clamp).
        const blobs: [[number, number], [number, number], [number, number]][] = [
          [[0, 2], [0, 2], [0, 1]],
          [[Math.floor(grid[0] / 3), Math.floor(grid[0] / 2)], [2, Math.floor(grid[1] / 2)], [1, Math.max(1, grid[2] - 4)]],
          [[grid[0] - 3, grid[0] - 1], [grid[1] - 4, grid[1] - 1], [grid[2] - 2, grid[2] - 1]],
        ];
        for (const blob of blobs) {
          const logits = logitsWithBlob(grid, blob, seed++);
          const { labels, decided } = fullPathLabels(logits, volume);
          const where = `spacing ${spacing} perm ${perm} signs ${signs} blob ${JSON.stringify(blob)}`;
          expect(decided, where).not.toBeNull();
          expect(labels.some((x) => x === 1), where).toBe(true);
          expect(Buffer.from(decided as Uint8Array).equals(Buffer.from(labels)), where).toBe(true);
        }
      }
    }
  });

  it('returns an all-background mask at once when every voxel is surely background', () => {
    const volume = storedVolume([20, 18, 9], [0, 1, 2], 0, [0.8, 0.8, 5.0]);
    const grid = gridShapeOf(volume);
    const logits = logitsWithBlob(grid, [[1, 0], [1, 0], [1, 0]], 3);
    const { labels, decided } = fullPathLabels(logits, volume);
    expect(labels.every((x) => x === 0)).toBe(true);
    expect(decided).toEqual(labels);
  });

  it('declines (null) where the spacing inverse is skipped or does not separate into the axes', () => {
    const atTarget = storedVolume([12, 11, 10], [0, 1, 2], 0, [1.5, 1.5, 2.0]);
    const sheared = storedVolume([12, 11, 10], [0, 1, 2], 0, [0.8, 0.9, 3.0], 0.4);
    for (const volume of [atTarget, sheared]) {
      const grid = gridShapeOf(volume);
      const logits = logitsWithBlob(grid, [[0, 3], [0, 3], [0, 3]], 4);
      expect(fullPathLabels(logits, volume).decided).toBeNull();
    }
  });
});
