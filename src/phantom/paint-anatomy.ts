/**
 * Rasterises an Anatomy onto a voxel grid: one pass over every voxel for the body (air, table,
 * fat, wall, ribs, lungs), then each solid over the index box its world bounding box covers.
 *
 * Speed matters (a 512x512x90 case must take seconds, not minutes): world coordinates advance
 * incrementally along k, the solids' inside tests are inlined per kind (no per-voxel closures or
 * allocations), and lobulated surfaces are only evaluated in the shell between the bounds
 * 1 - |p| and 1 + |p| of the perturbation.
 */
import { invert4 } from '../volume/affine.js';
import type { Shape3, Vec3 } from '../volume/volume.js';
import type { Anatomy, Blob, BodyParams, Tube } from './phantom-anatomy.js';
import { indexBoxOf } from './phantom-grid.js';

/** Where to draw: HU into `image`, 1 into `label` inside labelled solids. */
export interface PaintTarget {
  shape: Shape3;
  affine: Float64Array;
  image: Float32Array;
  label: Uint8Array;
}

function fracPositive(x: number): number {
  return x - Math.floor(x);
}

function paintBody(target: PaintTarget, body: BodyParams): void {
  const { shape, affine: a, image } = target;
  const [n0, n1, n2] = shape;
  const irx = 1 / body.rx, iryA = 1 / body.ryAnt, iryP = 1 / body.ryPost;
  const fat2 = body.fatInner ** 2, wall2 = body.wallInner ** 2, rib2 = body.ribInner ** 2;
  const { ribs, lungs, table } = body;
  const ribPitchInv = 1 / ribs.pitchMm;
  const ribOn = ribs.thickMm / ribs.pitchMm;
  const tableBottom = table.topMm - table.thickMm;
  const L = lungs.left, R = lungs.right;
  let index = 0;
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1; j++) {
      let x = a[0] * i + a[1] * j + a[3];
      let y = a[4] * i + a[5] * j + a[7];
      let z = a[8] * i + a[9] * j + a[11];
      for (let k = 0; k < n2; k++, index++, x += a[2], y += a[6], z += a[10]) {
        const ex = x * irx;
        const ey = y * (y < 0 ? iryP : iryA);
        const r2 = ex * ex + ey * ey;
        let hu: number;
        if (r2 > 1) {
          hu = body.airHu;
          if (y <= table.topMm && y >= tableBottom && x < table.halfWidthMm && x > -table.halfWidthMm) {
            hu = y > table.topMm - 2.5 || y < tableBottom + 2.5 ? table.shellHu : table.coreHu;
          }
        } else if (r2 > fat2) {
          hu = body.fatHu;
        } else if (r2 > wall2) {
          hu = body.muscleHu;
        } else if (r2 > rib2 && z > ribs.zMinMm && y < ribs.yMaxMm) {
          // Intercostal muscle with ribs descending anteriorly: z + slope * y constant along a rib.
          hu = fracPositive((z + ribs.slope * y - ribs.phaseMm) * ribPitchInv) < ribOn ? ribs.hu : body.muscleHu;
        } else {
          hu = body.visceralFatHu;
          const dome = x < 0 ? L : R;
          const dx = x - dome.centre[0], dy = y - dome.centre[1];
          if (z > dome.apexZMm - dome.curvature * (dx * dx + dy * dy)) {
            hu = x < lungs.mediastinumHalfWidthMm && x > -lungs.mediastinumHalfWidthMm && y > lungs.mediastinumYMinMm ? lungs.heartHu : lungs.hu;
          }
        }
        image[index] = hu;
      }
    }
  }
}

function blobBounds(b: Blob): { lo: Vec3; hi: Vec3 } {
  const outer = 1 + b.lobeBound;
  const reach = [(outer + Math.abs(b.bend) * outer * outer) * b.radii[0], outer * b.radii[1], outer * b.radii[2]];
  const lo: Vec3 = [0, 0, 0];
  const hi: Vec3 = [0, 0, 0];
  for (let w = 0; w < 3; w++) {
    let half = 0;
    for (let l = 0; l < 3; l++) half += Math.abs(b.rotation[l * 3 + w]) * reach[l];
    lo[w] = b.centre[w] - half;
    hi[w] = b.centre[w] + half;
  }
  return { lo, hi };
}

