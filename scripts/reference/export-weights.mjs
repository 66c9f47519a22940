#!/usr/bin/env node
// Writes the builtin:seeded model's UNet weights (the parity fixtures' network) in the format that
// scripts/reference/monai_bundle_reference.py reads, so the MONAI reference runs the same network:
//   node scripts/reference/export-weights.mjs <out.bin> [seed]
// Layout: uint32 LE JSON length, JSON {name: {shape, offset}} (offsets in float32 elements), float32 LE data.
import { writeFileSync } from 'node:fs';
import { DEFAULT_MODEL_SEED } from '../../dist/model/load-model.js';
import { seededUnetWeights } from '../../dist/model/seeded-weights.js';
import { DEFAULT_UNET_CONFIG, unetStateDictSpec } from '../../dist/model/unet-architecture.js';

const [out, seedText] = process.argv.slice(2);
if (!out) {
  console.error('usage: node scripts/reference/export-weights.mjs <out.bin> [seed]');
  process.exit(2);
}
const seed = seedText === undefined ? DEFAULT_MODEL_SEED : Number(seedText);
const weights = seededUnetWeights(seed);
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
console.error(`wrote ${Object.keys(index).length} tensors, ${offset} floats, seed ${seed} -> ${out}`);
