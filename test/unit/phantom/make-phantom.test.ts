/**
 * The phantom generator: determinism, the grid's affine for every storage orientation (hand
 * computed), the same patient whatever the grid, int16 storage with slope/intercept through the
 * real NIfTI reader, and a spleen that intensity alone does not separate from its neighbours.
 */
import { describe, expect, it } from 'vitest';
import { parseNifti } from '../../../src/nifti/index.js';
import { encodePhantomImage } from '../../../src/phantom/encode-phantom-image.js';
import { makePhantom, type PhantomOptions } from '../../../src/phantom/make-phantom.js';
import { sampleAnatomy } from '../../../src/phantom/phantom-anatomy.js';
import { mulberry32 } from '../../../src/phantom/make-phantom.js';
import { transformPoint } from '../../../src/volume/affine.js';
import type { Shape3, Vec3 } from '../../../src/volume/volume.js';

const SMALL: PhantomOptions = { shape: [72, 64, 30], spacingMm: [3, 3, 5], seed: 11 };

function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Label voxel count and world centroid, by a plain loop over the grid. */
function labelStats(label: Uint8Array, shape: Shape3, affine: Float64Array): { count: number; centroid: Vec3 } {
  let count = 0;
  const sum = [0, 0, 0];
  for (let i = 0; i < shape[0]; i++) for (let j = 0; j < shape[1]; j++) for (let k = 0; k < shape[2]; k++) {
    if (!label[(i * shape[1] + j) * shape[2] + k]) continue;
    const p = transformPoint(affine, [i, j, k]);
    count++;
    for (let a = 0; a < 3; a++) sum[a] += p[a];
  }
  return { count, centroid: [sum[0] / count, sum[1] / count, sum[2] / count] };
}

function column(affine: Float64Array, c: number): number[] {
  return [affine[c], affine[4 + c], affine[8 + c]];
}

