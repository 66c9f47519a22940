/** The STL surface: closed, consistently wound outwards, and enclosing about the mask's volume. */
import { describe, expect, it } from 'vitest';
import { encodeMaskStl, maskSurfaceLps, meshMeasures } from '../../../src/dicom/index.js';
import { makePhantom, summarizeMask, type LabelVolume } from '../../../src/index.js';

/** Directed edges keyed by their exact float vertices: a closed, consistently wound mesh pairs each with its reverse once. */
function edgeDefects(positions: Float32Array): { unpaired: number; repeated: number } {
  const directed = new Map<string, number>();
  const key = (p: number): string => `${positions[p]},${positions[p + 1]},${positions[p + 2]}`;
  for (let t = 0; t < positions.length; t += 9) {
    for (let e = 0; e < 3; e++) {
      const k = `${key(t + 3 * e)}|${key(t + 3 * ((e + 1) % 3))}`;
      directed.set(k, (directed.get(k) ?? 0) + 1);
    }
  }
  let unpaired = 0;
  let repeated = 0;
  for (const [k, count] of directed) {
    const [a, b] = k.split('|');
    if (count > 1) repeated++;
    if (directed.get(`${b}|${a}`) !== count) unpaired++;
  }
  return { unpaired, repeated };
}

function ellipsoid(shape: [number, number, number], affine: Float64Array, radii: [number, number, number], centre: [number, number, number]): LabelVolume {
  const [n0, n1, n2] = shape;
  const data = new Uint8Array(n0 * n1 * n2);
  for (let i = 0; i < n0; i++) for (let j = 0; j < n1; j++) for (let k = 0; k < n2; k++) {
    const d = ((i - centre[0]) / radii[0]) ** 2 + ((j - centre[1]) / radii[1]) ** 2 + ((k - centre[2]) / radii[2]) ** 2;
    data[(i * n1 + j) * n2 + k] = d <= 1 ? 1 : 0;
  }
  return { data, shape, spacingMm: [1, 1, 1], affine };
}

describe('mask surface and STL', () => {
  // Anisotropic, sheared (gantry tilt) and reflected: orientation must come out right regardless.
  const affine = Float64Array.from([-0.8, 0, 0, 100, 0, 0.9, 0.3, -50, 0, 0, 2.5, 20, 0, 0, 0, 1]);

  it('is closed and wound outwards, and encloses about the voxel volume', () => {
    const mask = ellipsoid([40, 40, 20], affine, [14, 12, 6], [19.5, 20, 9.5]);
    const mesh = maskSurfaceLps(mask);
    expect(mesh.triangleCount).toBeGreaterThan(1000);
    expect(edgeDefects(mesh.positions)).toEqual({ unpaired: 0, repeated: 0 });
    const { volumeMl, surfaceAreaMm2 } = meshMeasures(mesh);
    const voxelMl = summarizeMask(mask.data, mask.shape, affine).volumeMl;
    expect(volumeMl).toBeGreaterThan(0); // outward normals give a positive enclosed volume
    expect(Math.abs(volumeMl - voxelMl) / voxelMl).toBeLessThan(0.03);
    expect(surfaceAreaMm2).toBeGreaterThan(0);
  });

  it('closes where the mask touches the border, and on a phantom spleen', () => {
    const mask = ellipsoid([20, 20, 10], affine, [12, 8, 6], [0, 10, 5]);
    expect(edgeDefects(maskSurfaceLps(mask).positions)).toEqual({ unpaired: 0, repeated: 0 });
    const { label } = makePhantom({ shape: [64, 64, 24], spacingMm: [5, 5, 10], seed: 7 });
    const mesh = maskSurfaceLps(label);
    expect(edgeDefects(mesh.positions)).toEqual({ unpaired: 0, repeated: 0 });
    const voxelMl = summarizeMask(label.data, label.shape, label.affine).volumeMl;
    expect(Math.abs(meshMeasures(mesh).volumeMl - voxelMl) / voxelMl).toBeLessThan(0.02);
  });

  it('writes binary STL: header, count, unit outward normals, LPS vertices', () => {
    const mask = ellipsoid([12, 12, 8], Float64Array.from([1, 0, 0, 10, 0, 1, 0, 20, 0, 0, 1, 30, 0, 0, 0, 1]), [4, 4, 3], [6, 6, 4]);
    const stl = encodeMaskStl(mask);
    const view = new DataView(stl.bytes.buffer);
    expect(new TextDecoder().decode(stl.bytes.subarray(0, 80))).toMatch(/SPACE=LPS/);
    expect(view.getUint32(80, true)).toBe(stl.triangleCount);
    expect(stl.bytes.length).toBe(84 + 50 * stl.triangleCount);
    for (let t = 0; t < stl.triangleCount; t++) {
      const o = 84 + 50 * t;
      const n = [0, 1, 2].map((d) => view.getFloat32(o + 4 * d, true));
      expect(Math.hypot(...n)).toBeCloseTo(1, 5);
      // Outward: the normal points away from the ellipsoid's centre (LPS: x and y negated).
      const c = [0, 1, 2].map((d) => (view.getFloat32(o + 12 + 4 * d, true) + view.getFloat32(o + 24 + 4 * d, true) + view.getFloat32(o + 36 + 4 * d, true)) / 3);
      const centre = [-(6 + 10), -(6 + 20), 4 + 30];
      expect(n[0] * (c[0] - centre[0]) + n[1] * (c[1] - centre[1]) + n[2] * (c[2] - centre[2])).toBeGreaterThan(0);
    }
    expect(stl.volumeMl).toBeGreaterThan(0);
  });
});
