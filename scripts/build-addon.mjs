#!/usr/bin/env node
// The package's install script, and the source build of the native addon (cmake-js, offline).
//
//   node scripts/build-addon.mjs            npm install: keep the addon node-gyp-build finds (a local
//                                           build/Release, else the prebuild for this platform in
//                                           prebuilds/) if it loads, and compile nothing; compile
//                                           only when none does
//   node scripts/build-addon.mjs --force    npm run build:addon: always build
//
// The addon is optional (the onnxruntime CPU backend needs none), so a machine without cmake or a
// C++ compiler gets a plain warning with what to do, and exit code 0. Options and environment:
//   --require, SPLEEN_TRT_REQUIRE_ADDON=1   a failed build exits 1 (CI)
//   --build-from-source (npm install --build-from-source, i.e. npm_config_build_from_source=true)
//     or SPLEEN_TRT_BUILD_FROM_SOURCE=1     compile even when a prebuild matches
//   SPLEEN_TRT_SKIP_ADDON=1                 do not build (unless --force)
//   --out <dir>                             cmake-js work directory (default build/)
//   --copy-to <file>                        where the addon goes (default build/Release/spleen_trt.node)
//   --no-tests                              do not build the C++ tests of native/core (prebuilds)
// No network: cmake-js takes the Node-API headers from node-api-headers because package.json has
// binary.napi_versions, and node-addon-api is header-only.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
function option(name, fallback) {
  const index = argv.indexOf(name);
  return index >= 0 && argv[index + 1] ? path.resolve(argv[index + 1]) : fallback;
}
const force = argv.includes('--force');
const required = argv.includes('--require') || process.env.SPLEEN_TRT_REQUIRE_ADDON === '1';
const fromSource =
  argv.includes('--build-from-source') ||
  process.env.npm_config_build_from_source === 'true' ||
  process.env.SPLEEN_TRT_BUILD_FROM_SOURCE === '1';
const outDir = option('--out', path.join(root, 'build'));
const addonFile = option('--copy-to', path.join(root, 'build', 'Release', 'spleen_trt.node'));
const buildTests = !argv.includes('--no-tests');
// Installed as a dependency: `npm run build:addon` cannot be run from the user's project.
const installed = root.split(path.sep).includes('node_modules');
const rebuildCommand = installed ? 'npm rebuild spleen-trt' : 'npm run build:addon';
const platform = `${process.platform}-${process.arch}`;

function log(message) {
  process.stderr.write(`spleen-trt: ${message}\n`);
}

// node-gyp-build's choice (its rules: build/Release, then prebuilds/<platform>-<arch>/ by tags,
// prebuildify's names included); src/native/addon.ts loads by the same rules. null: none matches.
function findExistingAddon() {
  try {
    const nodeGypBuild = createRequire(path.join(root, 'package.json'))('node-gyp-build');
    return nodeGypBuild.resolve(root);
  } catch {
    return null;
  }
}

// Loading it in a child process turns a broken binary (wrong libstdc++, missing symbol) into a
// rebuild (install) or a build failure, instead of a surprise at run time.
function loadError(file) {
  const check = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { encoding: 'utf8' });
  return check.status === 0 ? null : (check.stderr || `exit ${check.status}`).trim();
}

// What the build compiled in (CMake printed where it found the headers, or where it looked).
function tensorRtHeaders(file) {
  const code = `process.stdout.write(String(require(${JSON.stringify(file)}).getRuntimeInfo().compiledWith.tensorrtHeaders))`;
  const result = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
  const headers = result.status === 0 ? result.stdout.trim() : 'null';
  return headers === 'null'
    ? 'not compiled in (no TensorRT headers found; set TENSORRT_ROOT or TENSORRT_INCLUDE_DIR)'
    : `compiled in (TensorRT headers ${headers})`;
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

// Set by main(): an addon that already loads here (a prebuild) when a source build was asked for.
let usable = null;

function giveUp(reason) {
  if (required) {
    log(`native addon build FAILED: ${reason}`);
    process.exit(1);
  }
  const rebuild = usable === null ? rebuildCommand : `${rebuildCommand} --build-from-source`;
  if (usable !== null) {
    log(`the source build asked for cannot run: ${reason}.`);
    log(`${path.relative(root, usable)} stays in use. To build from source, install CMake >= 3.18 and a C++17`);
  } else {
    log(`no native addon for ${platform}: this package has no prebuild that loads here, and it cannot be compiled: ${reason}.`);
    log('The package still works: segmentation runs on onnxruntime (CPU), the CPU stages in TypeScript;');
    log('the TensorRT backend and the C++ CPU kernels need the addon. To build it, install CMake >= 3.18');
    log('and a C++17');
  }
  log(`compiler (e.g. apt-get install cmake g++), then run: ${rebuild}`);
  log('(with TensorRT: TENSORRT_ROOT=<dir> or TENSORRT_INCLUDE_DIR=<dir> if its headers are not in a standard place;');
  log(' SPLEEN_TRT_REQUIRE_ADDON=1 makes a failed build an error)');
  process.exit(0);
}

function main() {
  const existing = force ? null : findExistingAddon();
  const existingError = existing === null ? null : loadError(existing);
  if (existing !== null && existingError === null) usable = existing;
  if (!force && !fromSource) {
    if (existing !== null) {
      const error = existingError;
      if (error === null) {
        log(`using ${path.relative(root, existing)} (compiles nothing; to compile from source: ${rebuildCommand} --build-from-source)`);
        return;
      }
      log(`${path.relative(root, existing)} does not load here (${error.split('\n')[0]}); building from source`);
    }
  }
  if (!force) {
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
  if (!buildTests) args.push('--CDSPLEEN_TRT_BUILD_TESTS=OFF');
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

  const error = loadError(addonFile);
  if (error !== null) giveUp(`the built addon does not load: ${error}`);
  log(`built ${path.relative(root, addonFile)} in ${seconds.toFixed(1)} s; TensorRT backend: ${tensorRtHeaders(addonFile)}`);
}

main();