describe('makePhantom', () => {
  it('is deterministic for a seed, differs across seeds, and keeps the old call shape working', () => {
    const a = makePhantom(SMALL);
    const b = makePhantom(SMALL);
    const c = makePhantom({ ...SMALL, seed: 12 });
    expect(bytesOf(a.image.data).equals(bytesOf(b.image.data))).toBe(true);
    expect(bytesOf(a.label.data).equals(bytesOf(b.label.data))).toBe(true);
    expect(bytesOf(a.image.data).equals(bytesOf(c.image.data))).toBe(false);
    // The demo's and the bench's call: { shape, spacingMm, orientation, seed, noiseHu } -> { image, label }.
    const old = makePhantom({ shape: [40, 36, 10], spacingMm: [4, 4, 10], orientation: 'RAS', seed: 2, noiseHu: 5 });
    expect(old.image.data).toBeInstanceOf(Float32Array);
    expect(old.label.data).toBeInstanceOf(Uint8Array);
    expect(old.image.shape).toEqual([40, 36, 10]);
  });

  it('stores integer HU in the CT range, air outside the body, a labelled spleen inside', () => {
    const { image, label } = makePhantom(SMALL);
    let nonInteger = 0, outOfRange = 0, labelled = 0, otherLabel = 0;
    for (let n = 0; n < image.data.length; n++) {
      const v = image.data[n];
      if (!Number.isInteger(v)) nonInteger++;
      if (v < -1024 || v > 3071) outOfRange++;
      if (label.data[n] === 1) labelled++;
      else if (label.data[n] !== 0) otherLabel++;
    }
    expect(nonInteger).toBe(0);
    expect(outOfRange).toBe(0);
    expect(otherLabel).toBe(0);
    expect(labelled).toBeGreaterThan(100);
    // On a 50 cm field of view the corner voxel (0, 0, 0) lies outside the body: air.
    const wide = makePhantom({ shape: [50, 50, 10], spacingMm: [10, 10, 10], seed: 11, noiseHu: 0 });
    expect(wide.image.data[0]).toBe(-1000);
  });

  it('builds the affine from the axis code: LPS, RAS and a permutation, hand computed', () => {
    const spacing: Vec3 = [0.7, 0.9, 2.5];
    const shape: Shape3 = [20, 30, 40];
    const options = { shape, spacingMm: spacing, keepSpleenInView: false, centreMm: [10, -20, 30] as Vec3 };
    const lps = makePhantom({ ...options, orientation: 'LPS' }).image.affine;
    expect(column(lps, 0)).toEqual([-0.7, 0, 0]);
    expect(column(lps, 1)).toEqual([0, -0.9, 0]);
    expect(column(lps, 2)).toEqual([0, 0, 2.5]);
    const ras = makePhantom({ ...options, orientation: 'RAS' }).image.affine;
    expect(column(ras, 0)).toEqual([0.7, 0, 0]);
    // 'SPL': i runs superior, j posterior, k toward the patient's left.
    const spl = makePhantom({ ...options, orientation: 'SPL' }).image.affine;
    expect(column(spl, 0)).toEqual([0, 0, 0.7]);
    expect(column(spl, 1)).toEqual([0, -0.9, 0]);
    expect(column(spl, 2)).toEqual([-2.5, 0, 0]);
    // The grid centre ((n - 1) / 2 on each axis) sits at centreMm.
    for (const affine of [lps, ras, spl]) {
      const centre = transformPoint(affine, [9.5, 14.5, 19.5]);
      [10, -20, 30].forEach((v, a) => expect(centre[a]).toBeCloseTo(v, 9));
    }
  });

  it('tilts the grid for an oblique acquisition: a 20 degree gantry tilt, hand computed', () => {
    const { affine } = makePhantom({ shape: [16, 16, 8], spacingMm: [1, 1, 4], obliqueDeg: [20, 0, 0], keepSpleenInView: false }).image;
    const t = (20 * Math.PI) / 180;
    // LPS columns (-1, 0, 0), (0, -1, 0), (0, 0, 4) rotated about x by 20 degrees.
    const expected = [[-1, 0, 0], [0, -Math.cos(t), -Math.sin(t)], [0, -4 * Math.sin(t), 4 * Math.cos(t)]];
    expected.forEach((col, c) => col.forEach((v, r) => expect(affine[r * 4 + c]).toBeCloseTo(v, 12)));
  });

  it('draws the same patient whatever the storage: spleen volume and centroid agree across orientations', () => {
    const seed = 21;
    const grids: PhantomOptions[] = [
      { shape: [110, 100, 60], spacingMm: [2, 2, 3], orientation: 'LPS' },
      { shape: [110, 100, 60], spacingMm: [2, 2, 3], orientation: 'RAS' },
      { shape: [60, 110, 100], spacingMm: [3, 2, 2], orientation: 'IRA' },
      { shape: [110, 100, 60], spacingMm: [2, 2, 3], orientation: 'LPS', obliqueDeg: [15, 0, -8] },
    ];
    const stats = grids.map((g) => {
      const p = makePhantom({ ...g, seed });
      const s = labelStats(p.label.data, p.label.shape, p.label.affine);
      return { volumeMl: (s.count * 12) / 1000, centroid: s.centroid, spleenCentre: p.info.spleenCentreMm };
    });
    for (const s of stats.slice(1)) {
      expect(s.spleenCentre).toEqual(stats[0].spleenCentre);
      expect(Math.abs(s.volumeMl - stats[0].volumeMl) / stats[0].volumeMl).toBeLessThan(0.05);
      // Within a voxel (3 mm) in world space.
      for (let a = 0; a < 3; a++) expect(Math.abs(s.centroid[a] - stats[0].centroid[a])).toBeLessThan(3);
    }
    // Patient left is -x and posterior is -y in RAS world.
    expect(stats[0].centroid[0]).toBeLessThan(-40);
    expect(stats[0].centroid[1]).toBeLessThan(0);
  });

  it('varies the spleen: volumes, positions and HU differ across seeds', () => {
    const volumes: number[] = [];
    const centres: number[] = [];
    const hus = new Set<number>();
    for (let seed = 1; seed <= 8; seed++) {
      const p = makePhantom({ shape: [90, 80, 40], spacingMm: [3.5, 3.5, 7], seed });
      const s = labelStats(p.label.data, p.label.shape, p.label.affine);
      volumes.push((s.count * 3.5 * 3.5 * 7) / 1000);
      centres.push(s.centroid[2]);
      hus.add(p.info.hu.spleen);
    }
    expect(Math.max(...volumes) / Math.min(...volumes)).toBeGreaterThan(1.5);
    expect(Math.max(...centres) - Math.min(...centres)).toBeGreaterThan(10);
    expect(hus.size).toBeGreaterThan(4);
    for (const v of volumes) {
      expect(v).toBeGreaterThan(40);
      expect(v).toBeLessThan(1500);
    }
  });

  it('keeps the spleen in view on a small field of view, and loses it when asked not to', () => {
    const small: PhantomOptions = { shape: [40, 40, 24], spacingMm: [3, 3, 6], seed: 5 };
    const kept = makePhantom(small);
    const [n0, n1, n2] = kept.label.shape;
    let onBorder = 0, count = 0;
    for (let i = 0; i < n0; i++) for (let j = 0; j < n1; j++) for (let k = 0; k < n2; k++) {
      if (!kept.label.data[(i * n1 + j) * n2 + k]) continue;
      count++;
      if (i === 0 || j === 0 || k === 0 || i === n0 - 1 || j === n1 - 1 || k === n2 - 1) onBorder++;
    }
    expect(count).toBeGreaterThan(0);
    expect(onBorder).toBe(0);
    const away = makePhantom({ ...small, keepSpleenInView: false, centreMm: [100, 0, 0] });
    expect(away.label.data.some((v) => v !== 0)).toBe(false);
  });

  it('spleen: false leaves the label empty and changes the image only around the spleen', () => {
    const base = { ...SMALL, keepSpleenInView: false };
    const withSpleen = makePhantom(base);
    const without = makePhantom({ ...base, spleen: false });
    expect(without.label.data.every((v) => v === 0)).toBe(true);
    const [n0, n1, n2] = withSpleen.label.shape;
    // Bounding box of the label, grown by 2 voxels for the fat halo (at most 4 mm, voxels are 3 mm).
    const min = [n0, n1, n2], max = [-1, -1, -1];
    for (let i = 0; i < n0; i++) for (let j = 0; j < n1; j++) for (let k = 0; k < n2; k++) {
      if (!withSpleen.label.data[(i * n1 + j) * n2 + k]) continue;
      [i, j, k].forEach((v, a) => { min[a] = Math.min(min[a], v); max[a] = Math.max(max[a], v); });
    }
    let changedOutside = 0, changedInside = 0;
    for (let i = 0; i < n0; i++) for (let j = 0; j < n1; j++) for (let k = 0; k < n2; k++) {
      const n = (i * n1 + j) * n2 + k;
      if (withSpleen.image.data[n] === without.image.data[n]) continue;
      const near = [i, j, k].every((v, a) => v >= min[a] - 2 && v <= max[a] + 2);
      if (near) changedInside++;
      else changedOutside++;
    }
    expect(changedOutside).toBe(0);
    expect(changedInside).toBeGreaterThan(100);
  });

  it('stores int16 with a slope and intercept that the NIfTI reader undoes exactly', () => {
    for (const storage of [{ sclSlope: 0.5, sclInter: -1024 }, { sclSlope: 1, sclInter: -1024 }]) {
      const phantom = makePhantom({ ...SMALL, storage });
      // Every value is on the storage grid: (HU - inter) / slope is an integer.
      expect(phantom.image.data.every((v) => Number.isInteger((v - storage.sclInter) / storage.sclSlope))).toBe(true);
      const bytes = encodePhantomImage(phantom);
      const { header, volume, rawDatatype } = parseNifti(bytes);
      expect(rawDatatype).toBe('int16');
      expect(header.scl_slope).toBe(storage.sclSlope);
      expect(header.scl_inter).toBe(storage.sclInter);
      // Stored values: (HU + 1024) / slope, all non-negative here.
      const stored = new Int16Array(bytes.buffer, bytes.byteOffset + 352, 1);
      expect(stored[0]).toBe((phantom.image.data[0] + 1024) / storage.sclSlope);
      expect(bytesOf(volume.data).equals(bytesOf(phantom.image.data))).toBe(true);
    }
    const plain = parseNifti(encodePhantomImage(makePhantom(SMALL)));
    expect([plain.header.scl_slope, plain.header.scl_inter]).toEqual([1, 0]);
  });

  it('makes the spleen hard to find by HU alone: its intensity band holds more non-spleen than spleen voxels', () => {
    for (const contrast of ['none', 'portal-venous'] as const) {
      const p = makePhantom({ shape: [100, 90, 40], spacingMm: [3.2, 3.2, 6], seed: 4, contrast, noiseHu: 8 });
      const centre = p.info.hu.spleen;
      let inside = 0, outside = 0;
      for (let n = 0; n < p.image.data.length; n++) {
        if (Math.abs(p.image.data[n] - centre) > 16) continue;
        if (p.label.data[n]) inside++;
        else outside++;
      }
      expect(inside).toBeGreaterThan(0);
      expect(outside).toBeGreaterThan(inside);
    }
  });

  it('draws liver and spleen HU from overlapping ranges, in both contrast phases', () => {
    for (const contrast of ['none', 'portal-venous'] as const) {
      let spleenAboveLiver = 0, liverAboveSpleen = 0;
      for (let seed = 0; seed < 200; seed++) {
        const { hu } = sampleAnatomy(mulberry32(seed), { patientScale: 1, contrast, spleen: true });
        if (hu.spleen > hu.liver) spleenAboveLiver++;
        if (hu.liver > hu.spleen) liverAboveSpleen++;
      }
      expect(spleenAboveLiver).toBeGreaterThan(10);
      expect(liverAboveSpleen).toBeGreaterThan(10);
    }
  });

  it('rejects bad options with the house message shape', () => {
    expect(() => makePhantom({ orientation: 'LPX' })).toThrow(TypeError);
    expect(() => makePhantom({ orientation: 'LLS' })).toThrow(/one of R\/L, A\/P and S\/I/);
    expect(() => makePhantom({ obliqueDeg: [0, 120, 0] })).toThrow(RangeError);
    expect(() => makePhantom({ shape: [0, 10, 10] })).toThrow(/Expected 3 integers in 1..2048 for options.shape/);
    expect(() => makePhantom({ storage: { sclSlope: 0, sclInter: 0 } })).toThrow(RangeError);
    // 3071 HU / 0.01 does not fit int16.
    expect(() => makePhantom({ storage: { sclSlope: 0.01, sclInter: 0 } })).toThrow(/int16/);
    expect(() => makePhantom({ contrast: 'arterial' as 'none' })).toThrow(TypeError);
  });
});
