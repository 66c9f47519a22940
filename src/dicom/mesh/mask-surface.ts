/**
 * The surface of a binary mask in patient coordinates, by marching tetrahedra: the marching-cubes
 * iso-surface at 0.5 (grid at the voxel centres, crossings at edge midpoints for a 0/1 mask) with
 * each cube cut into the 6 tetrahedra of the Kuhn triangulation. Neighbouring cubes cut their shared
 * faces along the same diagonal, so unlike marching cubes' 256-case table there are no ambiguous
 * faces: the mesh is closed (watertight) by construction. The mask is treated as zero outside its
 * grid, so the surface also closes where the organ touches the volume's border.
 *
 * Triangles are wound counter-clockwise seen from outside (outward normals), decided per triangle
 * in world space (from the inside corners towards the outside ones), which stays right for any
 * affine, reflections and shears included.
 */
import { summarizeMask } from '../../volume/mask-summary.js';
import type { Shape3 } from '../../volume/volume.js';

const IDENTITY = Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);

/** Triangle soup: 9 floats (three xyz vertices) per triangle, millimetres. */
export interface SurfaceMesh {
  positions: Float32Array;
  triangleCount: number;
}

/**
 * The 6 tetrahedra of a unit cube as indices of its corners (corner c = di + 2 dj + 4 dk): one path
 * from (0,0,0) to (1,1,1) per permutation of the axes.
 */
const TETRAHEDRA: readonly (readonly number[])[] = [
  [0, 1, 2],
  [0, 2, 1],
  [1, 0, 2],
  [1, 2, 0],
  [2, 0, 1],
  [2, 1, 0],
].map((axes) => {
  let corner = 0;
  return [0, ...axes.map((a) => (corner |= 1 << a))];
});

/** A growable float buffer (triangle soups reach millions of floats). */
class FloatSink {
  data = new Float32Array(1 << 16);
  length = 0;
  push9(values: Float64Array): void {
    if (this.length + 9 > this.data.length) {
      const bigger = new Float32Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data.set(values, this.length);
    this.length += 9;
  }
}

/**
 * Extracts the mask's surface. `world` is a row-major 3x4 (or 4x4) matrix from voxel index to world
 * mm (for DICOM: LPS, the patient coordinates of the source). Being linear, it maps edge midpoints
 * to the midpoints of the corners' world positions, which are computed once per cube.
 */
export function maskSurface(mask: Uint8Array, shape: Shape3, world: Float64Array): SurfaceMesh {
  const [n0, n1, n2] = shape;
  const at = (i: number, j: number, k: number): number =>
    i < 0 || j < 0 || k < 0 || i >= n0 || j >= n1 || k >= n2 ? 0 : mask[(i * n1 + j) * n2 + k] !== 0 ? 1 : 0;
  // Only cubes around the foreground can hold surface: its bounding box grown by one.
  const box = summarizeMask(mask, shape, IDENTITY).boundingBox;
  if (box === null) return { positions: new Float32Array(0), triangleCount: 0 };
  const { min: lo, max: hi } = box;
  const sink = new FloatSink();
  const inside = new Uint8Array(8);
  const corner = new Float64Array(24); // world xyz of the 8 cube corners
  const tri = new Float64Array(9);
  const quad = new Float64Array(12);
  const outward = new Float64Array(3);
  const ins: number[] = [];
  const outs: number[] = [];

  /** Writes the midpoint of corners a and b at `target[offset..]`. */
  const midpoint = (target: Float64Array, offset: number, a: number, b: number): void => {
    for (let d = 0; d < 3; d++) target[offset + d] = (corner[3 * a + d] + corner[3 * b + d]) / 2;
  };
  /** Emits triangle (p, q, r) of `points` wound so that its normal points along `outward`. */
  const emit = (points: Float64Array, p: number, q: number, r: number): void => {
    const ux = points[q] - points[p], uy = points[q + 1] - points[p + 1], uz = points[q + 2] - points[p + 2];
    const vx = points[r] - points[p], vy = points[r + 1] - points[p + 1], vz = points[r + 2] - points[p + 2];
    const flip = (uy * vz - uz * vy) * outward[0] + (uz * vx - ux * vz) * outward[1] + (ux * vy - uy * vx) * outward[2] < 0;
    const order = flip ? [p, r, q] : [p, q, r];
    for (let v = 0; v < 3; v++) for (let d = 0; d < 3; d++) tri[3 * v + d] = points[order[v] + d];
    sink.push9(tri);
  };

  for (let i = lo[0] - 1; i <= hi[0]; i++) {
    for (let j = lo[1] - 1; j <= hi[1]; j++) {
      for (let k = lo[2] - 1; k <= hi[2]; k++) {
        let sum = 0;
        for (let c = 0; c < 8; c++) sum += inside[c] = at(i + (c & 1), j + ((c >> 1) & 1), k + (c >> 2));
        if (sum === 0 || sum === 8) continue;
        for (let c = 0; c < 8; c++) {
          const x = i + (c & 1), y = j + ((c >> 1) & 1), z = k + (c >> 2);
          for (let d = 0; d < 3; d++) corner[3 * c + d] = world[4 * d] * x + world[4 * d + 1] * y + world[4 * d + 2] * z + world[4 * d + 3];
        }
        for (const tet of TETRAHEDRA) {
          ins.length = 0;
          outs.length = 0;
          for (const c of tet) (inside[c] ? ins : outs).push(c);
          if (ins.length === 0 || outs.length === 0) continue;
          // Outward = from the inside corners' centroid towards the outside corners' centroid.
          for (let d = 0; d < 3; d++) {
            let a = 0;
            let b = 0;
            for (const c of ins) a += corner[3 * c + d];
            for (const c of outs) b += corner[3 * c + d];
            outward[d] = b / outs.length - a / ins.length;
          }
          if (ins.length === 1 || outs.length === 1) {
            const [apex, others] = ins.length === 1 ? [ins[0], outs] : [outs[0], ins];
            for (let e = 0; e < 3; e++) midpoint(quad, 3 * e, apex, others[e]);
            emit(quad, 0, 3, 6);
          } else {
            // Two in, two out: the crossing is a quad on the four mixed edges, in cyclic order.
            midpoint(quad, 0, ins[0], outs[0]);
            midpoint(quad, 3, ins[0], outs[1]);
            midpoint(quad, 6, ins[1], outs[1]);
            midpoint(quad, 9, ins[1], outs[0]);
            emit(quad, 0, 3, 6);
            emit(quad, 0, 6, 9);
          }
        }
      }
    }
  }
  return { positions: sink.data.slice(0, sink.length), triangleCount: sink.length / 9 };
}

/** Surface area (mm^2) and enclosed volume (mL, divergence theorem) of a closed, outward-wound mesh. */
export function meshMeasures(mesh: SurfaceMesh): { surfaceAreaMm2: number; volumeMl: number } {
  const p = mesh.positions;
  let area = 0;
  let volume = 0;
  for (let t = 0; t < p.length; t += 9) {
    const [ax, ay, az, bx, by, bz, cx, cy, cz] = [p[t], p[t + 1], p[t + 2], p[t + 3], p[t + 4], p[t + 5], p[t + 6], p[t + 7], p[t + 8]];
    const ux = bx - ax, uy = by - ay, uz = bz - az;
    const vx = cx - ax, vy = cy - ay, vz = cz - az;
    const nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
    area += Math.sqrt(nx * nx + ny * ny + nz * nz) / 2;
    // Signed volume of the tetrahedron (origin, a, b, c).
    volume += (ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx)) / 6;
  }
  return { surfaceAreaMm2: area, volumeMl: volume / 1000 };
}
