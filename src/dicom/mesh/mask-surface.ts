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

/** The 6 tetrahedra of a unit cube: corner offsets (di, dj, dk), one path per axis permutation. */
const TETRAHEDRA: ReadonlyArray<ReadonlyArray<readonly [number, number, number]>> = [
  [0, 1, 2],
  [0, 2, 1],
  [1, 0, 2],
  [1, 2, 0],
  [2, 0, 1],
  [2, 1, 0],
].map((axes) => {
  const corner: [number, number, number] = [0, 0, 0];
  const path: Array<readonly [number, number, number]> = [[0, 0, 0]];
  for (const a of axes) {
    corner[a] = 1;
    path.push([corner[0], corner[1], corner[2]]);
  }
  return path;
});

/**
 * Extracts the mask's surface. `toWorld` maps a voxel index (possibly half-integer) to world mm
 * (for DICOM: LPS, the patient coordinates of the source).
 */
export function maskSurface(mask: Uint8Array, shape: Shape3, toWorld: (i: number, j: number, k: number) => [number, number, number]): SurfaceMesh {
  const [n0, n1, n2] = shape;
  const at = (i: number, j: number, k: number): number =>
    i < 0 || j < 0 || k < 0 || i >= n0 || j >= n1 || k >= n2 ? 0 : mask[(i * n1 + j) * n2 + k] !== 0 ? 1 : 0;
  // Only cubes around the foreground can hold surface: its bounding box grown by one.
  const box = summarizeMask(mask, shape, IDENTITY).boundingBox;
  if (box === null) return { positions: new Float32Array(0), triangleCount: 0 };
  const { min: lo, max: hi } = box;
  const out: number[] = [];
  const inside: number[] = new Array(4);
  const corners: Array<[number, number, number]> = [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]];
  const cube = new Array<number>(8);

  const emit = (a: number[], b: number[], c: number[], outward: number[]): void => {
    const pa = toWorld(a[0], a[1], a[2]);
    const pb = toWorld(b[0], b[1], b[2]);
    const pc = toWorld(c[0], c[1], c[2]);
    const u = [pb[0] - pa[0], pb[1] - pa[1], pb[2] - pa[2]];
    const v = [pc[0] - pa[0], pc[1] - pa[1], pc[2] - pa[2]];
    const n = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
    if (n[0] * outward[0] + n[1] * outward[1] + n[2] * outward[2] < 0) out.push(...pa, ...pc, ...pb);
    else out.push(...pa, ...pb, ...pc);
  };
  const mid = (p: number[], q: number[]): number[] => [(p[0] + q[0]) / 2, (p[1] + q[1]) / 2, (p[2] + q[2]) / 2];

  for (let i = lo[0] - 1; i <= hi[0]; i++) {
    for (let j = lo[1] - 1; j <= hi[1]; j++) {
      for (let k = lo[2] - 1; k <= hi[2]; k++) {
        let sum = 0;
        for (let c = 0; c < 8; c++) sum += cube[c] = at(i + (c & 1), j + ((c >> 1) & 1), k + (c >> 2));
        if (sum === 0 || sum === 8) continue;
        for (const tet of TETRAHEDRA) {
          let count = 0;
          for (let t = 0; t < 4; t++) {
            const [di, dj, dk] = tet[t];
            corners[t] = [i + di, j + dj, k + dk];
            inside[t] = cube[di | (dj << 1) | (dk << 2)];
            count += inside[t];
          }
          if (count === 0 || count === 4) continue;
          const ins = [0, 1, 2, 3].filter((t) => inside[t] === 1).map((t) => corners[t]);
          const outs = [0, 1, 2, 3].filter((t) => inside[t] === 0).map((t) => corners[t]);
          // Outward = from the inside corners' centroid towards the outside corners' centroid, in world mm.
          const centroid = (pts: number[][]): number[] => toWorld(...(pts.reduce((s, p) => [s[0] + p[0] / pts.length, s[1] + p[1] / pts.length, s[2] + p[2] / pts.length], [0, 0, 0]) as [number, number, number]));
          const ci = centroid(ins);
          const co = centroid(outs);
          const outward = [co[0] - ci[0], co[1] - ci[1], co[2] - ci[2]];
          if (ins.length === 1 || outs.length === 1) {
            const [apex, others] = ins.length === 1 ? [ins[0], outs] : [outs[0], ins];
            emit(mid(apex, others[0]), mid(apex, others[1]), mid(apex, others[2]), outward);
          } else {
            // Two in, two out: the crossing is a quad on the four mixed edges, in cyclic order.
            const q0 = mid(ins[0], outs[0]);
            const q1 = mid(ins[0], outs[1]);
            const q2 = mid(ins[1], outs[1]);
            const q3 = mid(ins[1], outs[0]);
            emit(q0, q1, q2, outward);
            emit(q0, q2, q3, outward);
          }
        }
      }
    }
  }
  return { positions: Float32Array.from(out), triangleCount: out.length / 9 };
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
