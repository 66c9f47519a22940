#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU: says whether TensorRT is there, builds the addon
# (with the TensorRT builder and runtime when TensorRT headers are found), runs the native and GPU
# tests and the benchmark, and prints a short table. Works offline; every step is time-boxed and a
# failing step does not stop the next ones. Run from anywhere:
#
#   scripts/gpu-check.sh
#   TENSORRT_ROOT=/opt/TensorRT-10.13.0.35 scripts/gpu-check.sh
#
# TensorRT is looked for in, in order: TENSORRT_ROOT (include/, lib/), TENSORRT_INCLUDE_DIR (+
# TENSORRT_PARSER_INCLUDE_DIR when NvOnnxParser.h lives elsewhere) with the libraries on the
# loader's path or in TENSORRT_LIB_DIR, the usual system locations (/usr/include/<triplet>,
# /usr/local/tensorrt, /opt/tensorrt), and the pip wheel (libraries only: the wheel ships no
# headers, so give TENSORRT_INCLUDE_DIR from the GitHub tag of the same version).
#
# Environment (all optional):
#   GPU_CHECK_OUT=<dir>        where logs and reports go (default bench/results/gpu-check-<time>)
#   GPU_TEST_TIMEOUT=<s>       vitest gpu project (default 420)
#   NATIVE_TEST_TIMEOUT=<s>    vitest native project (default 180; SKIP_NATIVE_TESTS=1 skips it)
#   BENCH_ARGS="..."           arguments for `npm run bench --` (default --quick; SKIP_BENCH=1 skips)
#   BENCH_TIMEOUT=<s>          benchmark (default 300)
#   TORCH_BASELINE=1           also time the bundle's UNet in PyTorch (bench/torch_baseline.py) and
#                              merge it into the benchmark table (TORCH_ITERATIONS, default 100)
# Exit status: 0 when the addon built and no test failed (tests skipped for want of TensorRT are
# not failures), 1 otherwise.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
out=${GPU_CHECK_OUT:-$root/bench/results/gpu-check-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
summary="$out/summary.tsv"
: >"$summary"
started_all=$SECONDS
failed=0

say() { printf '%s\n' "$*" | tee -a "$out/gpu-check.log"; }
section() { say ""; say "== $*"; }
# record <step> <status> <detail>: one row of the final table.
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$summary"; }
have() { command -v "$1" >/dev/null 2>&1; }
# run_step <seconds> <log> <command...>: runs with a time limit, output to the log and the console tail.
run_step() {
  local limit=$1 logfile=$2
  shift 2
  local begin=$SECONDS status
  if have timeout; then
    timeout --kill-after=15 "$limit" "$@" >"$logfile" 2>&1
  else
    "$@" >"$logfile" 2>&1
  fi
  status=$?
  tail -n 25 "$logfile" | sed 's/^/    /' | tee -a "$out/gpu-check.log"
  say "    (exit $status after $((SECONDS - begin)) s; full log: ${logfile#"$root"/})"
  return $status
}

# ---------------------------------------------------------------- machine
section "machine"
say "node $(node --version 2>/dev/null || echo missing), $(cmake --version 2>/dev/null | head -n 1 || echo 'cmake missing')"
gpu_name="none"
if have nvidia-smi; then
  nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | tee -a "$out/gpu-check.log"
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)
  record "GPU" "${gpu_name:-?}" "driver ${driver:-?}"
else
  say "nvidia-smi not found"
  record "GPU" "not found" "nvidia-smi missing"
