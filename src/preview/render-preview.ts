/**
 * A preview a person can check at a glance: axial, coronal and sagittal slices through the mask's
 * centroid (or the volume centre when the mask is empty), side by side on a CT window, with each
 * mask's outline drawn in its colour.
 *
 * Slices are taken on the voxel grid reoriented to RAS by flips and permutations only (as the
 * pipeline's first step, no interpolation), and shown in radiological convention: axial and
 * coronal with the patient's right on the left of the screen, anterior (axial) and superior
 * (coronal, sagittal) at the top, sagittal with anterior on the left. Pixels are square in mm
 * (nearest-neighbour sampling), so 5 mm slices do not look squashed.
 */
import { expectedRange, expectedType } from '../errors.js';
import { columnNorms, transformPoint } from '../volume/affine.js';
import { ioOrientation } from '../volume/orientation.js';
import type { Shape3, Vec3, Volume } from '../volume/volume.js';
import { encodePng, type RasterImage } from './encode-png.js';
import { writeFileAtomic } from '../write-file-atomic.js';

/** A mask on the image's grid (non-zero = inside) and the colour of its outline. */
export interface PreviewOverlay {
  mask: Uint8Array;
  color: [number, number, number];
}

export interface RenderPreviewOptions {
  /** Displayed HU range, black to white; default [-160, 240] (abdomen, W400 L40). */
  windowHu?: [number, number];
  /** Stored voxel index the three slices pass through; default the first non-empty mask's centroid, else the centre. */
  centreVoxel?: Vec3;
  /** Size in pixels of the longest physical extent; default 320. */
  panelPx?: number;
}

/** The rendered RGB raster and where its slices are. */
export interface PreviewImage extends RasterImage {
  channels: 3;
  /** Stored voxel index (i, j, k) the slices pass through. */
  centreVoxel: Shape3;
  /** The same point in world mm (RAS+). */
  centreMm: Vec3;
}

/** Red for a prediction, green for a reference: the colours the CLI uses. */
export const PREDICTION_COLOR: [number, number, number] = [255, 48, 48];
export const REFERENCE_COLOR: [number, number, number] = [48, 230, 48];

const GAP_PX = 6;

/** Mean voxel index of the non-zero voxels, null when there are none. */
export function maskCentroidVoxel(mask: Uint8Array, shape: Shape3): Vec3 | null {
  const [, n1, n2] = shape;
  let count = 0, si = 0, sj = 0, sk = 0;
  for (let index = 0; index < mask.length; index++) {
    if (mask[index] === 0) continue;
    const k = index % n2;
    const ij = (index - k) / n2;
    const j = ij % n1;
    count++;
    si += (ij - j) / n1;
    sj += j;
    sk += k;
  }
  return count === 0 ? null : [si / count, sj / count, sk / count];
}

interface Panel {
  width: number;
  height: number;
  /** Stored flat voxel index per pixel, row-major. */
  voxel: Int32Array;
}

/**
 * One panel: pixel (c, r) -> RAS index along the horizontal axis h and the vertical axis v (the
 * third RAS axis fixed), then RAS index -> stored index through the orientation.
 */
function buildPanel(
  h: number, hReversed: boolean, v: number, vReversed: boolean, fixedRas: Shape3,
  rasShape: Shape3, rasSpacing: Vec3, mmPerPx: number, toStored: (q: Shape3) => number,
): Panel {
  const width = Math.max(1, Math.round((rasShape[h] * rasSpacing[h]) / mmPerPx));
  const height = Math.max(1, Math.round((rasShape[v] * rasSpacing[v]) / mmPerPx));
  const voxel = new Int32Array(width * height);
  const q: Shape3 = [fixedRas[0], fixedRas[1], fixedRas[2]];
  const index = (pixel: number, axis: number, reversed: boolean) => {
    const t = Math.min(rasShape[axis] - 1, Math.floor(((pixel + 0.5) * mmPerPx) / rasSpacing[axis]));
    return reversed ? rasShape[axis] - 1 - t : t;
  };
  for (let r = 0; r < height; r++) {
    q[v] = index(r, v, vReversed);
    for (let c = 0; c < width; c++) {
      q[h] = index(c, h, hReversed);
      voxel[r * width + c] = toStored(q);
    }
  }
  return { width, height, voxel };
}

