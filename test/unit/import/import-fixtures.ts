/**
 * Readers for test/fixtures/import/, written by scripts/fixtures/make_checkpoint_fixtures.py with
 * torch 1.13 and MONAI 1.4.0 (a tiny member of the bundle's UNet family, 148 keys).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { UnetConfig } from '../../../src/model/unet-architecture.js';

export const IMPORT_FIXTURES = fileURLToPath(new URL('../../fixtures/import/', import.meta.url));
export const TINY_BUNDLE = `${IMPORT_FIXTURES}bundle-tiny`;

export interface TensorStats {
  shape: number[];
  dtype: string;
  sum: number;
  first: number;
  last: number;
}

export interface ImportReference {
  config: { in_channels: number; out_channels: number; channels: number[]; strides: number[]; num_res_units: number };
  keys: string[];
  state: Record<string, TensorStats>;
  mixed: Record<string, TensorStats>;
  mixedDtypes: Record<string, string>;
  onnx: Array<{ file: string; inputs: Array<[string, Array<number | string>]>; outputs: Array<[string, Array<number | string>]>; ops: string[] }>;
  refInputShape: number[];
  refOutputShape: number[];
}

export const reference = (): ImportReference => JSON.parse(readFileSync(`${IMPORT_FIXTURES}reference.json`, 'utf8')) as ImportReference;

export function tinyConfig(): UnetConfig {
  const c = reference().config;
  return { inChannels: c.in_channels, outChannels: c.out_channels, channels: c.channels, strides: c.strides, kernelSize: 3, upKernelSize: 3, numResUnits: c.num_res_units };
}

export const fixtureBytes = (name: string): Uint8Array => new Uint8Array(readFileSync(IMPORT_FIXTURES + name));

/** A little-endian float32 .bin. */
export function fixtureFloat32(name: string): Float32Array {
  const bytes = readFileSync(IMPORT_FIXTURES + name);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

/** Sum in float64 of float32 values, as the fixture script computes it (sum order differs: compare with a tolerance). */
export const sum64 = (values: Float32Array): number => values.reduce((a, b) => a + b, 0);

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
