/**
 * What the fuzzer feeds: each target has seed inputs (the repository's own fixtures: NIfTI-1/2,
 * plain, gzip and big-endian; torch checkpoints; ONNX exports; MONAI bundle configs; a model
 * manifest) and a run function that takes one mutated input through the package's real entry point.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, gunzipSync, gzipSync } from 'node:zlib';
import type { InferenceBackend } from '../inference/backend.js';
import { inspectOnnx } from '../model/inspect-onnx.js';
import { loadModel } from '../model/load-model.js';
import { BUNDLE_PIPELINE } from '../model/manifest.js';
import { parseBundleConfig, readBundleConfig } from '../model/bundle-config.js';
import { unpickle } from '../model/pickle-reader.js';
import { readTorchCheckpoint } from '../model/torch-checkpoint.js';
import { readZipDirectory, readZipEntry } from '../model/zip-reader.js';
import { readNifti } from '../nifti/read-nifti.js';
import { segmentVolume } from '../segment-volume.js';
import { DEFAULT_VOLUME_LIMITS } from '../volume/volume-limits.js';
import { mutate, mutateJson, type Random } from './mutate.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = path.join(ROOT, 'test', 'fixtures');

export interface FuzzTarget {
  name: string;
  /** Builds one mutated input from the seeds. */
  make(random: Random): Uint8Array;
  /** Runs it; resolves or throws. */
  run(input: Uint8Array): Promise<unknown>;
}

const fixture = (...parts: string[]): Uint8Array => new Uint8Array(readFileSync(path.join(FIXTURES, ...parts)));
const pickOne = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)];
const isGzip = (b: Uint8Array): boolean => b.length > 2 && b[0] === 0x1f && b[1] === 0x8b;

function niftiSeeds(): Uint8Array[] {
  const dir = path.join(FIXTURES, 'nifti');
  return readdirSync(dir).filter((n) => /\.nii(\.gz)?$/.test(n)).sort().map((n) => fixture('nifti', n));
}

/** A mutated NIfTI: gzip seeds are mutated inside the stream half the time, so header damage gets through. */
function makeNifti(seeds: Uint8Array[], random: Random): Uint8Array {
  const seed = pickOne(random, seeds);
  if (isGzip(seed) && random() < 0.6) return gzipSync(mutate(gunzipSync(seed), random, 544), { level: 1 });
  return mutate(seed, random, 544);
}

/** A backend that answers instantly with zero logits: the pipeline around the network, fuzzed at speed. */
const zeroBackend: InferenceBackend = {
  name: 'onnxruntime',
  inputName: 'input',
  outputName: 'output',
  outputChannels: 2,
  description: 'fuzz: zero logits',
  run: async (input, batch, roi) => ({ logits: new Float32Array(batch * 2 * roi[0] * roi[1] * roi[2]), timings: { computeMs: 0 } }),
  close: async () => undefined,
};

/** The seed checkpoints' data.pkl entries. */
function pickleSeeds(checkpoints: Uint8Array[]): Uint8Array[] {
  return checkpoints.map((bytes) => {
    const entries = readZipDirectory(bytes);
    const pkl = entries.find((e) => e.name.endsWith('data.pkl'));
    return readZipEntry(bytes, pkl!).slice();
  });
}

/**
 * One stored entry (data.pkl half the time) mutated in place, same length, with the CRC-32 in its
 * local header and central directory entry recomputed: damage the CRC check would otherwise stop.
 */
function mutateEntry(seed: Uint8Array, random: Random): Uint8Array {
  const bytes = seed.slice();
  const entries = readZipDirectory(bytes).filter((e) => e.method === 0 && e.compressedSize > 0);
  const pkl = entries.find((e) => e.name.endsWith('data.pkl'));
  const entry = pkl && random() < 0.5 ? pkl : pickOne(random, entries);
  const data = readZipEntry(bytes, entry);
  const start = data.byteOffset - bytes.byteOffset;
  const changed = mutate(data, random, 1 << 16);
  const same = new Uint8Array(data.length);
  same.set(changed.subarray(0, data.length));
  bytes.set(same, start);
  const crc = crc32(same) >>> 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(entry.localHeaderOffset + 14, crc, true);
  // The central directory entry that points at this local header.
  for (let p = bytes.length - 22; p >= 0; p--) {
    if (view.getUint32(p, true) === 0x02014b50 && view.getUint32(p + 42, true) === entry.localHeaderOffset) {
      view.setUint32(p + 16, crc, true);
      break;
    }
  }
  return bytes;
}

