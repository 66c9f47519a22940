import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isSpleenTrtError } from '../../../src/errors.js';
import { mulberry32 } from '../../../src/model/seeded-weights.js';
import { findStateDicts, readTorchCheckpoint, readUnetCheckpoint, TorchTensor } from '../../../src/model/torch-checkpoint.js';
import { unetStateDictSpec } from '../../../src/model/unet-architecture.js';
import { fixtureBytes, reference, sum64, tinyConfig } from './import-fixtures.js';
import { writeCheckpoint, type PickleNode, type TensorNode } from './torch-writer.js';
import { thrownError as errorOf } from '../../helpers/rejection.js';

const BARE = 'bundle-tiny/models/model.pt';

function tensorsOf(name: string): Map<string, TorchTensor> {
  const { root } = readTorchCheckpoint(fixtureBytes(name));
  return findStateDicts(root)[0].tensors;
}

/** The tiny net's state_dict as a writer node, values from torch's own bare checkpoint. */
function tinyStateNode(mutate?: (items: Array<[string, PickleNode]>) => void): PickleNode {
  const tensors = tensorsOf(BARE);
  const items: Array<[string, PickleNode]> = [...tensors].map(([k, t]) => [
    k,
    { kind: 'tensor', dtype: t.dtype === 'int64' ? 'int64' : 'float32', shape: [...t.shape], storage: Array.from(t.toFloat32()) },
  ]);
  mutate?.(items);
  return { kind: 'dict', ordered: true, items };
}

describe('readUnetCheckpoint on checkpoints written by torch.save', () => {
  const ref = reference();
  const config = tinyConfig();
  const bare = readUnetCheckpoint(fixtureBytes(BARE), { config });

  it('reads all 148 keys of a bare state_dict with the shapes, sums and end values torch reports', () => {
    expect(ref.keys).toHaveLength(148);
    expect([...bare.weights.keys()]).toEqual(ref.keys);
    expect(bare.path).toBe('');
    expect(bare.strippedPrefix).toBe('');
    expect(bare.converted).toEqual({});
    const tensors = tensorsOf(BARE);
    for (const key of ref.keys) {
      const stats = ref.state[key];
      const values = bare.weights.get(key)!;
      expect([...tensors.get(key)!.shape], key).toEqual(stats.shape);
      expect(values[0], key).toBe(stats.first);
      expect(values[values.length - 1], key).toBe(stats.last);
      expect(Math.abs(sum64(values) - stats.sum), key).toBeLessThanOrEqual(1e-9 * (1 + Math.abs(stats.sum)));
    }
  });

  it('finds a state_dict nested under "model" next to other entries', () => {
    const nested = readUnetCheckpoint(fixtureBytes('ckpt-nested-model.pt'), { config });
    expect(nested.path).toBe('model');
    expect(nested.weights).toEqual(bare.weights);
  });

  it('strips a DataParallel "module." prefix of a state_dict nested under "state_dict"', () => {
    const wrapped = readUnetCheckpoint(fixtureBytes('ckpt-module-prefix.pt'), { config });
    expect(wrapped.path).toBe('state_dict');
    expect(wrapped.strippedPrefix).toBe('module.');
    expect(wrapped.weights).toEqual(bare.weights);
  });

  it('converts float16 and float64 tensors, follows strides and storage offsets as torch does', () => {
    const mixed = readUnetCheckpoint(fixtureBytes('ckpt-mixed.pt'), { config });
    const expectedConverted = Object.fromEntries(Object.entries(ref.mixedDtypes).filter(([k]) => !k.endsWith('num_batches_tracked')));
    expect(mixed.converted).toEqual(expectedConverted);
    for (const key of ref.keys) {
      const stats = ref.mixed[key];
      const values = mixed.weights.get(key)!;
      expect(values[0], key).toBe(stats.first);
      expect(values[values.length - 1], key).toBe(stats.last);
      expect(Math.abs(sum64(values) - stats.sum), key).toBeLessThanOrEqual(1e-9 * (1 + Math.abs(stats.sum)));
      // Only the float16 tensors lose bits; every other tensor is the bare one exactly.
      if (ref.mixedDtypes[key] !== 'float16') expect(values, key).toEqual(bare.weights.get(key));
    }
    const tensors = tensorsOf('ckpt-mixed.pt');
    expect(tensors.get('model.1.submodule.0.conv.unit0.conv.weight')!.isContiguous).toBe(false);
    const shared = [tensors.get('model.0.conv.unit0.conv.bias')!, tensors.get('model.0.conv.unit1.conv.bias')!];
    expect(shared.map((t) => t.storageOffset)).toEqual([3, 3 + shared[0].numel]);
  });

  it('refuses a legacy (non-zip) checkpoint with the re-save hint', () => {
    const error = errorOf(() => readUnetCheckpoint(fixtureBytes('ckpt-legacy.pt'), { config }));
    expect(error.code).toBe('ERR_MODEL_INVALID');
    expect(error.message).toMatch(/legacy \(pre-1\.6, non-zip\)/);
    expect(error.message).toMatch(/torch >= 1\.6/);
  });

  it('lists every key whose shape differs from the architecture asked for', () => {
    // The bundle network's key shapes from the real MONAI UNet (test/fixtures/model).
    const monai = JSON.parse(
      readFileSync(fileURLToPath(new URL('../../fixtures/model/unet-state-dict.json', import.meta.url)), 'utf8'),
    ) as Record<string, { keys: Array<[string, number[]]> }>;
    const bundleShapes = new Map(monai.bundle.keys);
    const differing = ref.keys.filter((k) => JSON.stringify(bundleShapes.get(k)) !== JSON.stringify(ref.state[k].shape));
    expect(differing.length).toBeGreaterThan(100);
    const error = errorOf(() => readUnetCheckpoint(fixtureBytes(BARE)));
    expect(error.code).toBe('ERR_MODEL_INVALID');
    expect(error.message).toContain(`wrong shape ${differing.length}:`);
    expect(error.message).toContain('model.0.conv.unit0.conv.weight (expected [16, 1, 3, 3, 3], got [2, 1, 3, 3, 3])');
    expect(error.message).not.toMatch(/missing|unexpected/);
    expect(error.message).toContain('Its shapes look like channels (2, 4, 6, 8, 10)');
    expect(error.details.filter((d) => d.startsWith('wrong shape'))).toHaveLength(differing.length);
  });
});

