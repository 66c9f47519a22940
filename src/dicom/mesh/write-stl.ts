/**
 * Binary STL (80-byte header, uint32 count, 50 bytes per triangle: normal, 3 vertices, attribute)
 * of a mask's surface in DICOM patient coordinates (LPS mm), as MONAI Deploy's STL operator writes
 * for this model. The header says "SPACE=LPS", which 3D Slicer reads to place the model.
 */
import { writeFileAtomic } from '../../write-file-atomic.js';
import type { LabelVolume } from '../../segment-volume.js';
import { maskSurface, meshMeasures, type SurfaceMesh } from './mask-surface.js';

export interface StlResult {
  bytes: Uint8Array;
  triangleCount: number;
  surfaceAreaMm2: number;
  volumeMl: number;
}

/** The surface of `mask` in LPS mm, from its RAS affine (x and y rows negated). */
export function maskSurfaceLps(mask: LabelVolume): SurfaceMesh {
  const lps = Float64Array.from(mask.affine.subarray(0, 12));
  for (let m = 0; m < 8; m++) lps[m] = -lps[m];
  return maskSurface(mask.data, mask.shape, lps);
}

/** Encodes a triangle soup as binary STL. */
export function encodeStl(mesh: SurfaceMesh, header = 'spleen-trt spleen surface SPACE=LPS'): Uint8Array {
  const bytes = new Uint8Array(84 + 50 * mesh.triangleCount);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(header.slice(0, 80)), 0);
  view.setUint32(80, mesh.triangleCount, true);
  const p = mesh.positions;
  for (let t = 0; t < mesh.triangleCount; t++) {
    const o = 84 + 50 * t;
    const b = 9 * t;
    const ux = p[b + 3] - p[b], uy = p[b + 4] - p[b + 1], uz = p[b + 5] - p[b + 2];
    const vx = p[b + 6] - p[b], vy = p[b + 7] - p[b + 1], vz = p[b + 8] - p[b + 2];
    const nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
    const length = Math.hypot(nx, ny, nz) || 1;
    view.setFloat32(o, nx / length, true);
    view.setFloat32(o + 4, ny / length, true);
    view.setFloat32(o + 8, nz / length, true);
    for (let v = 0; v < 9; v++) view.setFloat32(o + 12 + 4 * v, p[b + v], true);
  }
  return bytes;
}

/** The mask's surface as a binary STL (LPS mm), with its area and enclosed volume. */
export function encodeMaskStl(mask: LabelVolume): StlResult {
  const mesh = maskSurfaceLps(mask);
  return { bytes: encodeStl(mesh), triangleCount: mesh.triangleCount, ...meshMeasures(mesh) };
}

/** encodeMaskStl, written whole-or-nothing to `file`. */
export async function writeMaskStl(file: string, mask: LabelVolume): Promise<Omit<StlResult, 'bytes'>> {
  const { bytes, ...rest } = encodeMaskStl(mask);
  await writeFileAtomic(file, bytes);
  return rest;
}
