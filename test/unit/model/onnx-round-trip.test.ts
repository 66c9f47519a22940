// The ONNX codec keeps everything a model carries: decode -> encode is byte-identical for the
// models this repository ships, builds and imports, and an edit (the static-to-dynamic batch
// rewrite) keeps metadata_props, doc strings, opset imports, fields the codec does not model, and
// value_info (with the new symbolic batch). The extra fields are hand-assembled protobuf bytes
// from onnx.proto's field numbers, added to MONAI's onnx_export fixture.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildUnetOnnx } from '../../../src/model/build-unet-onnx.js';
import { makeBatchDynamic } from '../../../src/model/dynamic-batch.js';
import { DEFAULT_MODEL_DIR } from '../../../src/model/load-model.js';
import { decodeModel, encodeModel, type ModelProto } from '../../../src/model/onnx-proto.js';
import { mulberry32, seededUnetWeights } from '../../../src/model/seeded-weights.js';
import { runOnnx } from '../../helpers/onnx.js';
import { fixtureBytes, maxAbsDiff, tinyConfig } from '../import/import-fixtures.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/', import.meta.url));

function onnxFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.onnx'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

// ---- hand-assembled protobuf fields
function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}
const lengthField = (field: number, payload: Uint8Array | number[]): Uint8Array =>
  Uint8Array.from([...varint(field * 8 + 2), ...varint(payload.length), ...payload]);
const stringField = (field: number, text: string): Uint8Array => lengthField(field, [...new TextEncoder().encode(text)]);
const varintField = (field: number, value: number): Uint8Array => Uint8Array.from([...varint(field * 8), ...varint(value)]);
/** ModelProto.metadata_props (14): StringStringEntryProto { key = 1, value = 2 }. */
const metadataProp = (key: string, value: string): Uint8Array => lengthField(14, [...stringField(1, key), ...stringField(2, value)]);

const MODEL_EXTRAS = [metadataProp('monai_version', '1.4.0'), metadataProp('bundle', 'spleen_ct_segmentation'), varintField(99, 7)];
const GRAPH_DOC = stringField(10, 'UNet traced by torch.jit.script');
const NODE_DOC = stringField(6, 'first convolution');

/** MONAI's onnx_export fixture with metadata, doc strings, value_info and an unknown field added. */
function augmentedExport(): { bytes: Uint8Array; valueInfoNames: string[] } {
  const model = decodeModel(fixtureBytes('tiny-onnx-export.onnx'));
  model.unknown = [...MODEL_EXTRAS];
  model.docString = 'MONAI onnx_export';
  model.graph.unknown = [GRAPH_DOC];
  model.graph.nodes[0].unknown = [NODE_DOC];
  const convs = model.graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'ConvTranspose').slice(0, 4);
  model.graph.valueInfo = convs.map((n) => ({ name: n.outputs[0], elemType: 1, dims: [1, 'c', 'd', 'h', 'w'] }));
  return { bytes: encodeModel(model), valueInfoNames: convs.map((n) => n.outputs[0]) };
}

describe('ONNX round trips', () => {
  it('decode -> encode is byte-identical for every ONNX fixture, the embedded model and a built one', () => {
    const files = [...onnxFiles(FIXTURES), path.join(DEFAULT_MODEL_DIR, 'model.onnx')];
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const file of files) {
      const bytes = new Uint8Array(readFileSync(file));
      expect(Buffer.compare(Buffer.from(encodeModel(decodeModel(bytes))), Buffer.from(bytes)), file).toBe(0);
    }
    const built = buildUnetOnnx(seededUnetWeights(3, tinyConfig()), tinyConfig());
    expect(encodeModel(decodeModel(built))).toEqual(built);
  });

  it('keeps fields it does not model byte for byte, also where a message around them changed', () => {
    const { bytes } = augmentedExport();
    expect(encodeModel(decodeModel(bytes))).toEqual(bytes);

    const model = decodeModel(bytes);
    expect(model.unknown).toEqual(MODEL_EXTRAS);
    expect(model.graph.unknown).toEqual([GRAPH_DOC]);
    expect(model.graph.nodes[0].unknown).toEqual([NODE_DOC]);
    // An edit: the node with the doc string is renamed; its doc string and everything else stay.
    model.graph.nodes[0].name = 'renamed';
    const edited = decodeModel(encodeModel(model));
    expect(edited.graph.nodes[0].name).toBe('renamed');
    expect(edited.graph.nodes[0].unknown).toEqual([NODE_DOC]);
    expect(edited.unknown).toEqual(MODEL_EXTRAS);
    expect(edited.graph.unknown).toEqual([GRAPH_DOC]);
    expect(edited.graph.initializers.map((t) => t.rawData)).toEqual(model.graph.initializers.map((t) => t.rawData));
  });

  it('a change deep inside (one weight) is written, not hidden by the decoded bytes', () => {
    const bytes = fixtureBytes('tiny-onnx-export.onnx');
    const model = decodeModel(bytes);
    const weight = model.graph.initializers.find((t) => t.rawData.length >= 4)!;
    weight.rawData = weight.rawData.slice();
    weight.rawData[0] ^= 0xff;
    const written = decodeModel(encodeModel(model));
    expect(written.graph.initializers.find((t) => t.name === weight.name)!.rawData).toEqual(weight.rawData);
  });

  it('the static-to-dynamic batch rewrite keeps metadata_props, doc strings, opset imports and value_info', async () => {
    const { bytes, valueInfoNames } = augmentedExport();
    const original = decodeModel(bytes);
    const result = makeBatchDynamic(bytes);
    expect(result.changed).toBe(true);
    const rewritten: ModelProto = decodeModel(result.onnx);

    expect(rewritten.unknown).toEqual(MODEL_EXTRAS);
    expect(rewritten.docString).toBe('MONAI onnx_export');
    expect(rewritten.graph.unknown).toEqual([GRAPH_DOC]);
    expect(rewritten.graph.nodes[0].unknown).toEqual([NODE_DOC]);
    expect(rewritten.opsetImports).toEqual(original.opsetImports);
    expect(rewritten.irVersion).toBe(original.irVersion);
    expect(rewritten.producerName).toBe(original.producerName);
    expect(rewritten.graph.valueInfo?.map((v) => [v.name, v.dims])).toEqual(valueInfoNames.map((name) => [name, ['batch', 'c', 'd', 'h', 'w']]));
    expect(rewritten.graph.inputs[0].dims?.[0]).toBe('batch');
    // Only the graph's input, output and value_info changed: every node and weight is as decoded.
    expect(rewritten.graph.nodes.length).toBe(original.graph.nodes.length);
    expect(encodeModel({ ...rewritten, graph: { ...rewritten.graph, inputs: original.graph.inputs, outputs: original.graph.outputs, valueInfo: original.graph.valueInfo } })).toEqual(bytes);

    // And onnxruntime runs it at batch 2 with the value_info in place, as the batch-1 model at batch 1.
    const n = 96 ** 3;
    const next = mulberry32(5);
    const a = Float32Array.from({ length: n }, () => next());
    const both = new Float32Array(2 * n);
    both.set(a);
    both.set(a, n);
    const batched = await runOnnx(result.onnx, both, [2, 1, 96, 96, 96]);
    const single = await runOnnx(fixtureBytes('tiny-onnx-export.onnx'), a, [1, 1, 96, 96, 96]);
    expect(maxAbsDiff(batched.subarray(2 * n), single)).toBeLessThanOrEqual(1e-6);
  });
});
