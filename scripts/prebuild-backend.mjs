#!/usr/bin/env node
// The builder prebuildify runs in place of node-gyp (scripts/prebuild.mjs passes --node-gyp):
// called as `<this> rebuild --target=<node> --devdir=... --arch=<arch> --release` in prebuildify's
// work directory, it builds the addon with cmake-js (scripts/build-addon.mjs: N-API headers from
// node-api-headers, no download) and leaves it where prebuildify collects it,
// <cwd>/build/Release/spleen_trt.node. The node target does not matter: the addon is N-API 8.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [command, ...options] = process.argv.slice(2);
if (command !== 'rebuild') {
  process.stderr.write(`prebuild-backend: only "rebuild" is supported (got ${command})\n`);
  process.exit(2);
}
if (options.includes('--debug')) {
  process.stderr.write('prebuild-backend: debug prebuilds are not supported\n');
  process.exit(2);
}
const arch = options.find((option) => option.startsWith('--arch='))?.slice('--arch='.length);
if (arch !== undefined && arch !== process.arch) {
  process.stderr.write(`prebuild-backend: cross-compiling (${process.arch} -> ${arch}) is not supported\n`);
  process.exit(2);
}

const work = process.cwd();
const buildAddon = path.join(path.dirname(fileURLToPath(import.meta.url)), 'build-addon.mjs');
const result = spawnSync(
  process.execPath,
  [
    buildAddon,
    '--force',
    '--require',
    '--no-tests',
    '--out', path.join(work, 'cmake'),
    '--copy-to', path.join(work, 'build', 'Release', 'spleen_trt.node'),
  ],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
