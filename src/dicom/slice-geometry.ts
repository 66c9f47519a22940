/**
 * Slice order and affine of a series, with the checks neither dicom-parser nor dcmjs makes.
 *
 * Voxel layout (the one dcm2niix writes, so a DICOM series and its dcm2niix NIfTI give the same
 * Volume): i = column, j = Rows - 1 - row (dcm2niix flips rows), k = slice in ascending order of
 * ImagePositionPatient projected on the slice normal (row direction x column direction).
 * PixelSpacing is [spacing between rows, spacing between columns]: a step along the row direction
 * (one column) is PixelSpacing[1]. The slice step is (IPP_last - IPP_first) / (n - 1), which need not
 * be along the normal: gantry tilt gives a sheared (oblique) affine, kept as such.
 */
import type { Vec3 } from '../volume/volume.js';
import { dicomInvalid } from './dicom-errors.js';
import type { FrameHeader } from './parse-instance.js';

/** Relative tolerance on gaps between slices (1 %, as the design note suggests) and on spacing. */
const GAP_TOLERANCE = 0.01;
/** Absolute tolerance in mm for positions (DS values carry a few decimals). */
const POSITION_TOLERANCE_MM = 1e-3;
const ORIENTATION_TOLERANCE = 1e-4;

export interface SliceGeometry {
  /** order[k] = index into the frames given, for slice k. */
  order: number[];
  /** Row-major 4x4, voxel -> RAS+ mm. */
  affine: Float64Array;
  spacingMm: Vec3;
  /** Angle between the slice step and the normal, degrees (0 unless gantry tilt). */
  tiltDeg: number;
  /** Distance between neighbouring slice planes along the normal, mm. */
  sliceGapMm: number;
  /** The slice normal (LPS) and the IOP the series shares. */
  iop: number[];
  pixelSpacing: [number, number];
}

const sub = (a: readonly number[], b: readonly number[]): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: readonly number[], b: readonly number[]): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const norm = (a: readonly number[]): number => Math.sqrt(dot(a, a));

/** Sorts and checks the frames of one series; `rows` is needed for the row flip. */
export function sliceGeometry(frames: readonly FrameHeader[], rows: number): SliceGeometry {
  const n = frames.length;
  if (n < 2) throw dicomInvalid(`The series has ${n} slice${n === 1 ? '' : 's'}: a volume needs at least 2`);
  frames.forEach((f, index) => {
    if (!f.ipp || !f.iop || !f.pixelSpacing) {
      throw dicomInvalid(`Slice ${index + 1} lacks ${!f.ipp ? 'ImagePositionPatient' : !f.iop ? 'ImageOrientationPatient' : 'PixelSpacing'}`);
    }
  });
  const iop = frames[0].iop!;
  const spacing = frames[0].pixelSpacing!;
  for (const f of frames) {
    if (f.iop!.some((v, d) => Math.abs(v - iop[d]) > ORIENTATION_TOLERANCE)) {
      throw dicomInvalid(`Mixed orientations in the series: ImageOrientationPatient ${iop.join('\\')} and ${f.iop!.join('\\')}`);
    }
    if (f.pixelSpacing!.some((v, d) => Math.abs(v - spacing[d]) > ORIENTATION_TOLERANCE * spacing[d])) {
      throw dicomInvalid(`Mixed PixelSpacing in the series: ${spacing.join('\\')} and ${f.pixelSpacing!.join('\\')}`);
    }
  }
  if (!(spacing[0] > 0 && spacing[1] > 0)) throw dicomInvalid(`PixelSpacing ${spacing.join('\\')} is not positive`);
  const rowDir = iop.slice(0, 3);
  const colDir = iop.slice(3, 6);
  if (Math.abs(norm(rowDir) - 1) > 1e-3 || Math.abs(norm(colDir) - 1) > 1e-3 || Math.abs(dot(rowDir, colDir)) > 1e-3) {
    throw dicomInvalid(`ImageOrientationPatient ${iop.join('\\')} is not two orthogonal unit vectors`);
  }
  const normal: Vec3 = [
    rowDir[1] * colDir[2] - rowDir[2] * colDir[1],
    rowDir[2] * colDir[0] - rowDir[0] * colDir[2],
    rowDir[0] * colDir[1] - rowDir[1] * colDir[0],
  ];
  const along = frames.map((f) => dot(f.ipp!, normal));
  const order = along.map((_, index) => index).sort((a, b) => along[a] - along[b]);
  const ipp = order.map((index) => frames[index].ipp!);
  for (let k = 1; k < n; k++) {
    if (along[order[k]] - along[order[k - 1]] < POSITION_TOLERANCE_MM) {
      throw dicomInvalid(`Duplicate slice position ${ipp[k].join('\\')} (two slices ${(along[order[k]] - along[order[k - 1]]).toFixed(4)} mm apart)`);
    }
  }
  const step = sub(ipp[n - 1], ipp[0]).map((v) => v / (n - 1)) as Vec3;
  const gap = dot(step, normal);
  for (let k = 1; k < n; k++) {
    const g = along[order[k]] - along[order[k - 1]];
    if (Math.abs(g - gap) > GAP_TOLERANCE * gap + POSITION_TOLERANCE_MM) {
      throw dicomInvalid(
        `Missing slices or irregular spacing: slices ${k} and ${k + 1} are ${g.toFixed(3)} mm apart where the series averages ${gap.toFixed(3)} mm`,
      );
    }
    // The positions must also lie on one line (a constant tilt), not wander in-plane.
    const expected = ipp[0].map((v, d) => v + k * step[d]);
    if (norm(sub(ipp[k], expected)) > GAP_TOLERANCE * norm(step) + POSITION_TOLERANCE_MM) {
      throw dicomInvalid(`Slice ${k + 1} at ${ipp[k].join('\\')} is off the line of the other slice positions`);
    }
  }
  // LPS affine of the dcm2niix layout, then LPS -> RAS by negating the x and y rows.
  const colStep = rowDir.map((v) => v * spacing[1]);
  const rowStep = colDir.map((v) => -v * spacing[0]);
  const origin = ipp[0].map((v, d) => v + (rows - 1) * colDir[d] * spacing[0]);
  const lps = [colStep, rowStep, step];
  const affine = new Float64Array(16);
  for (let r = 0; r < 3; r++) {
    const sign = r < 2 ? -1 : 1;
    for (let c = 0; c < 3; c++) affine[r * 4 + c] = sign * lps[c][r];
    affine[r * 4 + 3] = sign * origin[r];
  }
  affine[15] = 1;
  const tiltDeg = (Math.acos(Math.min(1, Math.abs(gap) / norm(step))) * 180) / Math.PI;
  return { order, affine, spacingMm: [spacing[1], spacing[0], norm(step)], tiltDeg, sliceGapMm: gap, iop, pixelSpacing: spacing };
}
