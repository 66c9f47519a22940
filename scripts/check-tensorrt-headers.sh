#!/usr/bin/env bash
# Compile-checks the native code that needs TensorRT against a TensorRT include directory, the way
# the addon compiles it when TENSORRT_ROOT / TENSORRT_INCLUDE_DIR is set, with every warning an
# error. No machine here has TensorRT installed; the public headers are enough to prove that the
# code matches a release's API:
#
#   git --git-dir=<NVIDIA/TensorRT mirror> archive v10.16 include | tar -x -C /tmp/trt-10.16
#   scripts/check-tensorrt-headers.sh /tmp/trt-10.16/include
#
# NvOnnxParser.h is in TensorRT's include/ from 10.14 on; for older tags pass a directory holding
# one from onnx/onnx-tensorrt (branch release/<major.minor>-GA) as the second argument.
#
# Usage: scripts/check-tensorrt-headers.sh <tensorrt-include-dir> [<onnx-parser-include-dir>]
# Environment: CXX (default g++), CUDA_HOME (default /usr/local/cuda; its include/ provides
# cuda_runtime_api.h, which NvInfer.h includes).
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
trt_include=$1
parser_include=${2:-$1}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cxx=${CXX:-g++}
cuda_home=${CUDA_HOME:-/usr/local/cuda}

for header in "$trt_include/NvInfer.h" "$trt_include/NvInferVersion.h" "$parser_include/NvOnnxParser.h" \
              "$cuda_home/include/cuda_runtime_api.h"; do
  if [[ ! -f $header ]]; then
    echo "check-tensorrt-headers: $header not found" >&2
    exit 2
  fi
done

version=$(sed -n -E 's/^#define (NV_TENSORRT|TRT)_(MAJOR|MINOR|PATCH)(_ENTERPRISE)?[[:space:]]+([0-9]+).*/\2=\4/p' \
  "$trt_include/NvInferVersion.h" | sort -u | tr '\n' ' ')
echo "TensorRT headers: $trt_include ($version)"
echo "ONNX parser header: $parser_include/NvOnnxParser.h"
echo "compiler: $($cxx --version | head -n 1)"

# Every native/ source: the TensorRT-guarded code paths are checked, and the rest must still
# compile in a build that has the headers. Node-API sources need napi.h from node_modules.
napi_flags=()
napi_dir="$root/node_modules/node-addon-api"
node_api_dir="$root/node_modules/node-api-headers/include"
if [[ -f $napi_dir/napi.h && -d $node_api_dir ]]; then
  napi_flags=(-isystem "$napi_dir" -isystem "$node_api_dir" -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_DEPRECATED
              -DNAPI_CPP_EXCEPTIONS -DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS -fexceptions)
fi

failures=0
checked=0
while IFS= read -r source; do
  extra=()
  if [[ $source != "$root/native/core/"* ]]; then
    if [[ ${#napi_flags[@]} -eq 0 ]]; then
      echo "  skip $source (node-addon-api not installed)"
      continue
    fi
    extra=("${napi_flags[@]}")
  fi
  checked=$((checked + 1))
  if ! "$cxx" -std=c++17 -Wall -Wextra -Werror -fsyntax-only \
      -DSPLEEN_TRT_HAS_TENSORRT_HEADERS=1 -DSPLEEN_TRT_HAVE_CUDA_H \
      -isystem "$trt_include" -isystem "$parser_include" -isystem "$cuda_home/include" \
      -I "$root/native" "${extra[@]}" "$source"; then
    echo "  FAIL $source" >&2
    failures=$((failures + 1))
  else
    echo "  ok   ${source#"$root"/}"
  fi
done < <(find "$root/native" -name '*.cc' | sort)

if [[ $failures -ne 0 ]]; then
  echo "check-tensorrt-headers: $failures of $checked file(s) failed" >&2
  exit 1
fi
echo "check-tensorrt-headers: $checked file(s) compile cleanly"