/** Renders the three-slice preview of `image` with the overlays' outlines. */
export function renderPreview(image: Volume, overlays: readonly PreviewOverlay[] = [], options: RenderPreviewOptions = {}): PreviewImage {
  if (typeof image !== 'object' || image === null || !(image.data instanceof Float32Array)) throw expectedType('a Volume', 'image', image);
  const shape = image.shape;
  const n = shape[0] * shape[1] * shape[2];
  if (image.data.length !== n) throw expectedRange(`${n} voxels`, 'image.data', image.data);
  if (!Array.isArray(overlays)) throw expectedType('an array of overlays', 'overlays', overlays);
  overlays.forEach((o, i) => {
    if (!(o.mask instanceof Uint8Array) || o.mask.length !== n) throw expectedType(`a Uint8Array of ${n} voxels`, `overlays[${i}].mask`, o.mask);
  });
  const [lo, hi] = options.windowHu ?? [-160, 240];
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) throw expectedRange('[low, high] with high > low', 'options.windowHu', options.windowHu);
  const panelPx = options.panelPx ?? 320;
  if (!Number.isInteger(panelPx) || panelPx < 16 || panelPx > 4096) throw expectedRange('an integer in 16..4096', 'options.panelPx', panelPx);

  const { axis, sign } = ioOrientation(image.affine);
  const norms = columnNorms(image.affine);
  const rasShape: Shape3 = [0, 0, 0];
  const rasSpacing: Vec3 = [0, 0, 0];
  for (let i = 0; i < 3; i++) {
    rasShape[axis[i]] = shape[i];
    rasSpacing[axis[i]] = norms[i] || 1;
  }
  const [, n1, n2] = shape;
  const toStored = (q: Shape3): number => {
    const p0 = sign[0] > 0 ? q[axis[0]] : shape[0] - 1 - q[axis[0]];
    const p1 = sign[1] > 0 ? q[axis[1]] : shape[1] - 1 - q[axis[1]];
    const p2 = sign[2] > 0 ? q[axis[2]] : shape[2] - 1 - q[axis[2]];
    return (p0 * n1 + p1) * n2 + p2;
  };

  let centre = options.centreVoxel;
  if (centre === undefined) {
    for (const overlay of overlays) {
      const c = maskCentroidVoxel(overlay.mask, shape);
      if (c) {
        centre = c;
        break;
      }
    }
  }
  centre ??= [(shape[0] - 1) / 2, (shape[1] - 1) / 2, (shape[2] - 1) / 2];
  // Rounded on the RAS grid, so the same patient gives the same picture whatever its storage order.
  const fixedRas: Shape3 = [0, 0, 0];
  const centreVoxel: Shape3 = [0, 0, 0];
  for (let i = 0; i < 3; i++) {
    const c = Math.min(shape[i] - 1, Math.max(0, centre[i]));
    const q = Math.round(sign[i] > 0 ? c : shape[i] - 1 - c);
    fixedRas[axis[i]] = q;
    centreVoxel[i] = sign[i] > 0 ? q : shape[i] - 1 - q;
  }

  const mmPerPx = Math.max(rasShape[0] * rasSpacing[0], rasShape[1] * rasSpacing[1], rasShape[2] * rasSpacing[2]) / panelPx;
  const panels = [
    buildPanel(0, true, 1, true, fixedRas, rasShape, rasSpacing, mmPerPx, toStored), // axial
    buildPanel(0, true, 2, true, fixedRas, rasShape, rasSpacing, mmPerPx, toStored), // coronal
    buildPanel(1, true, 2, true, fixedRas, rasShape, rasSpacing, mmPerPx, toStored), // sagittal
  ];
  const width = panels.reduce((w, p) => w + p.width, 0) + GAP_PX * (panels.length - 1);
  const height = Math.max(...panels.map((p) => p.height));
  const data = new Uint8Array(width * height * 3);
  const scale = 255 / (hi - lo);
  let x0 = 0;
  for (const panel of panels) {
    const { width: pw, height: ph, voxel } = panel;
    for (let r = 0; r < ph; r++) {
      for (let c = 0; c < pw; c++) {
        const value = image.data[voxel[r * pw + c]];
        const grey = value <= lo ? 0 : value >= hi ? 255 : Math.round((value - lo) * scale);
        const o = (r * width + x0 + c) * 3;
        data[o] = data[o + 1] = data[o + 2] = grey;
      }
    }
    // Where outlines meet, colours combine by per-channel maximum (red + green = yellow).
    const outlined = new Uint8Array(pw * ph);
    for (const overlay of overlays) {
      const inside = (r: number, c: number) => overlay.mask[voxel[r * pw + c]] !== 0;
      for (let r = 0; r < ph; r++) {
        for (let c = 0; c < pw; c++) {
          if (!inside(r, c)) continue;
          // Outline: inside pixels with a 4-neighbour outside (the panel border counts as outside).
          const edge = r === 0 || c === 0 || r === ph - 1 || c === pw - 1 || !inside(r - 1, c) || !inside(r + 1, c) || !inside(r, c - 1) || !inside(r, c + 1);
          if (!edge) continue;
          const o = (r * width + x0 + c) * 3;
          const mix = outlined[r * pw + c] === 1;
          for (let ch = 0; ch < 3; ch++) data[o + ch] = mix ? Math.max(data[o + ch], overlay.color[ch]) : overlay.color[ch];
          outlined[r * pw + c] = 1;
        }
      }
    }
    x0 += pw + GAP_PX;
  }
  return { width, height, channels: 3, data, centreVoxel, centreMm: transformPoint(image.affine, centreVoxel) };
}

/**
 * Renders the preview and writes it as a PNG (atomically).
 * @example
 * await writePreviewPng('preview.png', volume, [{ mask: result.mask.data, color: PREDICTION_COLOR }]);
 */
export async function writePreviewPng(file: string, image: Volume, overlays: readonly PreviewOverlay[] = [], options: RenderPreviewOptions = {}): Promise<PreviewImage> {
  if (typeof file !== 'string' || file.length === 0) throw expectedType('a file path', 'file', file);
  const preview = renderPreview(image, overlays, options);
  await writeFileAtomic(file, encodePng(preview));
  return preview;
}
