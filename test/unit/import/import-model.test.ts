import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { SpleenTrtError } from '../../../src/errors.js';
import { importModel } from '../../../src/model/import-model.js';
import { inspectOnnx } from '../../../src/model/inspect-onnx.js';
import { loadModel } from '../../../src/model/load-model.js';
import { BUNDLE_PIPELINE } from '../../../src/model/manifest.js';
import { mulberry32 } from '../../../src/model/seeded-weights.js';
import { Segmenter } from '../../../src/segmenter.js';
import type { Volume } from '../../../src/volume/volume.js';
import { fixtureFloat32, IMPORT_FIXTURES, maxAbsDiff, reference, TINY_BUNDLE, tinyConfig } from './import-fixtures.js';
import { runOnnx as run } from '../../helpers/onnx.js';
import { rejection } from '../../helpers/rejection.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-import-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Every entry of `dir` (to show that a failed import leaves nothing behind). */
const entries = (dir: string) => readdirSync(dir).sort();

describe('importModel from a bundle directory', () => {
  const out = path.join(tmp, 'tiny-model');
  const imported = importModel(TINY_BUNDLE, { output: out });

  it('writes model.onnx and model.json with the bundle parameters, hashes and provenance', async () => {
    const { modelDir, manifest } = await imported;
    expect(modelDir).toBe(out);
    expect(entries(out)).toEqual(['model.json', 'model.onnx']);
    const onDisk = JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8'));
    expect(onDisk).toEqual(manifest);
    expect(manifest).toMatchObject({
      name: 'Tiny spleen test bundle',
      version: '0.0.3',
      labels: { '0': 'background', '1': 'spleen' },
      input: { name: 'input_0', channels: 1 },
      output: { name: 'output_0', channels: 2 },
      onnx: { file: 'model.onnx', sha256: sha256(path.join(out, 'model.onnx')) },
      network: { architecture: 'monai-unet', ...tinyConfig() },
      pipeline: { pixdimMm: [1.25, 1.5, 2.5], roiSize: [64, 64, 48], swBatchSize: 2, overlap: 0.25, mode: 'constant' },
    });
    const weights = path.join(TINY_BUNDLE, 'models', 'model.pt');
    expect(manifest.source).toMatchObject({
      kind: 'bundle',
      path: path.resolve(TINY_BUNDLE),
      weightsFile: weights,
      weightsSha256: sha256(weights),
      bundle: { name: 'Tiny spleen test bundle', version: '0.0.3', monaiVersion: '1.4.0' },
      checkpoint: { stateDictPath: '', strippedPrefix: '', convertedDtypes: {} },
    });
    expect(Date.parse(manifest.source!.importedAt)).toBeGreaterThan(Date.parse('2024-01-01'));
    expect(manifest.provenance).toContain('MONAI bundle "Tiny spleen test bundle" v0.0.3');
    expect(manifest.provenance).toContain(sha256(weights));
    const onnx = inspectOnnx(readFileSync(path.join(out, 'model.onnx')));
    expect(onnx.inputs[0].dims).toEqual(['batch', 1, 'd0', 'd1', 'd2']);
    expect(onnx.outputs[0].dims).toEqual(['batch', 2, 'd0', 'd1', 'd2']);
  });

  it("gives torch's logits for the checkpoint's weights (max abs diff <= 1e-4)", async () => {
    await imported;
    const ref = reference();
    const input = fixtureFloat32('ref-input.bin');
    const expected = fixtureFloat32('ref-output.bin');
    const got = await run(readFileSync(path.join(out, 'model.onnx')), input, ref.refInputShape);
    expect(got.length).toBe(expected.length);
    expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(1e-4);
  });

  it('gives the same logits as the ONNX torch exported from the same weights, on a random 96^3 batch of 2', async () => {
    await imported;
    const viaOnnx = await importModel(path.join(IMPORT_FIXTURES, 'tiny-onnx-export.onnx'), { output: path.join(tmp, 'from-onnx') });
    expect(viaOnnx.manifest.source).toMatchObject({ kind: 'onnx', batchRewritten: true });
    const n = 96 ** 3;
    const next = mulberry32(96);
    const input = Float32Array.from({ length: 2 * n }, () => next());
    const fromCheckpoint = await run(readFileSync(path.join(out, 'model.onnx')), input, [2, 1, 96, 96, 96]);
    const fromTorchOnnx = await run(readFileSync(path.join(viaOnnx.modelDir, 'model.onnx')), input, [2, 1, 96, 96, 96]);
    expect(fromCheckpoint.length).toBe(2 * 2 * n);
    expect(maxAbsDiff(fromCheckpoint, fromTorchOnnx)).toBeLessThanOrEqual(1e-4);
  });

  it('loads with loadModel and segments with Segmenter using the bundle parameters', async () => {
    await imported;
    const loaded = await loadModel(out);
    expect(loaded.manifest.pipeline.roiSize).toEqual([64, 64, 48]);
    const segmenter = await Segmenter.create({ model: out, backend: 'onnxruntime', threads: 2 });
    try {
      expect(segmenter.info.pipeline).toEqual(loaded.manifest.pipeline);
      const shape: [number, number, number] = [40, 40, 20];
      const affine = new Float64Array([3, 0, 0, 0, 0, 3, 0, 0, 0, 0, 5, 0, 0, 0, 0, 1]);
      const next = mulberry32(5);
      const volume: Volume = { data: Float32Array.from({ length: 40 * 40 * 20 }, () => -100 + 300 * next()), shape, spacingMm: [3, 3, 5], affine };
      const result = await segmenter.segment(volume);
      expect(result.mask.shape).toEqual(shape);
      // Resampled to 1.25 x 1.5 x 2.5 mm: 95 x 79 x 39 voxels; ROI 64 x 64 x 48 at overlap 0.25 (step 48):
      // 2 x 2 x 1 windows. The bundle defaults (1.5 x 1.5 x 2 mm, ROI 96) would give a single window.
      expect(result.windowCount).toBe(4);
    } finally {
      await segmenter.close();
    }
  });
});