fi
cuda_home=${CUDA_HOME:-/usr/local/cuda}
driver_cuda=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -n 1)
# Any toolkit will do, whatever the driver: its headers are all the build uses (NvInfer.h includes
# cuda_runtime_api.h). The addon links no CUDA runtime and calls the driver API through
# libcuda.so.1, so a CUDA 13 toolkit builds an addon that runs on an R535 (CUDA 12.2) driver.
if [[ -x $cuda_home/bin/nvcc ]]; then
  export CUDAToolkit_ROOT=$cuda_home
  nvcc_version=$("$cuda_home/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
  say "CUDA toolkit $nvcc_version at $cuda_home"
  record "CUDA toolkit" "$nvcc_version" "$cuda_home (headers only; the driver supports CUDA ${driver_cuda:-?})"
  export PATH="$cuda_home/bin:$PATH"
else
  say "no CUDA toolkit at $cuda_home (set CUDA_HOME): the addon cannot include TensorRT support"
  record "CUDA toolkit" "not found" "$cuda_home"
fi
python=${PYTHON:-python3}
torch_cuda=0
if have "$python"; then
  torch_line=$("$python" -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())' 2>/dev/null)
  if [[ -n $torch_line ]]; then
    say "PyTorch: $torch_line (version, CUDA, cuda available)"
    [[ $torch_line == *True ]] && torch_cuda=1
  fi
fi

# ---------------------------------------------------------------- TensorRT
section "TensorRT"
trt_include=${TENSORRT_INCLUDE_DIR:-}
trt_parser_include=${TENSORRT_PARSER_INCLUDE_DIR:-}
trt_libdir=${TENSORRT_LIB_DIR:-}
if [[ -n ${TENSORRT_ROOT:-} ]]; then
  [[ -z $trt_include ]] && trt_include=$TENSORRT_ROOT/include
  if [[ -z $trt_libdir ]]; then
    for candidate in "$TENSORRT_ROOT/lib" "$TENSORRT_ROOT/lib64" "$TENSORRT_ROOT/targets/x86_64-linux-gnu/lib"; do
      [[ -d $candidate ]] && trt_libdir=$candidate && break
    done
  fi
fi
if [[ -z $trt_include ]]; then
  triplet=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
  for candidate in /usr/include/"$triplet" /usr/include /usr/local/tensorrt/include /opt/tensorrt/include \
                   /usr/local/TensorRT*/include /opt/TensorRT*/include; do
    if [[ -f $candidate/NvInfer.h ]]; then
      trt_include=$candidate
      break
    fi
  done
fi
if [[ -n $trt_include && ! -f $trt_include/NvInfer.h ]]; then
  say "no NvInfer.h in $trt_include: ignoring it"
  trt_include=""
fi
[[ -z $trt_parser_include ]] && trt_parser_include=$trt_include
# The pip wheel (tensorrt / tensorrt_libs) has the libraries but no headers.
if [[ -z $trt_libdir ]] && have "$python"; then
  wheel_dir=$("$python" -c 'import os, tensorrt_libs; print(os.path.dirname(tensorrt_libs.__file__))' 2>/dev/null)
  [[ -n $wheel_dir && -d $wheel_dir ]] && trt_libdir=$wheel_dir && say "TensorRT pip wheel libraries: $wheel_dir"
fi
if [[ -n $trt_libdir ]]; then
  # TensorRT dlopens its builder resource library by name: its directory must be on the path.
  export LD_LIBRARY_PATH="$trt_libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
trt_libs=$( { ls "$trt_libdir"/libnvinfer.so.* 2>/dev/null; ldconfig -p 2>/dev/null | sed -n 's/.*=> \(.*libnvinfer\.so\.[0-9]*\)$/\1/p'; } | sort -u | tr '\n' ' ')
trt_header_version=""
if [[ -n $trt_include ]]; then
  trt_header_version=$(sed -n -E 's/^#define (NV_TENSORRT|TRT)_(MAJOR|MINOR|PATCH)(_ENTERPRISE)?[[:space:]]+([0-9]+).*/\2 \4/p' \
    "$trt_include/NvInferVersion.h" | awk '{v[$1]=$2} END {if (v["MAJOR"] != "") print v["MAJOR"] "." v["MINOR"] "." v["PATCH"]}')
  say "headers: $trt_include (TensorRT $trt_header_version)"
  [[ -f $trt_parser_include/NvOnnxParser.h ]] || say "WARNING: no NvOnnxParser.h in $trt_parser_include (set TENSORRT_PARSER_INCLUDE_DIR)"
else
  say "headers: none found (the addon builds without TensorRT support; set TENSORRT_ROOT or TENSORRT_INCLUDE_DIR)"
fi
say "libraries: ${trt_libs:-none found}"
record "TensorRT headers" "${trt_header_version:-none}" "${trt_include:-set TENSORRT_ROOT / TENSORRT_INCLUDE_DIR}"
record "TensorRT libraries" "$([[ -n $trt_libs ]] && echo found || echo none)" "${trt_libs:-libnvinfer.so.10/11 not on the loader path}"

# ---------------------------------------------------------------- build
section "build"
if [[ ! -d node_modules/vitest || ! -d node_modules/cmake-js ]]; then
  say "node_modules is missing or incomplete (vitest, cmake-js): run npm ci first"
  record "addon build" "FAILED" "node_modules missing"
  failed=1
else
  # A fresh configure, so the TensorRT paths of this run (or their absence) are the ones used.
  rm -f build/CMakeCache.txt
  build_env=(env "TENSORRT_ROOT=" "TENSORRT_INCLUDE_DIR=$trt_include" "TENSORRT_PARSER_INCLUDE_DIR=$trt_parser_include")
  if run_step 600 "$out/build-addon.log" "${build_env[@]}" node scripts/build-addon.mjs --force --require; then
    needed=$(readelf -d build/Release/spleen_trt.node 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
    record "addon build" "ok" "$([[ -n $trt_include ]] && echo "with TensorRT $trt_header_version headers" || echo "without TensorRT headers"); NEEDED: $needed"
    # The addon must not depend on a CUDA runtime (dynamically or statically linked): CUDA 13's
    # refuses drivers older than R580. NEEDED lists the dynamic ones; nm finds a static copy.
    cudart_needed=$(tr ' ' '\n' <<<"$needed" | grep -E 'cudart|libcuda|nvinfer' | tr '\n' ' ')
    cudart_symbols=$(nm build/Release/spleen_trt.node 2>/dev/null | grep -c -E 'cudart|cudaGetErrorString|cudaMalloc')
    if [[ -z $cudart_needed && $cudart_symbols == 0 ]]; then
      record "no CUDA runtime" "verified" "readelf -d: no NEEDED libcudart/libcuda/libnvinfer; nm: 0 cudart symbols (driver API via dlopen)"
    else
      record "no CUDA runtime" "FAILED" "NEEDED: ${cudart_needed:-none}; cudart symbols: $cudart_symbols"
      failed=1
    fi
  else
    record "addon build" "FAILED" "see build-addon.log"
    failed=1
  fi
  if run_step 300 "$out/tsc.log" npx tsc -p tsconfig.build.json; then
    record "TypeScript build" "ok" "dist/"
  else
    record "TypeScript build" "FAILED" "see tsc.log"
    failed=1
  fi
fi

# ---------------------------------------------------------------- runtime info
section "runtime info"
if [[ -f build/Release/spleen_trt.node ]]; then
  node -e '
    const addon = require(process.argv[1]);
    (async () => {
      const info = await addon.getRuntimeInfoAsync();
      const trt = addon.getTensorRtStatusAsync ? await addon.getTensorRtStatusAsync() : { available: false, reason: "addon too old" };
      const lines = [
        ["CUDA driver", info.cuda.driverAvailable ? "ok" : "unavailable", (info.cuda.driverVersion ? "CUDA " + info.cuda.driverVersion + "; " : "") + (info.cuda.devices.map((d) => d.name + " sm" + d.computeCapability).join(", ") || info.cuda.reason || "")],
        ["TensorRT usable", trt.available ? "yes" : "no", trt.available ? "TensorRT " + trt.version : trt.reason],
        ["driver for TensorRT", info.tensorrt.driverSufficient === undefined ? "?" : info.tensorrt.driverSufficient ? "sufficient" : "TOO OLD", "driver CUDA " + (info.cuda.driverVersion || "?") + ", TensorRT " + (info.tensorrt.major || "?") + " needs >= " + (info.tensorrt.requiredDriverCudaVersion || "?") + (info.tensorrt.driverNote ? "; " + info.tensorrt.driverNote : "")],
        ["ONNX parser", info.tensorrt.parserAvailable ? "found" : "missing", info.tensorrt.parserLibraryPath || info.tensorrt.parserReason || ""],
        ["builder resource", info.tensorrt.builderResourceAvailable ? "found" : "missing", info.tensorrt.builderResourcePath || info.tensorrt.builderResourceReason || ""],
      ];
      for (const line of lines) console.log(line.join("\t"));
    })().catch((error) => { console.log("runtime info\tFAILED\t" + error.message); });
  ' "$root/build/Release/spleen_trt.node" | tee -a "$summary" | sed 's/\t/  |  /g' | tee -a "$out/gpu-check.log"
else
  say "no addon to ask"
fi

# ---------------------------------------------------------------- tests
vitest_counts() {  # <json report> -> "passed P, failed F, skipped S"
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(`passed ${r.numPassedTests}, failed ${r.numFailedTests}, skipped ${r.numPendingTests + (r.numTodoTests || 0)}`);
  ' "$1" 2>/dev/null || echo "no report"
}

if [[ -d node_modules/vitest && ${SKIP_NATIVE_TESTS:-0} != 1 ]]; then
  section "native tests (vitest --project native)"
  if run_step "${NATIVE_TEST_TIMEOUT:-180}" "$out/vitest-native.log" \
      npx vitest run --project native --reporter=default --reporter=json --outputFile.json="$out/vitest-native.json"; then
    record "native tests" "ok" "$(vitest_counts "$out/vitest-native.json")"
  else
    record "native tests" "FAILED" "$(vitest_counts "$out/vitest-native.json"); see vitest-native.log"
    failed=1
  fi
fi

report="$out/gpu-report.jsonl"
: >"$report"
if [[ -d node_modules/vitest ]]; then
  section "GPU tests (vitest --project gpu)"
  if SPLEEN_TRT_GPU_REPORT="$report" run_step "${GPU_TEST_TIMEOUT:-420}" "$out/vitest-gpu.log" \
      npx vitest run --project gpu --reporter=default --reporter=json --outputFile.json="$out/vitest-gpu.json"; then
    record "GPU tests" "ok" "$(vitest_counts "$out/vitest-gpu.json")"
  else
    record "GPU tests" "FAILED" "$(vitest_counts "$out/vitest-gpu.json"); see vitest-gpu.log"
    failed=1
  fi
  grep -h "skipped:" "$out/vitest-gpu.log" 2>/dev/null | head -n 3 | sed 's/^/    /' | tee -a "$out/gpu-check.log"
  # Measured errors and timings the GPU tests appended (test/gpu/tensorrt.test.ts).
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const f = (x, d = 3) => (typeof x === "number" ? x.toFixed(d) : "?");
    for (const e of lines) {
      if (e.test === "build") console.log(`engine build ${e.precision}\tok\t${f(e.seconds, 1)} s, plan ${(e.planBytes / 1e6).toFixed(1)} MB`);
      if (e.test === "parity") console.log(`parity ${e.precision} batch ${e.batch}\tmax|d| ${e.maxAbs.toExponential(2)}\tlogit scale ${f(e.scale, 2)}, argmax agree ${(100 * e.argmaxAgreement).toFixed(3)} %, compute ${f(e.computeMs)} ms`);
      // Each batch size has its own context and graph: replays after a shape change are exact (compared in the test).
      if (e.test === "graphs") console.log(`CUDA graphs\t${e.runs.every((r, i) => r.graph === [false, false, true, true, false, true, true][i]) ? "as expected" : "UNEXPECTED"}\t${e.runs.map((r) => r.batch + (r.graph ? "g" : "p")).join(" ")} (g: graph replay, p: plain enqueue)`);
    }
  ' "$report" 2>/dev/null | tee -a "$summary" >/dev/null
fi

# ---------------------------------------------------------------- benchmark
if [[ ${SKIP_BENCH:-0} != 1 ]] && node -e 'process.exit(require("./package.json").scripts?.bench ? 0 : 1)' 2>/dev/null; then
  section "benchmark (npm run bench)"
  read -r -a bench_args <<<"${BENCH_ARGS---quick}"
  if [[ ${TORCH_BASELINE:-0} == 1 && $torch_cuda == 1 && -f bench/torch_baseline.py && -f scripts/reference/export-weights.mjs ]]; then
    if run_step 120 "$out/export-weights.log" node scripts/reference/export-weights.mjs "$out/weights.bin" &&
       run_step 600 "$out/torch-baseline.log" "$python" bench/torch_baseline.py --weights "$out/weights.bin" \
         --out "$out/torch.json" --iterations "${TORCH_ITERATIONS:-100}"; then
      bench_args+=(--merge "$out/torch.json")
      record "PyTorch baseline" "ok" "torch.json merged into the benchmark"
    else
      record "PyTorch baseline" "FAILED" "see torch-baseline.log"
    fi
  fi
  if run_step "${BENCH_TIMEOUT:-300}" "$out/bench.log" npm run --silent bench -- "${bench_args[@]}" -o "$out/bench"; then
    record "benchmark" "ok" "npm run bench -- ${bench_args[*]} (tables in ${out#"$root"/}/bench)"
  else
    record "benchmark" "FAILED" "see bench.log"
    failed=1
  fi
fi

# ---------------------------------------------------------------- table
section "summary ($((SECONDS - started_all)) s; logs in ${out#"$root"/})"
awk -F'\t' '{ a[NR] = $1; b[NR] = $2; c[NR] = $3; if (length($1) > w1) w1 = length($1); if (length($2) > w2) w2 = length($2) }
  END { for (i = 1; i <= NR; i++) printf "%-*s  %-*s  %s\n", w1, a[i], w2, b[i], c[i] }' "$summary" | tee -a "$out/gpu-check.log"
exit $failed
