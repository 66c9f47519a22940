/**
 * Readers for test/fixtures/sliding-window (written by scripts/fixtures/make_sliding_window_fixtures.py
 * with MONAI 1.4.0 and torch), and the JS twin of the fixture script's fake network.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BatchResult, InferenceBackend } from '../../../src/inference/backend.js';
import type { Shape3 } from '../../../src/volume/volume.js';

const DIR = fileURLToPath(new URL('../../fixtures/sliding-window/', import.meta.url));

export interface SlidingCase {
  name: string;
  shape: Shape3;
  roiSize: Shape3;
  overlap: number;
  swBatchSize: number;
  mode: 'constant' | 'gaussian';
  sigmaScale: number;
  padValue: number;
  channels: number;
  inputFile: string;
  outputFile: string;
}

export interface FixtureIndex {
  windows: { size: number; roi: number; overlap: number; starts: number[] }[];
  importance: { roi: Shape3; sigmaScale: number; file: string }[];
  importance96: { roi: Shape3; sigmaScale: number; indexFile: string; valueFile: string; profileFile: string; min: number; max: number };
  sliding: SlidingCase[];
  softmax: { channels: number; count: number; logitsFile: string; probsFile: string }[];
  argmax: { channels: number; count: number; probsFile: string; labelsFile: string }[];
}

export const fixtureIndex: FixtureIndex = JSON.parse(readFileSync(DIR + 'index.json', 'utf8'));

function bytes(file: string): Buffer {
  return readFileSync(DIR + file);
}

/** Copies into a fresh, aligned buffer (Buffer slices from the pool may be unaligned). */
export function readF32(file: string): Float32Array {
  const b = bytes(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function readI32(file: string): Int32Array {
  const b = bytes(file);
  return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function readU8(file: string): Uint8Array {
  return new Uint8Array(bytes(file));
}

/** The fixture script's `window_terms`: exact in float32 (integers scaled by powers of two). */
export function windowTerms(roi: Shape3): [Float32Array, Float32Array] {
  const [r0, r1, r2] = roi;
  const t0 = new Float32Array(r0 * r1 * r2);
  const t1 = new Float32Array(r0 * r1 * r2);
  let o = 0;
  for (let a = 0; a < r0; a++) {
    for (let b = 0; b < r1; b++) {
      for (let c = 0; c < r2; c++, o++) {
        t0[o] = ((a * 64 + b * 8 + c) % 29) / 16 - 0.75;
        t1[o] = ((a * 7 + b * 3 + c * 5) % 11) * 0.25 - 1;
      }
    }
  }
  return [t0, t1];
}

const F32_03 = Math.fround(0.3);

/**
 * Per-voxel value of the fake network on input x at window-local flat index `local`:
 * out0 = (x*2 + 1) + t0, out1 = x*0.3 - t1, out2 = x*x, each op rounded to float32 as torch does.
 */
export function fakeNetworkValue(c: number, x: number, local: number, terms: [Float32Array, Float32Array]): number {
  if (c === 0) return Math.fround(Math.fround(x * 2 + 1) + terms[0][local]);
  if (c === 1) return Math.fround(Math.fround(x * F32_03) - terms[1][local]);
  return Math.fround(x * x);
}

export interface RecordingBackend extends InferenceBackend {
  /** Batch sizes of each run call, in order. */
  batches: number[];
  /** Copies of every window sent (including zero padding of a padded last batch). */
  windows: Float32Array[];
}

/** An InferenceBackend running the fake network, recording what it was given. */
export function fakeBackend(channels: number, roi: Shape3, record = false): RecordingBackend {
  const terms = windowTerms(roi);
  const roiVolume = roi[0] * roi[1] * roi[2];
  const backend: RecordingBackend = {
    name: 'onnxruntime',
    inputName: 'input_0',
    outputName: 'output_0',
    outputChannels: channels,
    description: 'fake network for tests',
    batches: [],
    windows: [],
    async run(input: Float32Array, batch: number, r: Shape3): Promise<BatchResult> {
      if (r.join() !== roi.join() || input.length !== batch * roiVolume) throw new Error('bad batch');
      backend.batches.push(batch);
      const logits = new Float32Array(batch * channels * roiVolume);
      for (let q = 0; q < batch; q++) {
        if (record) backend.windows.push(input.slice(q * roiVolume, (q + 1) * roiVolume));
        for (let c = 0; c < channels; c++) {
          const o = (q * channels + c) * roiVolume;
          for (let v = 0; v < roiVolume; v++) logits[o + v] = fakeNetworkValue(c, input[q * roiVolume + v], v, terms);
        }
      }
      return { logits, timings: { computeMs: 1, h2dMs: 0.25, d2hMs: 0.5 } };
    },
    async close(): Promise<void> {},
  };
  return backend;
}
