// The addon's CPU kernels against their TS twins: every caller is run twice on the same input,
// once with the kernels and once with setVolumeKernelsEnabled(false), and the results must be the
// same bits. The MONAI fixture tests (test/unit) check whichever path is active against MONAI.
import { describe, expect, it } from 'vitest';
import { combineCorners, decidedRegionLabels, decideVoxels, SURE_MARGIN } from '../../src/inference/decided-region.js';
import { slidingWindowInference, type SlidingWindowOptions } from '../../src/inference/sliding-window.js';
import { setVolumeKernelsEnabled, volumeKernels, volumeKernelsStatus } from '../../src/native/volume-kernels.js';
import { getRuntimeInfo } from '../../src/runtime-info.js';
import { NIFTI_DATATYPES } from '../../src/nifti/nifti-header.js';
import { decodeVoxels, decodeVoxelsAsync, encodeVoxelsInto, WRITE_DATATYPE_BYTES, type NiftiWriteDatatype } from '../../src/nifti/nifti-voxels.js';
import { mulberry32 } from '../../src/phantom/make-phantom.js';
import { applyIntensityWindow, applyIntensityWindowAsync } from '../../src/volume/intensity.js';
import { summarizeMask } from '../../src/volume/mask-summary.js';
import { invertOrientation, orientToRas } from '../../src/volume/orientation.js';
import { resampleToSpacing } from '../../src/volume/spacing.js';
import { axisTable, resampleAffine, resampleSeparable, resampleSeparableAsync, type AxisTable } from '../../src/volume/trilinear.js';
import type { Shape3 } from '../../src/volume/volume.js';
import { fakeBackend } from '../unit/inference/sliding-window-fixtures.js';
import { bothWays, bytesOf, randomFloats, useNativeKernels } from './kernel-test-helpers.js';

useNativeKernels();

/**
 * Index of the first element that differs, or -1. Like Object.is (so -0 and 0 differ), except that
 * all NaNs are equal: a signalling NaN read from a file may come out quieted on one path and not
 * the other (V8 may copy float32 to float32 without converting); it is NaN either way.
 */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i]) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  }
  return -1;
}

describe('volumeKernelsStatus', () => {
  it('says which loops run, in getRuntimeInfo too', async () => {
    expect(volumeKernelsStatus()).toEqual({ native: true, reason: "the native addon's C++ kernels" });
    expect((await getRuntimeInfo()).cpuKernels.native).toBe(true);
    setVolumeKernelsEnabled(false);
    expect(volumeKernelsStatus()).toMatchObject({ native: false, reason: expect.stringMatching(/^TypeScript loops \((switched off|SPLEEN_TRT_JS_KERNELS=1)\)$/) });
  });
});

describe('native sliding-window kernels (gather, stitch, normalise)', () => {
  const cases: { name: string; shape: Shape3; options: SlidingWindowOptions; channels: number }[] = [
    { name: 'constant, overlap 0.5', shape: [37, 50, 29], options: { roiSize: [16, 16, 16], overlap: 0.5, swBatchSize: 4 }, channels: 2 },
    { name: 'constant, overlap 0.6, batch 3', shape: [21, 18, 40], options: { roiSize: [12, 10, 16], overlap: 0.6, swBatchSize: 3 }, channels: 3 },
    { name: 'gaussian, overlap 0.25', shape: [30, 26, 33], options: { roiSize: [16, 12, 16], overlap: 0.25, mode: 'gaussian' }, channels: 2 },
    { name: 'smaller than the ROI (padding), pad value 7', shape: [9, 20, 5], options: { roiSize: [16, 16, 8], padValue: 7 }, channels: 2 },
    { name: 'gaussian, padding on two axes', shape: [11, 30, 6], options: { roiSize: [16, 12, 8], overlap: 0.5, mode: 'gaussian' }, channels: 2 },
  ];
  for (const c of cases) {
    it(`gives the TS loops' bits: ${c.name}`, async () => {
      const image = randomFloats(c.shape[0] * c.shape[1] * c.shape[2], 11, 4);
      const roi = c.options.roiSize as Shape3;
      const { native, typescript } = await bothWays(async () => {
        const backend = fakeBackend(c.channels, roi, true);
        const result = await slidingWindowInference(image, c.shape, backend, c.options);
        return { logits: result.logits, windows: backend.windows };
      });
      expect(native.windows.length).toBeGreaterThan(1);
      expect(native.windows.map(bytesOf)).toEqual(typescript.windows.map(bytesOf));
      expect(bytesOf(native.logits)).toEqual(bytesOf(typescript.logits));
    });
  }
});

