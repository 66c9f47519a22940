#!/usr/bin/env node
// Builds the native addon (build/Release/spleen_trt.node) with cmake-js, offline.
//
//   node scripts/build-addon.mjs            npm install: skip when a binary is already there
//   node scripts/build-addon.mjs --force    npm run build:addon: always build
//
// The addon is optional (the onnxruntime CPU backend needs none), so a machine without cmake or a
// C++ compiler gets a warning and exit code 0. Options and environment:
//   --require, SPLEEN_TRT_REQUIRE_ADDON=1   a failed build exits 1 (CI)
//   SPLEEN_TRT_SKIP_ADDON=1                 do not build (unless --force)
//   --out <dir>                             cmake-js work directory (default build/); the addon is
//                                           still copied to build/Release (binding.gyp uses this)
// No network: cmake-js takes the Node-API headers from node-api-headers because package.json has
// binary.napi_versions, and node-addon-api is header-only.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addonFile = path.join(root, 'build', 'Release', 'spleen_trt.node');

const argv = process.argv.slice(2);
const force = argv.includes('--force');
const required = argv.includes('--require') || process.env.SPLEEN_TRT_REQUIRE_ADDON === '1';
const outIndex = argv.indexOf('--out');
const outDir = outIndex >= 0 && argv[outIndex + 1] ? path.resolve(argv[outIndex + 1]) : path.join(root, 'build');

function log(message) {
  process.stderr.write(`spleen-trt: ${message}\n`);
}

function isMusl() {
  if (process.platform !== 'linux') return false;
  const header = process.report?.getReport?.().header;
  return header !== undefined && !header.glibcVersionRuntime;
}

// prebuildify's layout: prebuilds/<platform>-<arch>/<name>.<tag>...node, e.g. node.napi.glibc.node.
// (src/native/addon.ts applies the same rule when loading.)
function findPrebuild() {
  const directory = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  let files;
  try {
    files = readdirSync(directory);
  } catch {
    return null;
  }
  const musl = isMusl();
  for (const file of files.sort()) {
    if (!file.endsWith('.node')) continue;
    const tags = file.slice(0, -'.node'.length).split('.');
    if (!tags.includes('napi')) continue;
    if (tags.includes('musl') !== musl && (tags.includes('musl') || tags.includes('glibc'))) continue;
    return path.join(directory, file);
  }
  return null;
}

function onPath(names) {
  const directories = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const name of names) {
    for (const directory of directories) {
      const candidate = path.join(directory, name);
      try {
        if (statSync(candidate).isFile()) return candidate;
      } catch {
        // not in this directory
      }
    }
  }
  return null;
}

function giveUp(reason) {
  if (required) {
    log(`native addon build FAILED: ${reason}`);
    process.exit(1);
  }
  log(`the native addon (TensorRT backend) was not built: ${reason}`);
  log('the onnxruntime CPU backend works without it; to build it later: npm run build:addon');
  log('(set SPLEEN_TRT_REQUIRE_ADDON=1 to make this an error)');
  process.exit(0);
}

function main() {
  if (!force) {
    const existing = existsSync(addonFile) ? addonFile : findPrebuild();
    if (existing !== null) {
      log(`native addon present (${path.relative(root, existing)}); not rebuilding (use --force)`);
      return;
    }
    if (process.env.SPLEEN_TRT_SKIP_ADDON === '1') {
      log('SPLEEN_TRT_SKIP_ADDON=1: not building the native addon');
      return;
    }
  }

  let cmakeJs;
  try {
    const require = createRequire(path.join(root, 'package.json'));
    cmakeJs = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  } catch (error) {
    giveUp(`cmake-js is not installed (${error.message.split('\n')[0]})`);
  }
  if (onPath(process.platform === 'win32' ? ['cmake.exe'] : ['cmake']) === null) {
    giveUp('cmake was not found on PATH (install CMake >= 3.18)');
  }
  // MSVC is found by CMake itself, not through PATH.
  if (process.platform !== 'win32' && !process.env.CXX && onPath(['c++', 'g++', 'clang++']) === null) {
    giveUp('no C++ compiler (c++, g++ or clang++) was found on PATH, and CXX is not set');
  }

  const args = [
    cmakeJs,
    'compile',
    '--directory', root,
    '--out', outDir,
    '--parallel', String(os.availableParallelism()),
    // The Node that runs this script, not whichever `node` is first on PATH.
    `--CDNODE_EXECUTABLE=${process.execPath}`,
    // Warnings are errors where the build is required (CI, developers); a user's newer compiler
    // with new warnings must not cost them the addon.
    `--CDSPLEEN_TRT_WERROR=${required ? 'ON' : 'OFF'}`,
  ];
  const started = process.hrtime.bigint();
  log(`building the native addon: cmake-js compile (out: ${path.relative(root, outDir) || '.'})`);
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.error) giveUp(`could not run cmake-js: ${result.error.message}`);
  if (result.status !== 0) giveUp(`cmake-js exited with ${result.status ?? result.signal} (see its output above)`);

  const built = path.join(outDir, 'Release', 'spleen_trt.node');
  if (!existsSync(built)) giveUp(`the build finished but ${built} does not exist`);
  if (path.resolve(built) !== path.resolve(addonFile)) {
    mkdirSync(path.dirname(addonFile), { recursive: true });
    copyFileSync(built, addonFile);
  }

  // Loading it here turns a broken binary (wrong libstdc++, missing symbol) into a build failure
  // instead of a surprise at run time.
  const check = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addonFile)})`], {
    encoding: 'utf8',
  });
  if (check.status !== 0) giveUp(`the built addon does not load: ${(check.stderr || '').trim()}`);
  log(`built ${path.relative(root, addonFile)} in ${seconds.toFixed(1)} s`);
}

main();
