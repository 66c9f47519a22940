// A deserialized TensorRT engine and its slots, one per concurrent run (engine_slot.h: a stream,
// buffers, activation memory, and one execution context + CUDA graph per batch size). No TensorRT types in this header, so the Node-API layer compiles without TensorRT.
//
// Threading: load() and the destructor may run on any thread. run(slot, ...) must be called by
// one thread at a time per slot (RunQueue guarantees it), after bindThread() on that thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/engine_slot.h"

namespace spleen_trt::core {

struct EngineOptions {
  int device = 0;
  int contexts = 1;
  bool useCudaGraph = true;
  // A plan built version-compatible carries host code (its lean runtime) that TensorRT runs only
  // when allowed: running it executes code from the plan file, so only for plans from a trusted
  // source.
  bool allowHostCode = false;
};

struct EngineInfo {
  std::string inputName;
  std::string outputName;
  std::vector<std::int64_t> inputShapeMax;   // [maxBatch, C, d0, d1, d2]
  std::vector<std::int64_t> outputShapeMax;  // [maxBatch, outC, d0, d1, d2]
  std::int64_t outputChannels = 0;
  int profileMin = 0;
  int profileOpt = 0;
  int profileMax = 0;
  // Device memory this engine's contexts allocated: activation memory and I/O buffers of every
  // context. The weights, owned by TensorRT, are not included.
  std::uint64_t deviceMemoryBytes = 0;
  std::string tensorrtVersion;
  std::vector<std::string> log;  // TensorRT's lines from deserialization
};

class Engine {
 public:
  // Throws NativeError: ERR_TENSORRT_UNAVAILABLE, ERR_ENGINE_INCOMPATIBLE (not a plan, a plan from
  // another TensorRT, deserialization failed, unsupported I/O), ERR_NO_GPU, ERR_OUT_OF_MEMORY.
  static std::unique_ptr<Engine> load(const std::uint8_t* plan, std::size_t size, const EngineOptions& options);

  // Frees contexts (graphs, streams, buffers), then the engine, then the runtime.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineInfo& info() const noexcept;
  int contexts() const noexcept;
  // Input and output float counts of one batch item (C * d0 * d1 * d2).
  std::size_t inputItemFloats() const noexcept;
  std::size_t outputItemFloats() const noexcept;

  // Makes the engine's device current on the calling thread.
  void bindThread() const;

  // Runs `batch` items on context `slot`: `input` holds batch * inputItemFloats() floats and
  // `output` receives batch * outputItemFloats(). Blocks until the results are in `output`.
  // Throws NativeError ERR_INFERENCE_FAILED (or ERR_OUT_OF_MEMORY / ERR_NO_GPU from CUDA), or
  // ERR_GPU_FAULT after a sticky CUDA error, from then on for every run.
  RunTimings run(int slot, const float* input, int batch, float* output);

  struct Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace spleen_trt::core