function paintBlob(target: PaintTarget, inverse: Float64Array, b: Blob): void {
  const { lo, hi } = blobBounds(b);
  const box = indexBoxOf(inverse, target.shape, lo, hi);
  if (!box) return;
  const { affine: a, image, label } = target;
  const [, n1, n2] = target.shape;
  const [cx, cy, cz] = b.centre;
  const rot = b.rotation;
  const ia = 1 / b.radii[0], ib = 1 / b.radii[1], ic = 1 / b.radii[2];
  const r00 = rot[0] * ia, r01 = rot[1] * ia, r02 = rot[2] * ia;
  const r10 = rot[3] * ib, r11 = rot[4] * ib, r12 = rot[5] * ib;
  const r20 = rot[6] * ic, r21 = rot[7] * ic, r22 = rot[8] * ic;
  const outer2 = (1 + b.lobeBound) ** 2;
  const inner = Math.max(0, 1 - b.lobeBound);
  const inner2 = inner * inner;
  const c = b.lobes ?? new Float64Array(19);
  const bend = b.bend;
  const levelZ = b.level ? b.level.zMm : Infinity;
  const levelHu = b.level ? b.level.hu : b.hu;
  const huValue = b.hu;
  const labelValue = b.label ? 1 : 0;
  const writeLabel = b.label === true;
  const [i0, i1, j0, j1, k0, k1] = box;
  for (let i = i0; i <= i1; i++) {
    for (let j = j0; j <= j1; j++) {
      let x = a[0] * i + a[1] * j + a[2] * k0 + a[3] - cx;
      let y = a[4] * i + a[5] * j + a[6] * k0 + a[7] - cy;
      let z = a[8] * i + a[9] * j + a[10] * k0 + a[11] - cz;
      let index = (i * n1 + j) * n2 + k0;
      for (let k = k0; k <= k1; k++, index++, x += a[2], y += a[6], z += a[10]) {
        const v = r10 * x + r11 * y + r12 * z;
        const w = r20 * x + r21 * y + r22 * z;
        const u = r00 * x + r01 * y + r02 * z - bend * v * v;
        const r2 = u * u + v * v + w * w;
        if (r2 > outer2) continue;
        if (r2 > inner2) {
          const r = Math.sqrt(r2);
          const pu = u / r, pv = v / r, pw = w / r;
          const uu = pu * pu, vv = pv * pv, ww = pw * pw;
          const p =
            c[0] * pu + c[1] * pv + c[2] * pw +
            c[3] * uu + c[4] * vv + c[5] * ww + c[6] * pu * pv + c[7] * pu * pw + c[8] * pv * pw +
            c[9] * uu * pu + c[10] * vv * pv + c[11] * ww * pw + c[12] * uu * pv + c[13] * uu * pw +
            c[14] * vv * pu + c[15] * vv * pw + c[16] * ww * pu + c[17] * ww * pv + c[18] * pu * pv * pw;
          if (r > 1 + p) continue;
        }
        image[index] = z + cz > levelZ ? levelHu : huValue;
        if (writeLabel) label[index] = labelValue;
      }
    }
  }
}

function paintTube(target: PaintTarget, inverse: Float64Array, t: Tube): void {
  const grow = t.growPerMm ?? 0;
  const [zLo, zHi] = t.zRange;
  // Growth is bounded by the grid's own z extent, so bound the box by the largest radius inside it.
  const gridZ = gridZRange(target);
  const zMin = Math.max(zLo, gridZ[0]);
  const zMax = Math.min(zHi, gridZ[1]);
  if (zMin > zMax) return;
  const maxScale = 1 + grow * Math.max(0, zHi - zMin);
  const [cx, cy] = t.centre;
  const [rx, ry] = t.radii;
  const box = indexBoxOf(inverse, target.shape, [cx - rx * maxScale, cy - ry * maxScale, zMin], [cx + rx * maxScale, cy + ry * maxScale, zMax]);
  if (!box) return;
  const { affine: a, image } = target;
  const [, n1, n2] = target.shape;
  const irx = 1 / rx, iry = 1 / ry;
  const shellInner2 = t.shell ? Math.max(0, 1 - t.shell.mm / rx) ** 2 : -1;
  const shellHu = t.shell ? t.shell.hu : t.hu;
  const period = t.period;
  const pitchInv = period ? 1 / period.pitchMm : 0;
  const from = period ? period.fromMm * pitchInv : 0;
  const to = period ? period.toMm * pitchInv : 1;
  const phase = period ? period.phaseMm : 0;
  const offHu = period?.offHu ?? null;
  const [i0, i1, j0, j1, k0, k1] = box;
  for (let i = i0; i <= i1; i++) {
    for (let j = j0; j <= j1; j++) {
      let x = a[0] * i + a[1] * j + a[2] * k0 + a[3] - cx;
      let y = a[4] * i + a[5] * j + a[6] * k0 + a[7] - cy;
      let z = a[8] * i + a[9] * j + a[10] * k0 + a[11];
      let index = (i * n1 + j) * n2 + k0;
      for (let k = k0; k <= k1; k++, index++, x += a[2], y += a[6], z += a[10]) {
        if (z < zLo || z > zHi) continue;
        const ex = x * irx, ey = y * iry;
        let d2 = ex * ex + ey * ey;
        if (grow !== 0) {
          const scale = 1 + grow * (zHi - z);
          d2 /= scale * scale;
        }
        if (d2 > 1) continue;
        if (period) {
          const f = fracPositive((z - phase) * pitchInv);
          if (f < from || f >= to) {
            if (offHu !== null) image[index] = offHu;
            continue;
          }
        }
        image[index] = d2 > shellInner2 && shellInner2 >= 0 ? shellHu : t.hu;
      }
    }
  }
}

function gridZRange(target: PaintTarget): [number, number] {
  const a = target.affine;
  const [n0, n1, n2] = target.shape;
  let lo = a[11], hi = a[11];
  for (const [col, n] of [[8, n0], [9, n1], [10, n2]] as const) {
    const step = a[col] * (n - 1);
    if (step < 0) lo += step;
    else hi += step;
  }
  return [lo, hi];
}

/** Draws the anatomy: fills `image` (HU) everywhere and sets `label` inside the labelled solids. */
export function paintAnatomy(target: PaintTarget, anatomy: Anatomy): void {
  paintBody(target, anatomy.body);
  const inverse = invert4(target.affine);
  for (const structure of anatomy.structures) {
    if (structure.kind === 'blob') paintBlob(target, inverse, structure);
    else paintTube(target, inverse, structure);
  }
}