describe('native NIfTI voxel conversions', () => {
  const shape: Shape3 = [70, 5, 35];
  const scalings = [undefined, { slope: 2.5, inter: 0 }, { slope: 1, inter: -1024 }, { slope: 0.3, inter: 17.25 }];
  for (const dt of NIFTI_DATATYPES) {
    it(`decodes ${dt.name} (2 channels, both byte orders, every scaling) as the TS transpose does`, async () => {
      const layout = { shape, channels: 2 };
      const count = shape[0] * shape[1] * shape[2] * layout.channels;
      const random = mulberry32(dt.code);
      const offset = 352;
      const bytes = Uint8Array.from({ length: offset + count * dt.bytes }, () => Math.floor(random() * 256));
      // Float types get finite values (random bytes would be mostly NaN or huge for float64).
      if (dt.name === 'float32') new Float32Array(bytes.buffer, offset, count).set(randomFloats(count, 3, 4000));
      if (dt.name === 'float64') new Float64Array(bytes.buffer, offset, count).set(randomFloats(count, 4, 4000));
      for (const littleEndian of [true, false]) {
        for (const scaling of scalings) {
          const { native, typescript } = await bothWays(() => decodeVoxels(bytes, offset, layout, dt, littleEndian, scaling));
          expect(firstDifference(native, typescript)).toBe(-1);
          // The same transpose on the thread pool (what readNifti uses).
          const pooled = await decodeVoxelsAsync(bytes, offset, layout, dt, littleEndian, scaling);
          expect(firstDifference(pooled, typescript)).toBe(-1);
        }
      }
    });
  }

  // Ties, NaN, infinities, -0 and values outside every integer range.
  const special = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 254.5, 255.5, 32767.5, -32768.5, NaN, Infinity, -Infinity, -0, 1e10, -1e10, 0.49999997];
  const floatData = new Float32Array(shape[0] * shape[1] * shape[2]);
  floatData.set(randomFloats(floatData.length, 5, 70000));
  floatData.set(special, 100);
  const labelData = Uint8Array.from({ length: floatData.length }, (_, i) => (i * 7919) % 3);
  for (const datatype of Object.keys(WRITE_DATATYPE_BYTES) as NiftiWriteDatatype[]) {
    for (const [source, data] of [['float32', floatData], ['uint8 label', labelData]] as const) {
      it(`encodes ${source} data as ${datatype} (both byte orders) as the TS transpose does`, async () => {
        for (const littleEndian of [true, false]) {
          const { native, typescript } = await bothWays(() => {
            const target = new Uint8Array(data.length * WRITE_DATATYPE_BYTES[datatype]);
            encodeVoxelsInto(target, data, { shape, channels: 1 }, datatype, littleEndian);
            return target;
          });
          expect(native).toEqual(typescript);
        }
      });
    }
  }
});

describe('native encoding of a plane range', () => {
  it('gives the TS bits for runs of planes that cross channels', async () => {
    const shape: Shape3 = [19, 6, 13];
    const data = randomFloats(3 * shape[0] * shape[1] * shape[2], 8, 300);
    for (const planes of [{ first: 0, count: 39 }, { first: 5, count: 17 }, { first: 12, count: 1 }, { first: 25, count: 14 }]) {
      const { native, typescript } = await bothWays(() => {
        const target = new Uint8Array(planes.count * shape[0] * shape[1] * 2);
        encodeVoxelsInto(target, data, { shape, channels: 3 }, 'int16', true, planes);
        return target;
      });
      expect(native).toEqual(typescript);
    }
  });
});

describe('native separable trilinear resampling', () => {
  const inShape: Shape3 = [23, 17, 31];
  const src = randomFloats(2 * inShape[0] * inShape[1] * inShape[2], 21, 500);
  src.set([NaN, Infinity, -0], 3000);
  const identity = (n: number): AxisTable => axisTable(1, 0, n, n);
  // Shrinking, growing, shifted and clamped axes, identity axes: both slab strategies and every
  // axis order of the 2-D passes.
  const cases: { name: string; tables: [AxisTable, AxisTable, AxisTable] }[] = [
    { name: 'all axes resampled (shrink, grow, grow)', tables: [axisTable(1.7, 0.35, 14, 23), axisTable(0.45, -0.2, 40, 17), axisTable(0.8, 0.1, 38, 31)] },
    { name: 'axis 0 grows (resample-first slabs)', tables: [axisTable(0.3, 0.2, 70, 23), axisTable(1.3, 0, 13, 17), axisTable(2.1, 0.5, 15, 31)] },
    { name: 'axis 0 identity, axis 2 identity', tables: [identity(23), axisTable(0.6, 0.4, 28, 17), identity(31)] },
    { name: 'axes 1 and 2 identity', tables: [axisTable(0.9, 0.05, 26, 23), identity(17), identity(31)] },
    { name: 'reversed index map (a flip folded into the tables)', tables: [axisTable(-1.5, 22, 15, 23), axisTable(-0.5, 16, 33, 17), axisTable(1, 0, 31, 31)] },
  ];
  for (const c of cases) {
    it(`gives the TS passes' bits: ${c.name}, C order and a flipped output layout`, async () => {
      const out: Shape3 = [c.tables[0].lo.length, c.tables[1].lo.length, c.tables[2].lo.length];
      // Axis 0 reversed and axes 1, 2 swapped in memory: (m0 - 1 - q0) * slab + q2 * m1 + q1.
      const slab = out[1] * out[2];
      const flipped = { base: (out[0] - 1) * slab, strides: [-slab, 1, out[1]] as [number, number, number] };
      for (const layout of [undefined, flipped]) {
        const { native, typescript } = await bothWays(() => resampleSeparable(src, 2, inShape, out, c.tables, layout));
        expect(firstDifference(native, typescript)).toBe(-1);
        // The same kernel on the thread pool (what the pipeline's preprocess uses).
        const pooled = await resampleSeparableAsync(src, 2, inShape, out, c.tables, layout);
        expect(firstDifference(pooled, typescript)).toBe(-1);
      }
    });
  }
});

