import { describe, expect, it } from 'vitest';
import { SpleenTrtError } from '../../../src/errors.js';
import { BUNDLE_PIPELINE, parseManifest } from '../../../src/model/manifest.js';

const valid = { name: 'm', onnx: { file: 'model.onnx', sha256: '' }, output: { name: 'output_0', channels: 2 } };

describe('parseManifest', () => {
  it('fills the bundle pipeline defaults', () => {
    const m = parseManifest(valid, 'model.json');
    expect(m.pipeline).toEqual(BUNDLE_PIPELINE);
    expect(m.labels['1']).toBe('spleen');
  });

  it('keeps overrides', () => {
    const m = parseManifest({ ...valid, pipeline: { overlap: 0.25, roiSize: [64, 64, 64] } }, 'model.json');
    expect(m.pipeline.overlap).toBe(0.25);
    expect(m.pipeline.roiSize).toEqual([64, 64, 64]);
    expect(m.pipeline.pixdimMm).toEqual([1.5, 1.5, 2.0]);
  });

  it.each([
    ['not an object', 42, /not a JSON object/],
    ['no name', { ...valid, name: '' }, /"name"/],
    ['no onnx file', { ...valid, onnx: {} }, /"onnx.file"/],
    ['one output channel', { ...valid, output: { channels: 1 } }, /"output.channels"/],
    ['bad pixdim', { ...valid, pipeline: { pixdimMm: [1, -1, 1] } }, /pixdimMm/],
    ['bad overlap', { ...valid, pipeline: { overlap: 1 } }, /overlap/],
    ['bad mode', { ...valid, pipeline: { mode: 'linear' } }, /mode/],
    ['degenerate window', { ...valid, pipeline: { intensity: { aMin: 1, aMax: 1, bMin: 0, bMax: 1, clip: true } } }, /intensity/],
  ])('rejects %s with ERR_MODEL_INVALID', (_name, json, message) => {
    let error: unknown;
    try {
      parseManifest(json, 'x/model.json');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SpleenTrtError);
    expect((error as SpleenTrtError).code).toBe('ERR_MODEL_INVALID');
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toContain('x/model.json');
  });
});
