import { describe, expect, it } from 'vitest';
import { combineCorners, decidedRegionLabels, decideVoxels, Decided, SURE_MARGIN } from '../../../src/inference/decided-region.js';
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
 * index box), where they are random around the decision boundary.
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

describe('decideVoxels / combineCorners', () => {
  it('decides only clear, finite differences, and a corner cube only when all 8 voxels agree', () => {
    const shape: Shape3 = [3, 3, 3];
    const n = 27;
    const logits = new Float32Array(2 * n);
    for (let v = 0; v < n; v++) logits[n + v] = -1;
    logits[n + 13] = 1; // (1, 1, 1) foreground
    logits[n + 0] = -SURE_MARGIN / 2; // (0, 0, 0) a near-tie
    const { state, nonFinite } = decideVoxels(logits, n);
    expect(nonFinite).toBe(false);
    expect([state[0], state[13], state[5]]).toEqual([Decided.Undecided, Decided.Foreground, Decided.Background]);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const copy = Float32Array.from(logits);
      copy[4] = bad;
      expect(decideVoxels(copy, n).nonFinite).toBe(true);
    }
    const { undecided, rowIsBackground } = combineCorners(state, shape);
    // Cube (0, 1, 1) spans {0,1} x {1,2} x {1,2}: background and (1, 1, 1) -> undecided.
    expect(state[(0 * 3 + 1) * 3 + 1]).toBe(Decided.Undecided);
    // Cube (1, 0, 2) spans {1,2} x {0,1} x {2} (clamped): all background.
    expect(state[(1 * 3 + 0) * 3 + 2]).toBe(Decided.Background);
    expect(undecided).toBe(Array.from(state).filter((s) => s === Decided.Undecided).length);
    // Row (2, 0) reads only background; row (0, 0) holds the near-tie.
    expect(rowIsBackground[2 * 3 + 0]).toBe(1);
    expect(rowIsBackground[0]).toBe(0);
  });
});

/** combineCorners by definition: each cube's 8 voxels (clamped), one at a time. */
function naiveCorners(state: Uint8Array, [n0, n1, n2]: Shape3): Uint8Array {
  const out = new Uint8Array(state.length);
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1; j++) {
      for (let k = 0; k < n2; k++) {
        let s = 0;
        for (const a of [i, Math.min(i + 1, n0 - 1)]) for (const b of [j, Math.min(j + 1, n1 - 1)]) for (const c of [k, Math.min(k + 1, n2 - 1)]) s |= state[(a * n1 + b) * n2 + c];
        out[(i * n1 + j) * n2 + k] = s;
      }
    }
  }
  return out;
}