describe('native decided-region scan', () => {
  const shapes: Shape3[] = [[19, 23, 148], [7, 5, 13], [4, 9, 1], [1, 1, 6]];
  for (const shape of shapes) {
    it(`decideCorners equals decideVoxels + combineCorners on ${shape.join('x')}`, () => {
      const voxels = shape[0] * shape[1] * shape[2];
      const random = mulberry32(voxels);
      // Mostly clear background, a blob of clear foreground, near-ties at the margin.
      const logits = new Float32Array(2 * voxels);
      for (let v = 0; v < voxels; v++) {
        const r = random();
        logits[v] = 2;
        logits[voxels + v] = r < 0.8 ? -3 : r < 0.9 ? 6 : 2 + (random() - 0.5) * 4 * SURE_MARGIN;
      }
      const kernels = volumeKernels();
      if (kernels === null) throw new Error('the addon has no volume kernels');
      const state = new Uint8Array(voxels);
      const rowIsBackground = new Uint8Array(shape[0] * shape[1]);
      const undecided = kernels.decideCorners(logits, shape, SURE_MARGIN, state, rowIsBackground);
      const reference = decideVoxels(logits, voxels);
      expect(reference.nonFinite).toBe(false);
      const combined = combineCorners(reference.state, shape);
      expect(undecided).toBe(combined.undecided);
      expect(state).toEqual(reference.state);
      expect(rowIsBackground).toEqual(combined.rowIsBackground);
      for (const bad of [NaN, Infinity, -Infinity]) {
        const copy = logits.slice();
        copy[voxels + voxels - 1] = bad;
        expect(kernels.decideCorners(copy, shape, SURE_MARGIN, state, rowIsBackground)).toBe(-1);
      }
    });
  }
});

describe('native orientation gather', () => {
  const permutations = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
  it('orientToRas and invertOrientation give the TS bits for every permutation and flip', async () => {
    const shape: Shape3 = [19, 37, 23];
    const data = randomFloats(shape[0] * shape[1] * shape[2], 12, 100);
    const spacing = [0.7, 1.1, 2.5];
    for (const perm of permutations) {
      for (let signs = 0; signs < 8; signs++) {
        const affine = new Float64Array(16);
        affine[15] = 1;
        perm.forEach((world, i) => (affine[world * 4 + i] = (signs >> i) & 1 ? -spacing[i] : spacing[i]));
        const volume = { data, shape, spacingMm: [0.7, 1.1, 2.5] as [number, number, number], affine };
        const { native, typescript } = await bothWays(() => {
          const { volume: ras, orientation } = orientToRas(volume);
          const twoChannels = new Float32Array(2 * ras.data.length);
          twoChannels.set(ras.data);
          twoChannels.set(ras.data.map((v) => -v), ras.data.length);
          return { ras: ras.data, back: invertOrientation(twoChannels, 2, ras.shape, orientation) };
        });
        expect(firstDifference(native.ras, typescript.ras), `perm ${perm} signs ${signs}`).toBe(-1);
        expect(firstDifference(native.back, typescript.back), `perm ${perm} signs ${signs}`).toBe(-1);
        expect(firstDifference(native.back.subarray(0, data.length), data)).toBe(-1);
      }
    }
  });
});