/** A mutated JSON text: structured (type-confused values) or byte-level damage. */
function makeJsonText(seeds: unknown[], random: Random): Uint8Array {
  const seed = pickOne(random, seeds);
  if (random() < 0.7) return new TextEncoder().encode(JSON.stringify(mutateJson(seed, random)) ?? 'null');
  return mutate(new TextEncoder().encode(JSON.stringify(seed, null, 1)), random, 4096);
}

/** Every target, built lazily (seeds are read once per process). */
export function fuzzTargets(): FuzzTarget[] {
  const nifti = niftiSeeds();
  const checkpoints = [fixture('import', 'ckpt-mixed.pt'), fixture('import', 'bundle-tiny', 'models', 'model.pt')];
  const pickles = pickleSeeds(checkpoints);
  const onnx = [fixture('import', 'tiny-onnx-export.onnx'), fixture('import', 'tiny-trt-export.onnx')];
  const configDir = path.join(FIXTURES, 'import', 'spleen-configs');
  const inference = JSON.parse(readFileSync(path.join(configDir, 'inference.json'), 'utf8'));
  const metadata = JSON.parse(readFileSync(path.join(configDir, 'metadata.json'), 'utf8'));
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-fuzz-'));
  // A model directory around the small ONNX, for mutated manifests.
  const manifestSeed = JSON.parse(readFileSync(path.join(ROOT, 'models', 'spleen-phantom-demo', 'model.json'), 'utf8'));
  manifestSeed.onnx = { file: 'model.onnx', sha256: createHash('sha256').update(onnx[0]).digest('hex') };
  writeFileSync(path.join(scratch, 'model.onnx'), onnx[0]);
  const bundleDir = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-fuzz-bundle-'));
  mkdirSync(path.join(bundleDir, 'configs'));
  const segmentParams = { ...BUNDLE_PIPELINE, roiSize: [16, 16, 16] as [number, number, number] };
  const segmentLimits = { ...DEFAULT_VOLUME_LIMITS, maxResampledVoxels: 2 ** 21, maxWindows: 256 };

  return [
    { name: 'nifti', make: (r) => makeNifti(nifti, r), run: (b) => readNifti(b) },
    {
      name: 'nifti-segment',
      make: (r) => makeNifti(nifti, r),
      run: async (b) => {
        const { volume } = await readNifti(b);
        return segmentVolume(volume, zeroBackend, segmentParams, {}, segmentLimits);
      },
    },
    {
      name: 'checkpoint',
      // Half the cases damage one entry and fix its CRC-32, so the damage reaches the pickle and tensor readers.
      make: (r) => (r() < 0.5 ? mutate(pickOne(r, checkpoints), r, 1024) : mutateEntry(pickOne(r, checkpoints), r)),
      run: async (b) => readTorchCheckpoint(b),
    },
    {
      name: 'zip',
      make: (r) => {
        const seed = pickOne(r, checkpoints);
        // Half the time at the central directory, at the end of the file.
        return r() < 0.5 ? mutate(seed, r, 1024) : mutate(seed.slice().reverse(), r, 4096).reverse();
      },
      run: async (b) => {
        for (const entry of readZipDirectory(b)) readZipEntry(b, entry);
      },
    },
    // Torch's persistent ids (storages) resolve to themselves, as a loader's would to a stand-in.
    { name: 'pickle', make: (r) => mutate(pickOne(r, pickles), r, 1 << 16), run: async (b) => unpickle(b, { persistentLoad: (pid) => pid }) },
    { name: 'onnx', make: (r) => mutate(pickOne(r, onnx), r, 2048), run: async (b) => inspectOnnx(b) },
    {
      name: 'bundle-config',
      make: (r) => makeJsonText([inference], r),
      run: async (b) => {
        const text = new TextDecoder().decode(b);
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          // Not JSON: through the file reader, which must say so with a code.
          writeFileSync(path.join(bundleDir, 'configs', 'inference.json'), b);
          writeFileSync(path.join(bundleDir, 'configs', 'metadata.json'), JSON.stringify(metadata));
          return readBundleConfig(bundleDir);
        }
        return parseBundleConfig(parsed, metadata);
      },
    },
    {
      name: 'manifest',
      make: (r) => makeJsonText([manifestSeed], r),
      run: async (b) => {
        writeFileSync(path.join(scratch, 'model.json'), b);
        return loadModel(scratch);
      },
    },
  ];
}
