#!/usr/bin/env bash
# A prebuild compiled with TensorRT's headers, installed the way a user gets it, on a machine with
# no TensorRT, no GPU and no compiler on PATH: it must load and report TensorRT "compiled in,
# library not found" (the library is opened at run time, so one binary serves every TensorRT of
# that major version).
#
#   scripts/prebuild-with-tensorrt.sh <tensorrt-include-dir> [<dir with NvOnnxParser.h>]
#
# Headers from the public NVIDIA/TensorRT repository (never committed):
#   git --git-dir=<mirror of NVIDIA/TensorRT> archive v10.16 include | tar -x -C /tmp/trt-v10.16
#   scripts/prebuild-with-tensorrt.sh /tmp/trt-v10.16/include
# (tags before v10.14 have no NvOnnxParser.h in include/: pass v10.16's as the second argument.)
# Needs the CUDA toolkit's headers (NvInfer.h includes cuda_runtime_api.h) and a C++ compiler for
# the build step only; the install and the checks run with node, npm, npx and sh on PATH.
set -euo pipefail
if [[ $# -lt 1 || ! -f "$1/NvInferVersion.h" ]]; then
  echo "usage: $0 <tensorrt-include-dir> [<parser-include-dir>]" >&2
  exit 2
fi
include=$(realpath "$1")
parser=$(realpath "${2:-$1}")
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/spleen-trt-prebuild-trt.XXXXXX")
echo "work directory: $work"

echo "== 1. prebuild with the TensorRT headers in $include"
TENSORRT_INCLUDE_DIR="$include" TENSORRT_PARSER_INCLUDE_DIR="$parser" \
  node "$root/scripts/prebuild.mjs" --stage "$root/build/prebuild-tensorrt" --out "$work/out" 2>&1 |
  grep -E "spleen_trt:|spleen-trt:|error" || true
ls -l "$work"/out/prebuilds/*/

echo "== 2. the package with that prebuild in place of the plain one"
(cd "$root" && npm pack --ignore-scripts --silent --pack-destination "$work" >/dev/null)
tar -xzf "$work"/spleen-trt-*.tgz -C "$work"
rm -rf "$work/package/prebuilds"
cp -r "$work/out/prebuilds" "$work/package/prebuilds"
mkdir "$work/tarball"
(cd "$work/package" && npm pack --ignore-scripts --silent --pack-destination "$work/tarball" >/dev/null)
ls -l "$work"/tarball/

echo "== 3. install into a fresh project; PATH: node, npm, npx, sh only"
mkdir "$work/bin" "$work/project"
npm_cli=$(realpath "$(command -v npm)")
ln -s "$(command -v node)" "$work/bin/node"
ln -s "$npm_cli" "$work/bin/npm"
ln -s "$(dirname "$npm_cli")/npx-cli.js" "$work/bin/npx"
ln -s "$(realpath "$(command -v sh)")" "$work/bin/sh"
cat > "$work/project/package.json" <<'JSON'
{ "name": "trt-service", "version": "1.0.0", "private": true, "allowScripts": { "onnxruntime-node": false } }
JSON
user() { (cd "$work/project" && env -i HOME="$HOME" PATH="$work/bin" "$@"); }
user sh -c 'for t in cc c++ g++ make cmake ninja; do command -v $t && exit 1; done; echo "no compiler on PATH"'
user npm install "$work"/tarball/*.tgz --no-audit --no-fund --prefer-offline --foreground-scripts 2>&1 | grep -E "spleen-trt:|added|error" || true

echo "== 4. npx spleen-trt info"
user npx --no-install spleen-trt info | tee "$work/info.txt"
if grep -q "tensorrt: compiled in (headers .*), library not found" "$work/info.txt" &&
   grep -q "native addon: loaded from .*/node_modules/spleen-trt/prebuilds/" "$work/info.txt"; then
  echo "OK: the TensorRT prebuild loads without TensorRT and reports it compiled in, library not found"
  rm -rf "$work"
else
  echo "FAILED (kept $work)" >&2
  exit 1
fi
