// Builds a serialized TensorRT engine (a plan) from ONNX bytes: parse, one optimization profile
// on the input's batch dimension, precision flags, workspace, optimization level, timing cache,
// version/hardware compatibility. Blocking for minutes: run it on a thread of its own, never the
// JS thread or the libuv pool. Plain data in and out; no TensorRT types in this header, so the
// Node-API layer compiles without TensorRT headers.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace spleen_trt::core {

enum class Precision {
  kFp32,  // TF32 cleared: torch-equivalent fp32 arithmetic
  kTf32,  // TensorRT's default: TF32 tensor cores for fp32 convolutions
  kFp16,  // kFP16 on TensorRT 10; on 11 the ONNX itself must already be fp16 (strongly typed):
          // an fp32 ONNX is refused with ERR_BUILD_FAILED
};

enum class HardwareCompat { kNone, kAmperePlus };

struct BuildRequest {
  std::vector<std::uint8_t> onnx;
  Precision precision = Precision::kFp32;
  std::string inputName;
  int batchMin = 1;
  int batchOpt = 1;
  int batchMax = 1;
  int spatial[3] = {0, 0, 0};
  std::uint64_t workspaceBytes = 0;  // 0: TensorRT's default (the device's memory)
  int optimizationLevel = 3;
  bool versionCompatible = false;
  HardwareCompat hardwareCompat = HardwareCompat::kNone;
  int device = 0;
  bool hasTimingCache = false;
  std::vector<std::uint8_t> timingCache;
  // Use a timing cache made for another device or TensorRT anyway (NvInfer.h: "may lead to
  // functional/performance bugs"). Off: such a cache is replaced by a fresh one.
  bool timingCacheIgnoreMismatch = false;
};

struct BuildProgress {
  std::string phase;
  int current = 0;
  int total = 0;
};

struct BuildResult {
  std::vector<std::uint8_t> plan;
  std::vector<std::uint8_t> timingCache;  // this build's cache (started from the given one)
  std::string tensorrtVersion;            // of the library that built the plan
  std::vector<std::string> log;
};

// Called on the build thread (or TensorRT's); must be quick and thread-safe.
using ProgressCallback = std::function<void(const BuildProgress&)>;

// Throws NativeError: ERR_TENSORRT_UNAVAILABLE, ERR_NO_GPU, ERR_ONNX_PARSE (details: one line
// per parser error), ERR_BUILD_FAILED (details: the build's TensorRT log), ERR_OUT_OF_MEMORY,
// ERR_ABORTED (once `cancelled` is set; TensorRT polls it between build steps).
BuildResult buildEngine(const BuildRequest& request, const ProgressCallback& onProgress,
                        const std::atomic<bool>& cancelled);

}  // namespace spleen_trt::core
