#include "core/engine_slot.h"

#include <cstring>
#include <string>
#include <utility>

#include "core/log_collector.h"
#include "core/native_error.h"

namespace spleen_trt::core {

namespace {

// cuMemAlloc returns at least 256-byte aligned memory; TensorRT requires 256 for I/O tensors.
constexpr std::uintptr_t kTensorAlignment = 256;

enum EventIndex { kBeforeH2d = 0, kAfterH2d, kAfterCompute, kAfterD2h };

NativeError gpuFault() {
  return NativeError(ErrorCode::kGpuFault,
                     "An earlier run hit a sticky CUDA error (the GPU context is lost); this engine is unusable: "
                     "create a new Segmenter, and restart the process if that fails too");
}

}  // namespace

EngineSlot::EngineSlot(const CudaDriverApi& api, const SlotConfig& config, ContextFactory factory,
                       std::atomic<bool>& faulted)
    : api_(api), config_(config), factory_(std::move(factory)), faulted_(faulted) {
  const std::size_t maxBatch = static_cast<std::size_t>(config.maxBatch);
  const std::size_t inputBytes = config.inputItemFloats * maxBatch * sizeof(float);
  const std::size_t outputBytes = config.outputItemFloats * maxBatch * sizeof(float);
  if (config.activationBytes > 0) {
    activation_ = gpu::allocateDevice(api, config.activationBytes, "activation memory");
  }
  input_ = gpu::allocateDevice(api, inputBytes, "input buffer");
  output_ = gpu::allocateDevice(api, outputBytes, "output buffer");
  for (void* pointer : {input_.get(), output_.get()}) {
    if (reinterpret_cast<std::uintptr_t>(pointer) % kTensorAlignment != 0) {
      throw NativeError(ErrorCode::kInferenceFailed, "cuMemAlloc returned memory not aligned to 256 bytes");
    }
  }
  deviceMemoryBytes_ = config.activationBytes + inputBytes + outputBytes;
  hostInput_ = gpu::allocatePinned(api, inputBytes, "pinned input staging");
  hostOutput_ = gpu::allocatePinned(api, outputBytes, "pinned output staging");
  stream_ = gpu::createStream(api);
  for (auto& event : events_) event = gpu::createEvent(api);
  contextFor(config.maxBatch);
  gpu::check(api, api.streamSynchronize(stream_.get()), "cuStreamSynchronize");
}

EngineSlot::~EngineSlot() { synchronize(); }

void EngineSlot::synchronize() noexcept {
  if (stream_) api_.streamSynchronize(stream_.get());
}

EngineSlot::BatchContext& EngineSlot::contextFor(int batch) {
  const auto found = contexts_.find(batch);
  if (found != contexts_.end()) return found->second;
  // Only a context whose shape and addresses TensorRT accepted is kept: a failure here leaves no
  // half-configured context behind for the next run of this batch size.
  BatchContext entry;
  entry.context = factory_(activation_.get(), stream_.get());
  entry.context->setBatch(batch);
  entry.context->setAddresses(input_.get(), output_.get());
  return contexts_.emplace(batch, std::move(entry)).first->second;
}

void EngineSlot::fail(cuda::Result result, const char* what) {
  if (cuda::isStickyError(result)) faulted_.store(true);
  gpu::check(api_, result, what);
  throw NativeError(ErrorCode::kInferenceFailed, std::string(what) + " failed");  // not reached
}

RunTimings EngineSlot::run(const float* input, int batch, float* output) {
  if (faulted_.load()) throw gpuFault();
  if (batch < config_.minBatch || batch > config_.maxBatch) {
    throw NativeError(ErrorCode::kInferenceFailed, "Batch " + std::to_string(batch) + " is outside the engine's profile " +
                                                       std::to_string(config_.minBatch) + ".." +
                                                       std::to_string(config_.maxBatch));
  }
  cuda::Stream stream = stream_.get();
  const std::size_t inputBytes = config_.inputItemFloats * static_cast<std::size_t>(batch) * sizeof(float);
  const std::size_t outputBytes = config_.outputItemFloats * static_cast<std::size_t>(batch) * sizeof(float);
  RunTimings timings;
  auto call = [this](cuda::Result result, const char* what) {
    if (result != cuda::kSuccess) fail(result, what);
  };
  BatchContext* entry = nullptr;
  LogCapture capture(LogSeverity::kWarning);
  try {
    entry = &contextFor(batch);
    std::memcpy(hostInput_.get(), input, inputBytes);
    call(api_.eventRecord(events_[kBeforeH2d].get(), stream), "cuEventRecord");
    call(api_.memcpyHtoDAsync(gpu::devicePtr(input_), hostInput_.get(), inputBytes, stream), "cuMemcpyHtoDAsync (input)");
    call(api_.eventRecord(events_[kAfterH2d].get(), stream), "cuEventRecord");
    if (config_.useCudaGraph && entry->graph) {
      call(api_.graphLaunch(entry->graph.get(), stream), "cuGraphLaunch");
      timings.usedCudaGraph = true;
    } else if (!entry->context->enqueue(stream)) {
      std::string first;
      for (const std::string& line : capture.problems()) {
        if (line.rfind("[E]", 0) == 0 || line.rfind("[F]", 0) == 0) {
          first = ": " + line;
          break;
        }
      }
      throw NativeError(ErrorCode::kInferenceFailed, "TensorRT enqueueV3 failed" + first, capture.lines());
    }
    call(api_.eventRecord(events_[kAfterCompute].get(), stream), "cuEventRecord");
    call(api_.memcpyDtoHAsync(hostOutput_.get(), gpu::devicePtr(output_), outputBytes, stream), "cuMemcpyDtoHAsync (output)");
    call(api_.eventRecord(events_[kAfterD2h].get(), stream), "cuEventRecord");
    // Blocking-sync event: the thread sleeps until the copy is done.
    call(api_.eventSynchronize(events_[kAfterD2h].get()), "inference (cuEventSynchronize)");
    timings.h2dMs = gpu::elapsedMs(api_, events_[kBeforeH2d].get(), events_[kAfterH2d].get());
    timings.computeMs = gpu::elapsedMs(api_, events_[kAfterH2d].get(), events_[kAfterCompute].get());
    timings.d2hMs = gpu::elapsedMs(api_, events_[kAfterCompute].get(), events_[kAfterD2h].get());
    std::memcpy(output, hostOutput_.get(), outputBytes);
  } catch (const NativeError& error) {
    // Nothing queued may still read the staging buffers when the next run refills them. A sticky
    // error (which may surface only here, e.g. after enqueueV3 failed) marks the engine unusable.
    const cuda::Result drained = api_.streamSynchronize(stream);
    if (error.code() == ErrorCode::kGpuFault || cuda::isStickyError(drained)) {
      faulted_.store(true);
      if (error.code() == ErrorCode::kGpuFault) throw;
      gpu::check(api_, drained, "cuStreamSynchronize (after a failed run)");
    }
    throw;
  }
  if (config_.useCudaGraph && !entry->graph && !entry->graphFailed) captureGraph(*entry, batch);
  return timings;
}

// trtexec's recipe: after one plain enqueueV3 with this context's (fixed) shape, which flushes
// TensorRT's deferred work, capture another in thread-local mode and instantiate it. Any failure
// leaves this batch size on plain enqueueV3 for good.
void EngineSlot::captureGraph(BatchContext& entry, int batch) {
  cuda::Stream stream = stream_.get();
  cuda::Graph raw = nullptr;
  bool ok = api_.streamBeginCapture(stream, cuda::kStreamCaptureModeThreadLocal) == cuda::kSuccess;
  if (ok) {
    const bool enqueued = entry.context->enqueue(stream);
    // Ends the capture whatever happened inside it, so the stream is usable again.
    const cuda::Result ended = api_.streamEndCapture(stream, &raw);
    ok = enqueued && ended == cuda::kSuccess && raw != nullptr;
  }
  gpu::Graph graph(raw, {&api_});
  cuda::GraphExec exec = nullptr;
  if (ok) ok = api_.graphInstantiateWithFlags(&exec, raw, 0) == cuda::kSuccess && exec != nullptr;
  if (!ok) {
    entry.graphFailed = true;
    logLine(LogSeverity::kWarning, ("spleen-trt: CUDA graph capture failed for batch " + std::to_string(batch) +
                                    "; this context runs it with plain enqueueV3")
                                       .c_str());
    return;
  }
  entry.graph = gpu::GraphExec(exec, {&api_});
}

}  // namespace spleen_trt::core