describe('readUnetCheckpoint on checkpoints built in the test', () => {
  const config = tinyConfig();
  const bare = readUnetCheckpoint(fixtureBytes(BARE), { config }).weights;

  it('lists missing, unexpected and mis-shaped keys together', () => {
    const node = tinyStateNode((items) => {
      const drop = items.findIndex(([k]) => k === 'model.2.1.conv.unit0.conv.bias');
      items.splice(drop, 1);
      items.push(['model.3.conv.weight', { kind: 'tensor', dtype: 'float32', shape: [1], storage: [0] }]);
      const reshape = items.find(([k]) => k === 'model.0.conv.unit0.adn.A.weight')!;
      (reshape[1] as TensorNode).shape = [1, 1];
    });
    const error = errorOf(() => readUnetCheckpoint(writeCheckpoint(node), { config, source: 'built.pt' }));
    expect(error.code).toBe('ERR_MODEL_INVALID');
    expect(error.message).toMatch(/^built\.pt does not match the UNet channels \(2, 4, 6, 8, 10\)/);
    expect(error.message).toContain('missing 1: model.2.1.conv.unit0.conv.bias');
    expect(error.message).toContain('unexpected 1: model.3.conv.weight');
    expect(error.message).toContain('wrong shape 1: model.0.conv.unit0.adn.A.weight (expected [1], got [1, 1])');
    expect(error.details).toEqual([
      'missing model.2.1.conv.unit0.conv.bias',
      'unexpected model.3.conv.weight',
      'wrong shape model.0.conv.unit0.adn.A.weight (expected [1], got [1, 1])',
    ]);
  });

  it('accepts a state_dict without num_batches_tracked (eval mode never reads it)', () => {
    const node = tinyStateNode((items) => {
      for (let i = items.length - 1; i >= 0; i--) if (items[i][0].endsWith('num_batches_tracked')) items.splice(i, 1);
    });
    const read = readUnetCheckpoint(writeCheckpoint(node), { config });
    const spec = unetStateDictSpec(config).filter((e) => !e.name.endsWith('num_batches_tracked'));
    expect(read.weights.size).toBe(spec.length);
    expect(read.weights.get('model.2.1.conv.unit0.conv.weight')).toEqual(bare.get('model.2.1.conv.unit0.conv.weight'));
  });

  it('reads big-endian storages, deflated entries, zip64 records and any archive folder name alike', () => {
    const node = tinyStateNode();
    for (const options of [{ bigEndian: true }, { deflate: true }, { zip64: true, archive: 'my_model' }, { bigEndian: false, archive: 'x' }]) {
      const read = readUnetCheckpoint(writeCheckpoint(node, options), { config });
      expect(read.weights, JSON.stringify(options)).toEqual(bare);
    }
    expect(readTorchCheckpoint(writeCheckpoint(node, { bigEndian: true, archive: 'ckpt' }))).toMatchObject({ byteOrder: 'big', archiveName: 'ckpt' });
  });

  it('picks the candidate dict that matches the architecture, e.g. "model" next to an EMA copy with other keys', () => {
    const state = tinyStateNode();
    const root: PickleNode = {
      kind: 'dict',
      items: [
        ['ema', { kind: 'dict', items: [['shadow.w', { kind: 'tensor', dtype: 'float32', shape: [2], storage: [1, 2] }]] }],
        ['model', state],
        ['epoch', { kind: 'int', value: 300 }],
      ],
    };
    const read = readUnetCheckpoint(writeCheckpoint(root), { config });
    expect(read.path).toBe('model');
    expect(read.weights).toEqual(bare);
  });

  it('names a pickled whole module, a non-tensor value and a checkpoint without any state_dict', () => {
    const whole: PickleNode = { kind: 'object', module: 'monai.networks.nets.unet', name: 'UNet', args: [] };
    expect(errorOf(() => readUnetCheckpoint(writeCheckpoint(whole), { config })).message).toMatch(
      /pickles a whole monai\.networks\.nets\.unet\.UNet object rather than a state_dict/,
    );
    const numpyValue = tinyStateNode((items) => {
      const at = items.findIndex(([k]) => k === 'model.0.conv.unit0.conv.bias');
      items[at] = [items[at][0], { kind: 'object', module: 'numpy.core.multiarray', name: '_reconstruct', args: [] }];
    });
    const error = errorOf(() => readUnetCheckpoint(writeCheckpoint(numpyValue), { config }));
    expect(error.message).toContain('not a tensor 1: model.0.conv.unit0.conv.bias (numpy.core.multiarray._reconstruct object)');
    const none: PickleNode = { kind: 'dict', items: [['epoch', { kind: 'int', value: 3 }]] };
    expect(errorOf(() => readUnetCheckpoint(writeCheckpoint(none), { config })).message).toMatch(/holds no state_dict .*found: epoch \(number\)/);
  });

  it('refuses a tensor that reads past its storage, and a missing storage entry', () => {
    const past: PickleNode = {
      kind: 'dict',
      items: [['w', { kind: 'tensor', dtype: 'float32', shape: [2, 3], storage: [1, 2, 3, 4, 5], stride: [3, 1] }]],
    };
    expect(errorOf(() => readTorchCheckpoint(writeCheckpoint(past))).message).toMatch(/reads element 5 of storage 0, which holds 5/);
    const bytes = writeCheckpoint(tinyStateNode(), { archive: 'a' });
    // Rename the entry data/0 -> data/Z in both headers: the pickle's storage "0" is then absent.
    const text = Buffer.from(bytes).toString('latin1').split('a/data/0').join('a/data/Z');
    expect(errorOf(() => readUnetCheckpoint(new Uint8Array(Buffer.from(text, 'latin1')), { config })).message).toMatch(
      /storage data\/0 is missing from the archive/,
    );
  });
});

