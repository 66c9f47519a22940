/**
 * A bar chart of the bench table as a PNG, with no dependency beyond node:zlib: an RGB canvas,
 * filled rectangles, a 5x7 bitmap font (upper case, digits, a little punctuation), encoded by the
 * package's one PNG encoder (src/preview/encode-png.ts). One panel per table row, one
 * horizontal bar per column on that panel's own linear scale starting at zero; columns that could
 * not run are written as "n/a", never drawn.
 */
import { encodePng } from '../preview/encode-png.js';

/** 5x7 glyphs, one hex byte per row, bit 4 = leftmost pixel. Lower case draws as upper case. */
const FONT: Record<string, string> = {
  '0': '0e11131519110e', '1': '040c040404040e', '2': '0e11010204081f', '3': '1f02040201110e',
  '4': '02060a121f0202', '5': '1f101e0101110e', '6': '0608101e11110e', '7': '1f010204080808',
  '8': '0e11110e11110e', '9': '0e11110f01020c', A: '0e11111f111111', B: '1e11111e11111e',
  C: '0e11101010110e', D: '1c12111111121c', E: '1f10101e10101f', F: '1f10101e101010',
  G: '0e11101711110f', H: '1111111f111111', I: '0e04040404040e', J: '0702020202120c',
  K: '11121418141211', L: '1010101010101f', M: '111b1515111111', N: '11111915131111',
  O: '0e11111111110e', P: '1e11111e101010', Q: '0e11111115120d', R: '1e11111e141211',
  S: '0f10100e01011e', T: '1f040404040404', U: '1111111111110e', V: '11111111110a04',
  W: '1111111515150a', X: '11110a040a1111', Y: '1111110a040404', Z: '1f01020408101f',
  ' ': '00000000000000', '.': '00000000000c0c', ',': '000000000c0408', '-': '0000001f000000',
  '(': '02040808080402', ')': '08040202020408', ':': '000c0c000c0c00', '/': '00010204081000',
  '%': '18190204081303', '+': '0004041f040400', _: '0000000000001f', '=': '00001f001f0000',
  '?': '0e110102040004', '<': '02040810080402', '>': '08040201020408', "'": '04040800000000',
};

const GLYPHS = new Map<string, number[]>(
  Object.entries(FONT).map(([ch, hex]) => [ch, Array.from({ length: 7 }, (_, r) => parseInt(hex.slice(2 * r, 2 * r + 2), 16))]),
);

export type Rgb = readonly [number, number, number];

/** An RGB raster with the few drawing operations a bar chart needs. */
export class Canvas {
  readonly pixels: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [255, 255, 255],
  ) {
    this.pixels = new Uint8Array(width * height * 3);
    this.fillRect(0, 0, width, height, background);
  }

  fillRect(x: number, y: number, w: number, h: number, color: Rgb): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) {
      for (let xx = x0; xx < x1; xx++) {
        const p = (yy * this.width + xx) * 3;
        this.pixels[p] = color[0];
        this.pixels[p + 1] = color[1];
        this.pixels[p + 2] = color[2];
      }
    }
  }

  /** Draws `text` with its top-left corner at (x, y); each font pixel is `scale` x `scale`. */
  text(x: number, y: number, text: string, color: Rgb, scale = 2): void {
    let cx = x;
    for (const ch of text.toUpperCase()) {
      const rows = GLYPHS.get(ch) ?? GLYPHS.get('?');
      if (rows) {
        rows.forEach((bits, r) => {
          for (let c = 0; c < 5; c++) if (bits & (0x10 >> c)) this.fillRect(cx + c * scale, y + r * scale, scale, scale, color);
        });
      }
      cx += 6 * scale;
    }
  }

  static textWidth(text: string, scale = 2): number {
    return text.length * 6 * scale - scale;
  }

  toPng(): Uint8Array {
    return encodePng({ width: this.width, height: this.height, channels: 3, data: this.pixels }, { level: 9 });
  }
}

export interface ChartBar {
  label: string;
  /** Bar length; null draws `note` (e.g. "n/a") instead of a bar. */
  value: number | null;
  /** Text after the bar (or in its place). */
  note: string;
}

export interface ChartPanel {
  title: string;
  bars: ChartBar[];
}

export interface BarChartSpec {
  title: string;
  subtitle?: string;
  panels: ChartPanel[];
  width?: number;
}

const PALETTE: Rgb[] = [
  [68, 114, 196],
  [237, 125, 49],
  [112, 173, 71],
  [165, 105, 189],
  [255, 192, 0],
  [91, 155, 213],
  [158, 72, 14],
  [99, 99, 99],
];
const INK: Rgb = [30, 30, 30];
const MUTED: Rgb = [130, 130, 130];
const AXIS: Rgb = [200, 200, 200];

/** Renders horizontal bar panels (one per table row) into a PNG. */
export function renderBarChart(spec: BarChartSpec): Uint8Array {
  const width = spec.width ?? 1000;
  const scale = 2;
  const line = 8 * scale;
  const barHeight = 2 * line - 6;
  const labelWidth = Math.max(...spec.panels.flatMap((p) => p.bars.map((b) => Canvas.textWidth(b.label, scale))), 0) + 16;
  // Only notes that follow a bar limit the bar length; an "n/a" note has the whole width.
  const noteWidth = Math.max(...spec.panels.flatMap((p) => p.bars.filter((b) => b.value !== null).map((b) => Canvas.textWidth(b.note, scale))), 0) + 16;
  const left = 16;
  const barLeft = left + labelWidth;
  const barMax = Math.max(40, width - barLeft - noteWidth - 16);
  const headerHeight = 16 + line * (spec.subtitle ? 3 : 2);
  const panelHeight = (p: ChartPanel): number => 2 * line + p.bars.length * (barHeight + 6) + line;
  const height = headerHeight + spec.panels.reduce((h, p) => h + panelHeight(p), 0) + 8;
  const canvas = new Canvas(width, height);
  canvas.text(left, 16, spec.title, INK, scale);
  if (spec.subtitle) canvas.text(left, 16 + 1.5 * line, spec.subtitle, MUTED, scale);
  let y = headerHeight;
  for (const panel of spec.panels) {
    canvas.text(left, y, panel.title, INK, scale);
    y += 2 * line;
    const max = Math.max(0, ...panel.bars.map((b) => b.value ?? 0));
    canvas.fillRect(barLeft - 1, y - 4, 1, panel.bars.length * (barHeight + 6) + 2, AXIS);
    panel.bars.forEach((bar, i) => {
      const top = y + i * (barHeight + 6);
      canvas.text(left, top + (barHeight - 7 * scale) / 2, bar.label, INK, scale);
      let noteX = barLeft + 8;
      if (bar.value !== null && max > 0) {
        const length = Math.max(1, (bar.value / max) * barMax);
        canvas.fillRect(barLeft, top, length, barHeight, PALETTE[i % PALETTE.length]);
        noteX = barLeft + length + 8;
      }
      canvas.text(noteX, top + (barHeight - 7 * scale) / 2, bar.note, bar.value === null ? MUTED : INK, scale);
    });
    y += panel.bars.length * (barHeight + 6) + line;
  }
  return canvas.toPng();
}
