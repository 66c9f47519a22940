/**
 * The in-memory volume every module exchanges.
 *
 * Layout: `data` is C order over the NIfTI voxel axes (i, j, k): voxel (i, j, k) lives at
 * `(i * shape[1] + j) * shape[2] + k`, k fastest. This is the layout of the network tensor
 * (spec: `[n][c][d0][d1][d2]`); NIfTI files store i fastest, so the reader/writer transpose.
 * `affine` maps voxel index (i, j, k, 1) to RAS+ world millimetres, row-major 4x4.
 */
export type Shape3 = [number, number, number];
export type Vec3 = [number, number, number];

export interface Volume {
  data: Float32Array;
  shape: Shape3;
  /** Column norms of the affine's 3x3 part (voxel size in mm). */
  spacingMm: Vec3;
  /** Row-major 4x4, voxel index -> RAS+ world mm. */
  affine: Float64Array;
}

/** Number of voxels of a shape. */
export function voxelCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
