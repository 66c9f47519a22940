#!/usr/bin/env node
// npm run prebuild (and prepack): prebuilds/<platform>-<arch>/spleen-trt.<libc>.node for this
// platform, made by prebuildify (N-API 8: one binary for every Node >= 20 of this platform).
//
// prebuildify 6 only speaks node-gyp, which would fetch Node's headers from the internet; its
// --node-gyp option names the builder, so scripts/prebuild-backend.mjs stands in for node-gyp and
// runs the same cmake-js build as the install script, offline. It works in build/prebuild/, so a
// developer's build/Release (and a test run loading it) is never touched: prebuildify moves the
// addon it finds in <cwd>/build/Release into prebuilds/.
//
// TensorRT: with TENSORRT_ROOT / TENSORRT_INCLUDE_DIR set, or headers in a standard place, the
// prebuild has the TensorRT backend compiled in (it opens TensorRT's libraries at run time, so one
// binary serves every TensorRT of that major version); see scripts/prebuild-with-tensorrt.sh.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// --stage <dir>: prebuildify's work directory (default build/prebuild; kept for incremental builds);
// --out <dir>: where prebuilds/ goes (default the package root). Other arguments go to prebuildify.
const argv = process.argv.slice(2);
function take(name, fallback) {
  const index = argv.indexOf(name);
  if (index < 0) return fallback;
  const [, value] = argv.splice(index, 2);
  return path.resolve(value);
}
const stage = take('--stage', path.join(root, 'build', 'prebuild'));
const out = take('--out', root);
rmSync(path.join(stage, 'build'), { recursive: true, force: true });
mkdirSync(stage, { recursive: true });

const prebuildify = createRequire(import.meta.url).resolve('prebuildify/bin.js');
const args = [
  prebuildify,
  '--napi',
  '--strip',
  '--tag-libc',
  '--name', 'spleen-trt',
  '--cwd', stage,
  '--out', out,
  '--node-gyp', path.join(root, 'scripts', 'prebuild-backend.mjs'),
  ...argv,
];
process.stderr.write(`spleen-trt: prebuildify ${args.slice(1).map((a) => path.relative(root, a) || a).join(' ')}\n`);
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
