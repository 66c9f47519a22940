#!/usr/bin/env node
// Writes UNet weights in the format that scripts/reference/monai_bundle_reference.py and
// bench/torch_baseline.py read, so the MONAI reference and the torch baseline run the same network:
//   node scripts/reference/export-weights.mjs <out.bin> [seed]       the builtin:seeded model's
//                                                                     (the parity fixtures' network)
//   node scripts/reference/export-weights.mjs <out.bin> <model.pt>   a torch.save'd state_dict, e.g.
//                                                                     the one the default model came from
// Layout: uint32 LE JSON length, JSON {name: {shape, offset}} (offsets in float32 elements), float32 LE data.
import { readFileSync, writeFileSync } from 'node:fs';
import { DEFAULT_MODEL_SEED } from '../../dist/model/load-model.js';
import { seededUnetWeights } from '../../dist/model/seeded-weights.js';
import { readUnetCheckpoint } from '../../dist/model/torch-checkpoint.js';
import { DEFAULT_UNET_CONFIG, unetStateDictSpec } from '../../dist/model/unet-architecture.js';

const [out, from] = process.argv.slice(2);
if (!out) {
  console.error('usage: node scripts/reference/export-weights.mjs <out.bin> [seed | model.pt]');
  process.exit(2);
}
const fromCheckpoint = from !== undefined && !/^\d+$/.test(from);
const seed = from === undefined ? DEFAULT_MODEL_SEED : Number(from);
const weights = fromCheckpoint ? readUnetCheckpoint(new Uint8Array(readFileSync(from)), { source: from }).weights : seededUnetWeights(seed);
const get = (name) => (weights instanceof Map ? weights.get(name) : weights[name]);
const index = {};
const chunks = [];
let offset = 0;
for (const { name, shape } of unetStateDictSpec(DEFAULT_UNET_CONFIG)) {
  const tensor = get(name);
  index[name] = { shape, offset };
  chunks.push(Buffer.from(tensor.buffer, tensor.byteOffset, tensor.byteLength));
  offset += tensor.length;
}
const json = Buffer.from(JSON.stringify(index));
const length = Buffer.alloc(4);
length.writeUInt32LE(json.length);
writeFileSync(out, Buffer.concat([length, json, ...chunks]));
console.error(`wrote ${Object.keys(index).length} tensors, ${offset} floats, ${fromCheckpoint ? from : `seed ${seed}`} -> ${out}`);
