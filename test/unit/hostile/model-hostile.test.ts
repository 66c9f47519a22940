/**
 * Findings 2, 3, 5 and 11 on model files: pickle and zip bombs refused from declared sizes, FIFOs
 * and devices refused without blocking, manifest paths kept inside the model directory.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { importModel } from '../../../src/model/import-model.js';
import { DEFAULT_MODEL_DIR, loadModel } from '../../../src/model/load-model.js';
import { unpickle } from '../../../src/model/pickle-reader.js';
import { readZipDirectory, readZipEntry } from '../../../src/model/zip-reader.js';
import { writeZip } from '../import/torch-writer.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-hostile-model-'));

describe('model files from a hostile source', () => {
  it('stops a pickle of millions of EMPTY_LIST or MARK opcodes with ERR_INPUT_TOO_LARGE (V8 used to abort)', () => {
    for (const op of [0x5d, 0x28]) {
      const bomb = new Uint8Array(4 << 20).fill(op);
      expect(() => unpickle(bomb)).toThrow(expect.objectContaining({ code: 'ERR_INPUT_TOO_LARGE' }));
    }
  });

  it('refuses a zip entry whose declared inflated size is past the limit before inflating it', () => {
    // 64 MiB of zeros deflates to 64 KB; declared sizes are what the reader checks.
    const zeros = new Uint8Array(64 << 20);
    const bytes = writeZip([{ name: 'a/data/0', data: zeros, deflate: true }]);
    expect(bytes.length).toBeLessThan(1 << 20);
    const [entry] = readZipDirectory(bytes);
    expect(() => readZipEntry(bytes, entry, 1 << 20)).toThrow(expect.objectContaining({ code: 'ERR_INPUT_TOO_LARGE' }));
    expect(() => readZipDirectory(bytes, 1 << 20)).toThrow(expect.objectContaining({ code: 'ERR_INPUT_TOO_LARGE' }));
  });

  it('refuses a FIFO or /dev/zero as --model or import source at once', async () => {
    const fifo = path.join(tmp, 'model.onnx');
    execFileSync('mkfifo', [fifo]);
    await expect(loadModel(fifo)).rejects.toMatchObject({ code: 'ERR_FILE_UNREADABLE', message: expect.stringMatching(/FIFO/) });
    await expect(loadModel('/dev/zero')).rejects.toMatchObject({ code: 'ERR_FILE_UNREADABLE' });
    await expect(importModel('/dev/zero', { output: path.join(tmp, 'imported') })).rejects.toMatchObject({ code: 'ERR_FILE_UNREADABLE' });
    // A model directory whose ONNX is a FIFO.
    const dir = path.join(tmp, 'fifo-model');
    mkdirSync(dir);
    const manifest = JSON.parse(readFileSync(path.join(DEFAULT_MODEL_DIR, 'model.json'), 'utf8'));
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ ...manifest, onnx: { ...manifest.onnx, file: 'net.onnx' } }));
    execFileSync('mkfifo', [path.join(dir, 'net.onnx')]);
    await expect(loadModel(dir)).rejects.toMatchObject({ code: 'ERR_FILE_UNREADABLE' });
  }, 15_000);

  it('keeps manifest paths inside the model directory (no .., absolute paths or symlinks out)', async () => {
    const manifest = JSON.parse(readFileSync(path.join(DEFAULT_MODEL_DIR, 'model.json'), 'utf8'));
    const secret = path.join(tmp, 'secret.onnx');
    cpSync(path.join(DEFAULT_MODEL_DIR, manifest.onnx.file), secret);
    const cases: Array<[string, string]> = [
      ['dotdot', '../secret.onnx'],
      ['absolute', secret],
      ['link', 'link.onnx'],
    ];
    for (const [name, file] of cases) {
      const dir = path.join(tmp, `escape-${name}`);
      mkdirSync(dir);
      if (name === 'link') symlinkSync(secret, path.join(dir, 'link.onnx'));
      writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ ...manifest, onnx: { file } }));
      await expect(loadModel(dir)).rejects.toMatchObject({ code: 'ERR_MODEL_INVALID', message: expect.stringMatching(/inside the model directory/) });
    }
    // A file inside (through a subfolder) still loads.
    const ok = path.join(tmp, 'inside');
    mkdirSync(path.join(ok, 'sub'), { recursive: true });
    cpSync(secret, path.join(ok, 'sub', 'net.onnx'));
    writeFileSync(path.join(ok, 'model.json'), JSON.stringify({ ...manifest, onnx: { ...manifest.onnx, file: 'sub/net.onnx' } }));
    await expect(loadModel(ok)).resolves.toMatchObject({ sha256: manifest.onnx.sha256 });
  });
});
