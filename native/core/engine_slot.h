// One concurrent run's worth of GPU state for an engine ("slot"): a stream, timing events, device
// I/O buffers sized for the profile's maximum batch, pinned staging buffers, activation memory,
// and one execution context per batch size, each with its own CUDA graph.
//
// Why a context per batch size: a CUDA graph bakes in the kernels of one input shape, and a shape
// change (setInputShape) defers work to the next enqueueV3, which a graph launch never performs.
// Replaying a graph on a context whose shape changed since the capture can give wrong output
// (NvInferRuntime.h; NVIDIA/TensorRT issue 3798: re-capture, or one context per graph). So each
// context gets its shape once, when it is created, and never changes it; the contexts of a slot
// share its activation memory because they only ever run one at a time on the slot's stream.
//
// TensorRT-free (the engine adapts IExecutionContext to ExecutionContext), so it is tested with a
// fake context against the fake libcuda.so.1.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "core/cuda_driver.h"
#include "core/cuda_resources.h"

namespace spleen_trt::core {

struct RunTimings {
  double h2dMs = 0;
  double computeMs = 0;
  double d2hMs = 0;
  bool usedCudaGraph = false;
};

// One TensorRT execution context as a slot drives it.
class ExecutionContext {
 public:
  virtual ~ExecutionContext() = default;
  // setInputShape with this batch, then checks the output shape TensorRT reports for it. Throws
  // NativeError when TensorRT rejects either.
  virtual void setBatch(int batch) = 0;
  // setTensorAddress for the input and the output. Throws NativeError when rejected.
  virtual void setAddresses(void* input, void* output) = 0;
  // enqueueV3 on `stream`; false when TensorRT refuses.
  virtual bool enqueue(cuda::Stream stream) = 0;
};

// A new context using `activation` (the slot's user-managed activation memory, possibly null when
// the engine needs none), with its optimization profile selected on `stream`.
using ContextFactory = std::function<std::unique_ptr<ExecutionContext>(void* activation, cuda::Stream stream)>;

struct SlotConfig {
  std::size_t inputItemFloats = 0;
  std::size_t outputItemFloats = 0;
  int minBatch = 1;
  int maxBatch = 1;
  std::size_t activationBytes = 0;
  bool useCudaGraph = true;
};

class EngineSlot {
 public:
  // Allocates the slot's memory and creates the context of the maximum batch (which checks that
  // the engine accepts it). `faulted` is the engine's flag: set when a run meets a sticky CUDA
  // error, after which every run of every slot fails with ERR_GPU_FAULT. The calling thread must
  // have the device's context current.
  EngineSlot(const CudaDriverApi& api, const SlotConfig& config, ContextFactory factory, std::atomic<bool>& faulted);
  ~EngineSlot();
  EngineSlot(const EngineSlot&) = delete;
  EngineSlot& operator=(const EngineSlot&) = delete;

  // Runs `batch` items: `input` holds batch * inputItemFloats floats, `output` receives batch *
  // outputItemFloats. Blocks (sleeping, not spinning) until the results are in `output`.
  RunTimings run(const float* input, int batch, float* output);

  // Device memory this slot allocated (activation memory and I/O buffers).
  std::uint64_t deviceMemoryBytes() const noexcept { return deviceMemoryBytes_; }
  // Contexts created so far (one per batch size run).
  int contextCount() const noexcept { return static_cast<int>(contexts_.size()); }
  // Waits for everything queued on the stream; errors ignored (teardown).
  void synchronize() noexcept;

 private:
  struct BatchContext {
    std::unique_ptr<ExecutionContext> context;
    gpu::GraphExec graph;
    bool graphFailed = false;
  };

  BatchContext& contextFor(int batch);
  void captureGraph(BatchContext& entry, int batch);
  [[noreturn]] void fail(cuda::Result result, const char* what);

  const CudaDriverApi& api_;
  SlotConfig config_;
  ContextFactory factory_;
  std::atomic<bool>& faulted_;
  std::uint64_t deviceMemoryBytes_ = 0;
  // Members are destroyed in reverse order: contexts (and their graphs) first, then the events,
  // the stream, and last the memory the contexts pointed at.
  gpu::DeviceBuffer activation_;
  gpu::DeviceBuffer input_;
  gpu::DeviceBuffer output_;
  gpu::PinnedBuffer hostInput_;
  gpu::PinnedBuffer hostOutput_;
  gpu::Stream stream_;
  gpu::Event events_[4];
  std::map<int, BatchContext> contexts_;
};

}  // namespace spleen_trt::core