describe('native affine trilinear resampling', () => {
  const inShape: Shape3 = [21, 18, 25];
  const src = randomFloats(2 * inShape[0] * inShape[1] * inShape[2], 31, 800);
  src.set([NaN, Infinity], 500);
  // Rotations, shears and a map reaching past the borders (clamped taps).
  const xforms = [
    Float64Array.from([0.9, 0.2, 0, 0.3, -0.15, 1.1, 0.05, 1.2, 0.02, 0, 0.7, -0.4, 0, 0, 0, 1]),
    Float64Array.from([0, 1.3, 0.1, -2, 0.8, 0, 0, 3.5, 0, -0.2, 1.6, 30, 0, 0, 0, 1]),
    Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
    // Row 0 gives p0 = -0 at a = 0: Math.floor keeps the sign, and it reaches the weights.
    Float64Array.from([-0.5, -0, -0, -0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
  ];
  // A slab of -0 at i = 0 makes the sign of that zero weight visible in the result.
  src.fill(-0, 0, inShape[1] * inShape[2]);
  for (const [index, xform] of xforms.entries()) {
    it(`gives the TS arithmetic's bits for map ${index}, C order and a flipped output layout`, async () => {
      const out: Shape3 = [17, 23, 19];
      const slab = out[1] * out[2];
      const flipped = { base: (out[0] - 1) * slab, strides: [-slab, 1, out[1]] as [number, number, number] };
      for (const layout of [undefined, flipped]) {
        const { native, typescript } = await bothWays(() => resampleAffine(src, 2, inShape, out, xform, layout));
        expect(firstDifference(native, typescript)).toBe(-1);
      }
    });
  }
});

describe('native affine cube scan', () => {
  it('labels decided cubes, lists undecided voxels, and reports the count past its capacity', () => {
    const kernels = volumeKernels();
    if (kernels === null) throw new Error('the addon has no volume kernels');
    const grid: Shape3 = [9, 8, 7];
    const out: Shape3 = [13, 11, 10];
    const random = mulberry32(5);
    const cube = Uint8Array.from({ length: 9 * 8 * 7 }, () => 1 + Math.floor(random() * 3));
    const x = Float64Array.from([0.6, 0.1, 0, 0.2, -0.05, 0.7, 0.03, 0.4, 0.02, 0, 0.65, -0.3, 0, 0, 0, 1]);
    // The reference: resampleAffine's index expression and clamp, in TS.
    const clamp = (p: number, n: number): number => (p < 0 ? 0 : p > n - 1 ? n - 1 : p);
    const expectedLabels = new Uint8Array(13 * 11 * 10);
    const expectedList: number[] = [];
    for (let a = 0; a < out[0]; a++) {
      for (let b = 0; b < out[1]; b++) {
        for (let k = 0; k < out[2]; k++) {
          const i0 = Math.floor(clamp(x[0] * a + x[1] * b + x[2] * k + x[3], grid[0]));
          const j0 = Math.floor(clamp(x[4] * a + x[5] * b + x[6] * k + x[7], grid[1]));
          const k0 = Math.floor(clamp(x[8] * a + x[9] * b + x[10] * k + x[11], grid[2]));
          const state = cube[(i0 * grid[1] + j0) * grid[2] + k0];
          const q = (a * out[1] + b) * out[2] + k;
          if (state === 2) expectedLabels[q] = 1;
          if (state === 3) expectedList.push(q);
        }
      }
    }
    expect(expectedList.length).toBeGreaterThan(10);
    const labels = new Uint8Array(13 * 11 * 10);
    const list = new Int32Array(expectedList.length);
    expect(kernels.affineCubeLabels(cube, grid, x, out, labels, 0, [110, 10, 1], list)).toBe(expectedList.length);
    expect(labels).toEqual(expectedLabels);
    expect(Array.from(list)).toEqual(expectedList);
    const short = new Int32Array(5);
    expect(kernels.affineCubeLabels(cube, grid, x, out, new Uint8Array(13 * 11 * 10), 0, [110, 10, 1], short)).toBe(expectedList.length);
    expect(Array.from(short)).toEqual(expectedList.slice(0, 5));
    expect(() => kernels.affineCubeLabels(cube.subarray(1), grid, x, out, labels, 0, [110, 10, 1], list)).toThrow(RangeError);
    expect(() => kernels.affineCubeLabels(cube, grid, x, out, labels.subarray(1), 0, [110, 10, 1], list)).toThrow(RangeError);
    expect(() => kernels.affineCubeLabels(cube, grid, Float64Array.from(x, (v, i) => (i === 0 ? Infinity : v)), out, labels, 0, [110, 10, 1], list)).toThrow(RangeError);
  });
});

describe('native table cube scan (separable inverse of the decided-region postprocess)', () => {
  it('labels decided cubes, skips background rows, lists undecided voxels, reports the count past its capacity', () => {
    const kernels = volumeKernels();
    if (kernels === null) throw new Error('the addon has no volume kernels');
    const grid: Shape3 = [9, 8, 7];
    const out: Shape3 = [13, 11, 10];
    const random = mulberry32(6);
    const cube = Uint8Array.from({ length: 9 * 8 * 7 }, () => 1 + Math.floor(random() * 3));
    const rowIsBackground = Uint8Array.from({ length: 9 * 8 }, () => (random() < 0.3 ? 1 : 0));
    const tables = [axisTable(0.7, 0.1, out[0], grid[0]), axisTable(0.72, -0.2, out[1], grid[1]), axisTable(0.69, 0.3, out[2], grid[2])] as [AxisTable, AxisTable, AxisTable];
    // A flipped layout: the labels land where the orientation inverse puts them.
    const strides: Shape3 = [-110, 10, -1];
    const base = 12 * 110 + 9;
    const expectedLabels = new Uint8Array(13 * 11 * 10);
    const expectedList: number[] = [];
    for (let a = 0; a < out[0]; a++) {
      for (let b = 0; b < out[1]; b++) {
        const i = tables[0].lo[a];
        const j = tables[1].lo[b];
        if (rowIsBackground[i * grid[1] + j]) continue;
        for (let k = 0; k < out[2]; k++) {
          const state = cube[(i * grid[1] + j) * grid[2] + tables[2].lo[k]];
          if (state === 2) expectedLabels[base + a * strides[0] + b * strides[1] + k * strides[2]] = 1;
          if (state === 3) expectedList.push((a * out[1] + b) * out[2] + k);
        }
      }
    }
    expect(expectedList.length).toBeGreaterThan(10);
    const labels = new Uint8Array(13 * 11 * 10);
    const list = new Int32Array(expectedList.length);
    expect(kernels.tableCubeLabels(cube, grid, rowIsBackground, tables, labels, base, strides, list)).toBe(expectedList.length);
    expect(labels).toEqual(expectedLabels);
    expect(Array.from(list)).toEqual(expectedList);
    const short = new Int32Array(5);
    expect(kernels.tableCubeLabels(cube, grid, rowIsBackground, tables, new Uint8Array(13 * 11 * 10), base, strides, short)).toBe(expectedList.length);
    expect(Array.from(short)).toEqual(expectedList.slice(0, 5));
    expect(() => kernels.tableCubeLabels(cube.subarray(1), grid, rowIsBackground, tables, labels, base, strides, list)).toThrow(RangeError);
    expect(() => kernels.tableCubeLabels(cube, grid, rowIsBackground.subarray(1), tables, labels, base, strides, list)).toThrow(RangeError);
    expect(() => kernels.tableCubeLabels(cube, grid, rowIsBackground, tables, labels, base + 1, strides, list)).toThrow(RangeError);
    const outside = [tables[0], tables[1], axisTable(0.9, 0.3, out[2], grid[2] + 3)] as [AxisTable, AxisTable, AxisTable];
    expect(() => kernels.tableCubeLabels(cube, grid, rowIsBackground, outside, labels, base, strides, list)).toThrow(RangeError);
  });

  it('decidedRegionLabels gives the TS loops\' labels on a flipped, resampled grid with a spleen-like shell', async () => {
    const volume = { data: new Float32Array(40 * 36 * 20), shape: [40, 36, 20] as Shape3, spacingMm: [0.8, 0.8, 2.5] as [number, number, number], affine: Float64Array.from([-0.8, 0, 0, 10, 0, -0.8, 0, 5, 0, 0, 2.5, -3, 0, 0, 0, 1]) };
    const { volume: ras, orientation } = orientToRas(volume);
    const { volume: grid, resampling } = resampleToSpacing(ras, [1.5, 1.5, 2.0]);
    const [n0, n1, n2] = grid.shape;
    const n = n0 * n1 * n2;
    const logits = new Float32Array(2 * n);
    const random = mulberry32(8);
    for (let i = 0; i < n0; i++) {
      for (let j = 0; j < n1; j++) {
        for (let k = 0; k < n2; k++) {
          const v = (i * n1 + j) * n2 + k;
          // An ellipsoid: sure inside, sure outside, a noisy boundary between.
          const r = ((i - n0 / 2) / 7) ** 2 + ((j - n1 / 2) / 6) ** 2 + ((k - n2 / 2) / 5) ** 2;
          logits[v] = 0;
          logits[n + v] = (1 - r) * 4 + (random() - 0.5) * 0.3;
        }
      }
    }
    const { native, typescript } = await bothWays(() => decidedRegionLabels(logits, resampling, orientation));
    expect(native).not.toBeNull();
    expect(native!.reduce((a, b) => a + b, 0)).toBeGreaterThan(100);
    expect(native).toEqual(typescript);
  });
});

describe('native mask summary', () => {
  it('gives the TS summary (count, box, centroid) for sparse, dense, edge and empty masks', async () => {
    const shape: Shape3 = [23, 31, 17];
    const affine = Float64Array.from([-0.8, 0.1, 0, 12, 0, 0.75, 0.2, -30, 0, 0, 2.5, 7, 0, 0, 0, 1]);
    const random = mulberry32(77);
    const masks = [
      Uint8Array.from({ length: 23 * 31 * 17 }, () => (random() < 0.02 ? 1 : 0)),
      Uint8Array.from({ length: 23 * 31 * 17 }, () => (random() < 0.7 ? 255 : 0)),
      new Uint8Array(23 * 31 * 17),
      new Uint8Array(23 * 31 * 17),
    ];
    masks[2][0] = 1;
    masks[2][masks[2].length - 1] = 7;
    for (const [index, mask] of masks.entries()) {
      const { native, typescript } = await bothWays(() => summarizeMask(mask, shape, affine));
      expect(native, `mask ${index}`).toEqual(typescript);
    }
    expect(summarizeMask(masks[3], shape, affine).empty).toBe(true);
  });
});

describe('native kernels split over threads (images past the one-thread size)', () => {
  // Above 2^21 output voxels the decode and both resamplings run on two threads or more wherever
  // there are two cores; every element must still be the TS value.
  const shape: Shape3 = [128, 128, 130];
  const count = shape[0] * shape[1] * shape[2];

  it('decodes a 128x128x130 int16 image with scaling to the TS bits', async () => {
    const random = mulberry32(91);
    const bytes = Uint8Array.from({ length: 352 + 2 * count }, () => Math.floor(random() * 256));
    const dt = NIFTI_DATATYPES.find((d) => d.name === 'int16')!;
    const { native, typescript } = await bothWays(() => decodeVoxels(bytes, 352, { shape, channels: 1 }, dt, true, { slope: 0.5, inter: -1024 }));
    expect(firstDifference(native, typescript)).toBe(-1);
  });

  it('resamples it (separable, both slab strategies, and affine) to the TS bits', async () => {
    const src = randomFloats(count, 92, 2000);
    const growing: [AxisTable, AxisTable, AxisTable] = [axisTable(0.85, 0.1, 150, 128), axisTable(0.9, 0, 140, 128), axisTable(1.05, 0.2, 120, 130)];
    const shrinking: [AxisTable, AxisTable, AxisTable] = [axisTable(1.3, 0.2, 97, 128), axisTable(0.8, 0, 160, 128), axisTable(0.95, 0.1, 136, 130)];
    for (const tables of [growing, shrinking]) {
      const out: Shape3 = [tables[0].lo.length, tables[1].lo.length, tables[2].lo.length];
      const { native, typescript } = await bothWays(() => resampleSeparable(src, 1, shape, out, tables));
      expect(firstDifference(native, typescript)).toBe(-1);
    }
    const x = Float64Array.from([0.95, 0.05, 0, 0.4, -0.04, 0.9, 0.1, 2.2, 0.02, -0.08, 0.97, 1, 0, 0, 0, 1]);
    const { native, typescript } = await bothWays(() => resampleAffine(src, 1, shape, [132, 130, 128], x));
    expect(firstDifference(native, typescript)).toBe(-1);
  });
});

describe('native intensity window', () => {
  const data = randomFloats(100_003, 9, 3000);
  data.set([NaN, Infinity, -Infinity, -0, -57, 164, 53.5, -57.00001], 17);
  const windows: [string, number, number, number, number, boolean][] = [
    ['the bundle (-57..164 -> 0..1, clip)', -57, 164, 0, 1, true],
    ['a general window with clip', -1000, 1000, -1, 2, true],
    ['a general window without clip', -160, 240, 0, 255, false],
    ['an inverted output range with clip', -57, 164, 1, 0, true],
    ['a zero input range (shift only)', 40, 40, 0.5, 1, true],
  ];
  for (const [name, aMin, aMax, bMin, bMax, clip] of windows) {
    it(`gives the TS loop's bits: ${name}`, async () => {
      const { native, typescript } = await bothWays(() => applyIntensityWindow(data, aMin, aMax, bMin, bMax, clip));
      expect(bytesOf(native)).toEqual(bytesOf(typescript));
      const pooled = await applyIntensityWindowAsync(data, aMin, aMax, bMin, bMax, clip);
      expect(bytesOf(pooled)).toEqual(bytesOf(typescript));
    });
  }

  it('works in place, on the thread pool too', async () => {
    const copy = data.slice();
    const expected = applyIntensityWindow(data);
    expect(applyIntensityWindow(copy, -57, 164, 0, 1, true, copy)).toBe(copy);
    expect(bytesOf(copy)).toEqual(bytesOf(expected));
    const pooled = data.slice();
    expect(await applyIntensityWindowAsync(pooled, -57, 164, 0, 1, true, pooled)).toBe(pooled);
    expect(bytesOf(pooled)).toEqual(bytesOf(expected));
    await expect(applyIntensityWindowAsync(data, -57, 164, 0, 1, true, new Float32Array(3))).rejects.toThrow(TypeError);
  });
});

describe('native kernels refuse calls that would leave their arrays', () => {
  const kernels = () => {
    const loaded = volumeKernels();
    if (loaded === null) throw new Error('the addon has no volume kernels');
    return loaded;
  };
  const dims = [10, 10, 10] as const;
  const roi = [4, 4, 4] as const;

  it('accumulateWindow: a placement outside the volume, short arrays, wrong types', () => {
    const acc = new Float32Array(2000);
    const logits = new Float32Array(128);
    expect(() => kernels().accumulateWindow(acc, dims, 2, logits, 0, roi, [0, 0, 0], [4, 4, 4], [7, 0, 0], null, null)).toThrow(RangeError);
    expect(() => kernels().accumulateWindow(acc, dims, 2, logits, 0, roi, [0, 0, 0], [4, 4, 4], [-1, 0, 0], null, null)).toThrow(RangeError);
    expect(() => kernels().accumulateWindow(acc, dims, 2, logits, 1, roi, [0, 0, 0], [4, 4, 4], [0, 0, 0], null, null)).toThrow(RangeError);
    expect(() => kernels().accumulateWindow(acc, dims, 3, logits, 0, roi, [0, 0, 0], [4, 4, 4], [0, 0, 0], null, null)).toThrow(RangeError);
    expect(() => kernels().accumulateWindow(acc, dims, 2, logits, 0, roi, [0, 0, 0], [5, 4, 4], [0, 0, 0], null, null)).toThrow(RangeError);
    expect(() => kernels().accumulateWindow(acc, dims, 2, logits, 0, roi, [0, 0, 0], [4, 4, 4], [0, 0, 0], new Float32Array(10), null)).toThrow(RangeError);
    const wrong = new Float64Array(2000) as unknown as Float32Array;
    expect(() => kernels().accumulateWindow(wrong, dims, 2, logits, 0, roi, [0, 0, 0], [4, 4, 4], [0, 0, 0], null, null)).toThrow(TypeError);
    // In bounds: adds the window where it says.
    logits.fill(1.5);
    kernels().accumulateWindow(acc, dims, 2, logits, 0, roi, [1, 0, 0], [4, 4, 2], [6, 6, 8], null, null);
    expect(acc[(7 * 10 + 6) * 10 + 8]).toBe(1.5);
    expect(acc[1000 + (9 * 10 + 9) * 10 + 9]).toBe(1.5);
    expect(acc.reduce((a, b) => a + b, 0)).toBe(2 * 3 * 4 * 2 * 1.5);
  });

  it('gatherWindow, divideByCoverage, divideByWeights: short arrays', () => {
    const image = new Float32Array(1000);
    expect(() => kernels().gatherWindow(image, dims, new Float32Array(63), 0, roi, [0, 0, 0], [4, 4, 4], [0, 0, 0], 0)).toThrow(RangeError);
    expect(() => kernels().gatherWindow(image.subarray(1), dims, new Float32Array(64), 0, roi, [0, 0, 0], [4, 4, 4], [0, 0, 0], 0)).toThrow(RangeError);
    expect(() => kernels().divideByCoverage(image, dims, 1, new Float64Array(10), new Float64Array(9), new Float64Array(10))).toThrow(RangeError);
    expect(() => kernels().divideByWeights(image, 2, new Float32Array(1000))).toThrow(RangeError);
  });

  it('resampleSeparable: tables reading outside the source, a false identity, a layout outside out', () => {
    const src = new Float32Array(1000);
    const table = (n: number): AxisTable => axisTable(0.5, 0, 2 * n, n);
    const tables = [table(10), table(10), table(10)] as const;
    const out = new Float32Array(8000);
    expect(() => kernels().resampleSeparable(src, 1, dims, tables, out, 0, [400, 20, 1])).not.toThrow();
    const outside = { ...table(10), hi: Int32Array.from(table(10).hi, (v) => v + 1) };
    expect(() => kernels().resampleSeparable(src, 1, dims, [tables[0], outside, tables[2]], out, 0, [400, 20, 1])).toThrow(RangeError);
    expect(() => kernels().resampleSeparable(src, 1, dims, [{ ...table(10), identity: true }, tables[1], tables[2]], out, 0, [400, 20, 1])).toThrow(RangeError);
    expect(() => kernels().resampleSeparable(src, 2, dims, tables, out, 0, [400, 20, 1])).toThrow(RangeError);
    expect(() => kernels().resampleSeparable(src, 1, dims, tables, out, 1, [400, 20, 1])).toThrow(RangeError);
    expect(() => kernels().resampleSeparable(src, 1, dims, tables, out, 0, [-400, 20, 1])).toThrow(RangeError);
    expect(() => kernels().resampleSeparable(src, 1, dims, tables, new Float32Array(7999), 0, [400, 20, 1])).toThrow(RangeError);
  });

  it('summarizeLabels: a short mask or stats array', () => {
    expect(() => kernels().summarizeLabels(new Uint8Array(999), dims, new Float64Array(10))).toThrow(RangeError);
    expect(() => kernels().summarizeLabels(new Uint8Array(1000), dims, new Float64Array(9))).toThrow(RangeError);
    expect(() => kernels().summarizeLabels(new Float32Array(1000) as unknown as Uint8Array, dims, new Float64Array(10))).toThrow(TypeError);
  });

  it('gatherStrided: reads outside src, a short dst', () => {
    const src = new Float32Array(1000);
    expect(() => kernels().gatherStrided(src, 1, dims, [1, 10, 100], 0, new Float32Array(1000))).not.toThrow();
    expect(() => kernels().gatherStrided(src, 1, dims, [-1, 10, 100], 0, new Float32Array(1000))).toThrow(RangeError);
    expect(() => kernels().gatherStrided(src, 1, dims, [1, 10, 100], 1, new Float32Array(1000))).toThrow(RangeError);
    expect(() => kernels().gatherStrided(src, 2, dims, [1, 10, 100], 0, new Float32Array(2000))).toThrow(RangeError);
    expect(() => kernels().gatherStrided(src, 1, dims, [1, 10, 100], 0, new Float32Array(999))).toThrow(RangeError);
  });

  it('resampleAffine: a non-finite map, short arrays, a layout outside out', () => {
    const src = new Float32Array(1000);
    const identity = Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    const out = new Float32Array(1000);
    expect(() => kernels().resampleAffine(src, 1, dims, dims, identity, out, 0, [100, 10, 1])).not.toThrow();
    expect(() => kernels().resampleAffine(src, 1, dims, dims, Float64Array.from(identity, (v, i) => (i === 3 ? NaN : v)), out, 0, [100, 10, 1])).toThrow(RangeError);
    expect(() => kernels().resampleAffine(src, 1, dims, dims, identity.subarray(0, 12), out, 0, [100, 10, 1])).toThrow(RangeError);
    expect(() => kernels().resampleAffine(src.subarray(1), 1, dims, dims, identity, out, 0, [100, 10, 1])).toThrow(RangeError);
    expect(() => kernels().resampleAffine(src, 1, dims, dims, identity, out, 1, [100, 10, 1])).toThrow(RangeError);
    expect(() => kernels().resampleAffine(src, 2, dims, dims, identity, out, 0, [100, 10, 1])).toThrow(RangeError);
  });

  it('fileToCOrder and cToFileOrder: short arrays, 64-bit integers, casts out of an integer range', () => {
    const out = new Float32Array(1000);
    expect(() => kernels().fileToCOrder(new Int16Array(999), out, dims, 1, 1, 0)).toThrow(RangeError);
    expect(() => kernels().fileToCOrder(new BigInt64Array(1000) as unknown as Int32Array, out, dims, 1, 1, 0)).toThrow(TypeError);
    // The pooled variant checks the same, synchronously, before anything is queued.
    expect(() => kernels().fileToCOrderAsync(new Int16Array(999), out, dims, 1, 1, 0)).toThrow(RangeError);
    expect(() => kernels().fileToCOrderAsync(new Int16Array(1000), out.subarray(1), dims, 1, 1, 0)).toThrow(RangeError);
    expect(() => kernels().cToFileOrder(out, new Int16Array(1000), dims, 0, 0, 10, false, 0, 0)).toThrow(RangeError);
    expect(() => kernels().cToFileOrder(out, new Uint8Array(1000), dims, 0, 0, 10, true, 0, 1000)).toThrow(RangeError);
    expect(() => kernels().cToFileOrder(out, new Float32Array(999), dims, 0, 0, 10, false, 0, 0)).toThrow(RangeError);
    expect(() => kernels().cToFileOrder(out, new Float32Array(1000), dims, 1, 0, 10, false, 0, 0)).toThrow(RangeError);
    expect(() => kernels().cToFileOrder(out, new Float32Array(1000), dims, 0, 5, 11, false, 0, 0)).toThrow(RangeError);
    expect(() => kernels().cToFileOrder(out, new Float32Array(1000), dims, 0, 6, 5, false, 0, 0)).toThrow(RangeError);
    expect(() => kernels().cToFileOrder(out, new Float32Array(500), dims, 0, 5, 10, false, 0, 0)).not.toThrow();
  });
});
