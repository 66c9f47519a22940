/**
 * Readers for test/fixtures/model/, written by scripts/fixtures/make_unet_fixtures.py from the
 * real MONAI 1.4.0 UNet in torch.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { UnetConfig } from '../../../src/model/unet-architecture.js';

export const MODEL_FIXTURES = fileURLToPath(new URL('../../fixtures/model/', import.meta.url));

interface MonaiConfig {
  in_channels: number;
  out_channels: number;
  channels: number[];
  strides: number[];
  num_res_units: number;
}

export interface StateDictFixture {
  config: MonaiConfig;
  parameterCount: number;
  keys: Array<[string, number[]]>;
}

export interface ParityCase {
  case: string;
  config: string;
  seed: number;
  inputShape: number[];
  outputShape: number[];
  weightChecksums?: Record<string, { bitsSum: number; first: number; middle: number; last: number }>;
}

export function readJson<T>(name: string): T {
  return JSON.parse(readFileSync(MODEL_FIXTURES + name, 'utf8')) as T;
}

/** A little-endian float32 .bin (copied, so the array is aligned and owned). */
export function readFloat32(name: string): Float32Array {
  const bytes = readFileSync(MODEL_FIXTURES + name);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

export const stateDictFixtures = (): Record<string, StateDictFixture> => readJson('unet-state-dict.json');
export const parityCases = (): ParityCase[] => readJson<{ cases: ParityCase[] }>('unet-seeded.json').cases;

/** MONAI constructor arguments -> UnetConfig (kernel sizes are MONAI's defaults, 3). */
export function toUnetConfig(c: MonaiConfig): UnetConfig {
  return {
    inChannels: c.in_channels,
    outChannels: c.out_channels,
    channels: c.channels,
    strides: c.strides,
    kernelSize: 3,
    upKernelSize: 3,
    numResUnits: c.num_res_units,
  };
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