describe('importModel from files', () => {
  it('reads bare, nested and module.-prefixed checkpoints given the network, recording where the state_dict was', async () => {
    const config = tinyConfig();
    const bare = await importModel(path.join(TINY_BUNDLE, 'models', 'model.pt'), { output: path.join(tmp, 'bare'), network: config });
    expect(bare.manifest).toMatchObject({ name: 'model', pipeline: BUNDLE_PIPELINE, source: { kind: 'checkpoint' } });
    const nested = await importModel(path.join(IMPORT_FIXTURES, 'ckpt-nested-model.pt'), { output: path.join(tmp, 'nested'), network: config, name: 'n' });
    expect(nested.manifest.source!.checkpoint).toEqual({ stateDictPath: 'model', strippedPrefix: '', convertedDtypes: {} });
    const wrapped = await importModel(path.join(IMPORT_FIXTURES, 'ckpt-module-prefix.pt'), { output: path.join(tmp, 'wrapped'), network: config });
    expect(wrapped.manifest.source!.checkpoint).toEqual({ stateDictPath: 'state_dict', strippedPrefix: 'module.', convertedDtypes: {} });
    // The same weights build the same ONNX, byte for byte.
    expect(nested.manifest.onnx.sha256).toBe(bare.manifest.onnx.sha256);
    expect(wrapped.manifest.onnx.sha256).toBe(bare.manifest.onnx.sha256);
  });

  it("accepts trt_export's dynamic ONNX as is and keeps onnx_export's I/O names", async () => {
    const trt = await importModel(path.join(IMPORT_FIXTURES, 'tiny-trt-export.onnx'), { output: path.join(tmp, 'trt') });
    expect(trt.manifest).toMatchObject({ input: { name: 'input_0' }, output: { name: 'output_0', channels: 2 }, source: { kind: 'onnx', batchRewritten: false } });
    expect(trt.manifest.onnx.sha256).toBe(createHash('sha256').update(readFileSync(path.join(IMPORT_FIXTURES, 'tiny-trt-export.onnx'))).digest('hex'));
    const ref = reference().onnx.find((o) => o.file === 'tiny-onnx-export.onnx')!;
    await importModel(path.join(IMPORT_FIXTURES, 'tiny-onnx-export.onnx'), { output: path.join(tmp, 'onnx-export') });
    const exported = await loadModel(path.join(tmp, 'onnx-export'));
    expect([exported.manifest.input.name, exported.manifest.output.name]).toEqual([ref.inputs[0][0], ref.outputs[0][0]]);
    expect(inspectOnnx(exported.onnx).inputs[0].dims).toEqual(['batch', 1, 96, 96, 96]);
  });

  it('refuses, leaving nothing behind: wrong architecture, legacy checkpoint, fixed spatial size other than the ROI', async () => {
    const parent = path.join(tmp, 'refusals');
    mkdirSync(parent);
    const wrong = await rejection(importModel(path.join(TINY_BUNDLE, 'models', 'model.pt'), { output: path.join(parent, 'a') }));
    expect(wrong.code).toBe('ERR_MODEL_INVALID');
    expect(wrong.message).toMatch(/does not match the UNet channels \(16, 32, 64, 128, 256\).*wrong shape/);
    const legacy = await rejection(importModel(path.join(IMPORT_FIXTURES, 'ckpt-legacy.pt'), { output: path.join(parent, 'b'), network: tinyConfig() }));
    expect(legacy.message).toMatch(/legacy .*torch >= 1\.6/);
    // A bundle whose ROI (64 x 64 x 48) differs from the ONNX's fixed 96^3.
    const bundle = path.join(tmp, 'bundle-with-onnx');
    cpSync(path.join(TINY_BUNDLE, 'configs'), path.join(bundle, 'configs'), { recursive: true });
    mkdirSync(path.join(bundle, 'models'));
    cpSync(path.join(IMPORT_FIXTURES, 'tiny-onnx-export.onnx'), path.join(bundle, 'models', 'model.onnx'));
    const roi = await rejection(importModel(bundle, { output: path.join(parent, 'c') }));
    expect(roi.message).toMatch(/spatial input size \[96, 96, 96\] is fixed and differs from the ROI \[64, 64, 48\]/);
    const notModel = path.join(tmp, 'notes.txt');
    writeFileSync(notModel, 'hello');
    expect((await rejection(importModel(notModel, { output: path.join(parent, 'd') }))).message).toMatch(/neither a PyTorch checkpoint .* nor an ONNX model/);
    expect(entries(parent)).toEqual([]);
  });

  it('says what a bundle lacks: weights, or only TorchScript', async () => {
    const bundle = path.join(tmp, 'bundle-no-weights');
    cpSync(path.join(TINY_BUNDLE, 'configs'), path.join(bundle, 'configs'), { recursive: true });
    expect((await rejection(importModel(bundle, { output: path.join(tmp, 'x1') }))).code).toBe('ERR_FILE_NOT_FOUND');
    mkdirSync(path.join(bundle, 'models'));
    writeFileSync(path.join(bundle, 'models', 'model.ts'), 'PK');
    expect((await rejection(importModel(bundle, { output: path.join(tmp, 'x1') }))).message).toMatch(/model\.ts, a TorchScript archive/);
    expect((await rejection(importModel(path.join(tmp, 'no-such-file.pt'), { output: path.join(tmp, 'x2') }))).code).toBe('ERR_FILE_NOT_FOUND');
    expect(existsSync(path.join(tmp, 'x1')) || existsSync(path.join(tmp, 'x2'))).toBe(false);
  });

  it('will not write over a non-empty directory unless asked to, and then replaces it whole', async () => {
    const target = path.join(tmp, 'existing');
    mkdirSync(target);
    writeFileSync(path.join(target, 'old.txt'), 'old');
    const source = path.join(IMPORT_FIXTURES, 'tiny-trt-export.onnx');
    await expect(importModel(source, { output: target })).rejects.toThrow(RangeError);
    expect(entries(target)).toEqual(['old.txt']);
    await importModel(source, { output: target, overwrite: true });
    expect(entries(target)).toEqual(['model.json', 'model.onnx']);
    const empty = path.join(tmp, 'empty');
    mkdirSync(empty);
    await importModel(source, { output: empty });
    expect(entries(empty)).toEqual(['model.json', 'model.onnx']);
    await expect(importModel(source, { output: '' })).rejects.toThrow(TypeError);
  });
});