describe('corrupt and truncated checkpoints', () => {
  const config = tinyConfig();
  const good = fixtureBytes('ckpt-mixed.pt');

  it('reports a flipped byte in tensor data through the entry CRC', () => {
    const bad = good.slice();
    const { root } = readTorchCheckpoint(good);
    expect(root).toBeInstanceOf(Map);
    // The middle of the file is tensor data (data.pkl comes first, ~20 kB).
    bad[Math.floor(bad.length / 2)] ^= 0x40;
    const error = errorOf(() => readUnetCheckpoint(bad, { config }));
    expect(error.code).toBe('ERR_MODEL_INVALID');
    expect(error.message).toMatch(/CRC-32/);
  });

  it('reports a truncated file, random bytes, an ONNX file and an empty file as not a checkpoint', () => {
    expect(errorOf(() => readTorchCheckpoint(good.subarray(0, good.length - 200))).message).toMatch(/end-of-central-directory|past the end/);
    const rnd = mulberry32(1);
    const noise = Uint8Array.from({ length: 5000 }, () => Math.floor(rnd() * 256));
    expect(errorOf(() => readTorchCheckpoint(noise)).message).toMatch(/is not a PyTorch checkpoint/);
    expect(errorOf(() => readTorchCheckpoint(fixtureBytes('tiny-trt-export.onnx'))).message).toMatch(/is not a PyTorch checkpoint/);
    expect(errorOf(() => readTorchCheckpoint(new Uint8Array(0))).code).toBe('ERR_MODEL_INVALID');
    expect(() => readTorchCheckpoint('model.pt' as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('reports a pickle cut short, one without STOP and one with an unknown opcode', () => {
    const node = tinyStateNode();
    const half = writeCheckpoint(node, { pickle: (p) => p.subarray(0, p.length >> 1) });
    expect(errorOf(() => readTorchCheckpoint(half)).message).toMatch(/data\.pkl.*(unexpected end of data|no STOP)/);
    const noStop = writeCheckpoint(node, { pickle: (p) => p.subarray(0, p.length - 1) });
    expect(errorOf(() => readTorchCheckpoint(noStop)).message).toMatch(/no STOP opcode/);
    const unknown = writeCheckpoint(node, { pickle: (p) => Uint8Array.from([0x80, 0x02, 0xff, 0x2e]) });
    expect(errorOf(() => readTorchCheckpoint(unknown)).message).toMatch(/unsupported pickle opcode 0xff at byte 2/);
  });

  it('never crashes or hangs on mutated archives and pickles: a result or ERR_MODEL_INVALID', () => {
    const rnd = mulberry32(2024);
    const node = tinyStateNode();
    let failures = 0;
    let successes = 0;
    const attempt = (bytes: Uint8Array): void => {
      try {
        readUnetCheckpoint(bytes, { config });
        successes++;
      } catch (error) {
        if (!isSpleenTrtError(error, 'ERR_MODEL_INVALID')) throw error;
        failures++;
      }
    };
    for (let i = 0; i < 60; i++) {
      // Whole-file damage: truncation or a few flipped bytes anywhere (CRC, headers, directory).
      const bytes = good.slice(0, rnd() < 0.3 ? Math.floor(rnd() * good.length) : good.length);
      for (let f = 0; f < 3; f++) if (bytes.length) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
      attempt(bytes);
    }
    for (let i = 0; i < 120; i++) {
      // Pickle damage behind a valid CRC: the VM itself must cope.
      attempt(
        writeCheckpoint(node, {
          pickle: (p) => {
            const q = p.slice(0, rnd() < 0.3 ? Math.floor(rnd() * p.length) : p.length);
            for (let f = 0; f < 2; f++) if (q.length) q[Math.floor(rnd() * q.length)] = Math.floor(rnd() * 256);
            return q;
          },
        }),
      );
    }
    expect(failures + successes).toBe(180);
    expect(failures).toBeGreaterThan(100);
  });
});
