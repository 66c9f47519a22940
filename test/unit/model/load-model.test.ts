import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_DIR, loadBuiltinModelDirectory, loadDefaultModel, sha256Hex } from '../../../src/model/load-model.js';
import { decodeModel } from '../../../src/model/onnx-proto.js';
import { thrownError } from '../../helpers/rejection.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-load-model-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the embedded model directory, its manifest text passed through `edit`. */
function copyOfDefault(name: string, edit: (manifestText: string) => string): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'model.json'), edit(readFileSync(path.join(DEFAULT_MODEL_DIR, 'model.json'), 'utf8')));
  copyFileSync(path.join(DEFAULT_MODEL_DIR, 'model.onnx'), path.join(dir, 'model.onnx'));
  return dir;
}

const loadError = (dir: string) => thrownError(() => loadBuiltinModelDirectory(dir, 'tensorrt'));

describe('the embedded default model', () => {
  it('loads as builtin:default: the stored graph for TensorRT, its CPU form for onnxruntime', () => {
    const stored = new Uint8Array(readFileSync(path.join(DEFAULT_MODEL_DIR, 'model.onnx')));
    const trt = loadDefaultModel('tensorrt');
    const cpu = loadDefaultModel('onnxruntime');
    expect(trt.source).toBe('builtin:default');
    expect(trt.sha256).toBe(sha256Hex(stored));
    expect(cpu.sha256).toBe(sha256Hex(cpu.onnx));
    const ops = new Set(decodeModel(cpu.onnx).graph.nodes.map((n) => n.opType));
    expect(ops.has('ConvTranspose')).toBe(false);
    expect(ops.has('DepthToSpace')).toBe(true);
    expect(cpu.manifest.warning).toMatch(/synthetic phantoms/);
  });

  it('says the embedded model is damaged (ERR_MODEL_INVALID) for a wrong hash, bad JSON or a missing file', () => {
    const wrongHash = copyOfDefault('wrong-hash', (text) => text.replace(/"sha256": "[0-9a-f]{64}"/, `"sha256": "${'0'.repeat(64)}"`));
    const badJson = copyOfDefault('bad-json', (text) => text.slice(0, 40));
    const missing = path.join(tmp, 'missing');
    for (const [dir, cause] of [[wrongHash, /has sha256 [0-9a-f]{64} but/], [badJson, /not valid JSON/], [missing, /ENOENT/]] as const) {
      const error = loadError(dir);
      expect(error.code).toBe('ERR_MODEL_INVALID');
      expect(error.message).toMatch(/embedded model in .* is damaged/);
      expect(error.message).toMatch(cause);
    }
  });
});