describe('combineCorners', () => {
  it.each([
    [[5, 4, 8]],
    [[3, 6, 12]],
    [[4, 3, 7]],
    [[2, 2, 4]],
  ] as [Shape3][])('matches the 8-voxel definition on %j (whole-word rows and not)', (shape) => {
    const n = shape[0] * shape[1] * shape[2];
    const next = random(n);
    // Mostly background, some foreground, a few undecided.
    const state = Uint8Array.from({ length: n }, () => {
      const r = next();
      return r < 0.8 ? Decided.Background : r < 0.95 ? Decided.Foreground : Decided.Undecided;
    });
    const expected = naiveCorners(state, shape);
    const { undecided, rowIsBackground } = combineCorners(state, shape);
    expect(Array.from(state)).toEqual(Array.from(expected));
    expect(undecided).toBe(expected.filter((s) => s === Decided.Undecided).length);
    for (let row = 0; row < shape[0] * shape[1]; row++) {
      const cubes = expected.subarray(row * shape[2], (row + 1) * shape[2]);
      expect(rowIsBackground[row]).toBe(cubes.every((s) => s === Decided.Background) ? 1 : 0);
    }
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

  it('gives the same labels where large regions are surely spleen (decided foreground)', () => {
    const volume = storedVolume([41, 37, 19], [0, 1, 2], 3, [0.8, 0.8, 5.0]);
    const grid = gridShapeOf(volume);
    const n = grid[0] * grid[1] * grid[2];
    const logits = logitsWithBlob(grid, [[4, 9], [4, 9], [2, 7]], 5);
    // A surely-spleen block next to the noisy one.
    for (let i = 10; i < 16; i++) for (let j = 3; j < 12; j++) for (let k = 1; k < 9; k++) logits[n + (i * grid[1] + j) * grid[2] + k] = 9;
    const { labels, decided } = fullPathLabels(logits, volume);
    expect(decided).not.toBeNull();
    expect(labels.filter((x) => x === 1).length).toBeGreaterThan(100);
    expect(Buffer.from(decided as Uint8Array).equals(Buffer.from(labels))).toBe(true);
  });

  it('declines (null) when a logit is NaN or infinite', () => {
    const volume = storedVolume([20, 18, 9], [0, 1, 2], 0, [0.8, 0.8, 5.0]);
    const grid = gridShapeOf(volume);
    const logits = logitsWithBlob(grid, [[2, 4], [2, 4], [1, 2]], 7);
    logits[100] = Number.NaN;
    expect(fullPathLabels(logits, volume).decided).toBeNull();
  });

  it('declines (null) when most of the grid is undecided: the full path is faster then', () => {
    const volume = storedVolume([20, 18, 9], [0, 1, 2], 0, [0.8, 0.8, 5.0]);
    const grid = gridShapeOf(volume);
    const logits = logitsWithBlob(grid, [[0, grid[0] - 1], [0, grid[1] - 1], [0, grid[2] - 1]], 6);
    expect(fullPathLabels(logits, volume).decided).toBeNull();
  });

  it('declines (null) where the spacing inverse is skipped', () => {
    const atTarget = storedVolume([12, 11, 10], [0, 1, 2], 0, [1.5, 1.5, 2.0]);
    const grid = gridShapeOf(atTarget);
    const logits = logitsWithBlob(grid, [[0, 3], [0, 3], [0, 3]], 4);
    expect(fullPathLabels(logits, atTarget).decided).toBeNull();
  });

  it('gives the same labels where the inverse does not separate into the axes (oblique, sheared)', () => {
    let seed = 40;
    const volumes = [
      storedVolume([31, 27, 17], [0, 1, 2], 0, [0.8, 0.9, 3.0], 0.4),
      storedVolume([29, 33, 15], [1, 2, 0], 5, [0.7, 2.6, 1.1], -0.9),
      storedVolume([26, 24, 21], [2, 1, 0], 6, [1.2, 0.8, 2.5], 1.7),
    ];
    for (const volume of volumes) {
      const grid = gridShapeOf(volume);
      const blobs: [[number, number], [number, number], [number, number]][] = [
        [[0, 2], [0, 2], [0, 1]],
        [[Math.floor(grid[0] / 3), Math.floor(grid[0] / 2)], [2, Math.floor(grid[1] / 2)], [1, Math.max(1, grid[2] - 4)]],
        [[grid[0] - 3, grid[0] - 1], [grid[1] - 4, grid[1] - 1], [grid[2] - 2, grid[2] - 1]],
      ];
      let foreground = 0;
      for (const blob of blobs) {
        const logits = logitsWithBlob(grid, blob, seed++);
        const { labels, decided } = fullPathLabels(logits, volume);
        const where = `shape ${volume.shape} blob ${JSON.stringify(blob)}`;
        expect(decided, where).not.toBeNull();
        foreground += labels.filter((x) => x === 1).length;
        expect(Buffer.from(decided as Uint8Array).equals(Buffer.from(labels)), where).toBe(true);
      }
      // (A corner blob of the rotated grid can fall outside the stored volume.)
      expect(foreground, `shape ${volume.shape}`).toBeGreaterThan(0);
    }
  });
});

describe('decidedRegionLabels on the trained default model', () => {
  it('is taken for a phantom and gives the mask the full path gives', async () => {
    const { makePhantom } = await import('../../../src/phantom/make-phantom.js');
    const { Segmenter } = await import('../../../src/segmenter.js');
    const phantom = makePhantom({ seed: 3, shape: [192, 192, 36], spacingMm: [0.8, 0.8, 5.0] });
    const segmenter = await Segmenter.create({ backend: 'onnxruntime' });
    try {
      const full = await segmenter.segment(phantom.image, { keepStages: true });
      const fast = await segmenter.segment(phantom.image);
      const { volume: ras, orientation } = orientToRas(phantom.image);
      const { resampling } = resampleToSpacing(ras, [1.5, 1.5, 2.0]);
      const decided = decidedRegionLabels(full.stages!.logits.data, resampling, orientation);
      expect(decided).not.toBeNull();
      expect(full.summary.voxelCount).toBeGreaterThan(1000);
      expect(Buffer.from(fast.mask.data).equals(Buffer.from(full.mask.data))).toBe(true);
      expect(Buffer.from(decided as Uint8Array).equals(Buffer.from(full.mask.data))).toBe(true);
    } finally {
      await segmenter.close();
    }
  });
});
