#include "core/tensorrt_engine.h"

#include "core/native_error.h"
#include "core/tensorrt_status.h"

#if SPLEEN_TRT_HAS_TENSORRT_HEADERS
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "core/cuda_resources.h"
#include "core/log_collector.h"
#include "core/plan_header.h"
#include "core/tensorrt_common.h"
#endif

namespace spleen_trt::core {

#if SPLEEN_TRT_HAS_TENSORRT_HEADERS

namespace {

using nvinfer1::Dims;

// cudaMalloc returns at least 256-byte aligned memory; TensorRT requires 256 for I/O tensors.
constexpr std::uintptr_t kTensorAlignment = 256;

enum EventIndex { kBeforeH2d = 0, kAfterH2d, kAfterCompute, kAfterD2h, kEventCount };

// One execution context and everything it runs with. Members are destroyed in reverse order:
// graphs, the context, events, stream, then the memory the context pointed at.
struct Slot {
  cuda_rt::DeviceBuffer activation;
  cuda_rt::DeviceBuffer input;
  cuda_rt::DeviceBuffer output;
  cuda_rt::PinnedBuffer hostInput;
  cuda_rt::PinnedBuffer hostOutput;
  cuda_rt::Stream stream;
  cuda_rt::Event events[kEventCount];
  trt::Ptr<nvinfer1::IExecutionContext> context;
  // A graph replays the kernels of one input shape with this context's addresses baked in, so
  // there is one per batch size.
  std::map<int, cuda_rt::GraphExec> graphs;
  std::set<int> graphFailed;
  int currentBatch = 0;
};

std::string formatDims(const Dims& dims) {
  std::string text = "[";
  for (int i = 0; i < dims.nbDims; ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(dims.d[i]);
  }
  return text + "]";
}

std::int64_t volume(const Dims& dims, int from) {
  std::int64_t count = 1;
  for (int i = from; i < dims.nbDims; ++i) count *= dims.d[i];
  return count;
}

bool allPositive(const Dims& dims) {
  for (int i = 0; i < dims.nbDims; ++i) {
    if (dims.d[i] <= 0) return false;
  }
  return true;
}

const char* dataTypeName(nvinfer1::DataType type) {
  switch (type) {
    case nvinfer1::DataType::kFLOAT: return "float32";
    case nvinfer1::DataType::kHALF: return "float16";
    case nvinfer1::DataType::kINT8: return "int8";
    case nvinfer1::DataType::kINT32: return "int32";
    case nvinfer1::DataType::kBOOL: return "bool";
    case nvinfer1::DataType::kUINT8: return "uint8";
    case nvinfer1::DataType::kBF16: return "bfloat16";
    case nvinfer1::DataType::kINT64: return "int64";
    default: return "another type";
  }
}

std::string firstError(const LogCapture& capture) {
  for (const std::string& line : capture.problems()) {
    if (line.rfind("[E]", 0) == 0 || line.rfind("[F]", 0) == 0) return ": " + line;
  }
  return "";
}

std::vector<std::int64_t> toVector(const Dims& dims) {
  return std::vector<std::int64_t>(dims.d, dims.d + dims.nbDims);
}

}  // namespace

struct Engine::Impl {
  int device = 0;
  bool useCudaGraph = true;
  EngineInfo info;
  std::size_t inputItemFloats = 0;
  std::size_t outputItemFloats = 0;
  Dims inputMax{};
  trt::Ptr<nvinfer1::IRuntime> runtime;
  trt::Ptr<nvinfer1::ICudaEngine> engine;
  std::vector<std::unique_ptr<Slot>> slots;

  ~Impl() {
    // Frees may run on a thread that never selected this device.
    cudaSetDevice(device);
    for (auto& slot : slots) {
      if (slot && slot->stream) cudaStreamSynchronize(slot->stream.get());
    }
    slots.clear();   // contexts first,
    engine.reset();  // then the engine,
    runtime.reset(); // then the runtime that deserialized it.
    cudaGetLastError();
  }

  void setBatch(Slot& slot, int batch) {
    if (slot.currentBatch == batch) return;
    Dims dims = inputMax;
    dims.d[0] = batch;
    if (!slot.context->setInputShape(info.inputName.c_str(), dims)) {
      throw NativeError(ErrorCode::kInferenceFailed, "TensorRT rejected input shape " + formatDims(dims));
    }
    const Dims out = slot.context->getTensorShape(info.outputName.c_str());
    if (out.nbDims < 1 || out.d[0] != batch ||
        volume(out, 0) != static_cast<std::int64_t>(outputItemFloats) * batch) {
      throw NativeError(ErrorCode::kInferenceFailed, "Unexpected output shape " + formatDims(out) + " for input " +
                                                         formatDims(dims));
    }
    slot.currentBatch = batch;
  }

  // trtexec's recipe: after one plain enqueueV3 with this shape (which flushes TensorRT's
  // deferred updates), capture another in thread-local mode and instantiate it. Any failure
  // leaves this batch size on plain enqueueV3 for good.
  void captureGraph(Slot& slot, int batch) {
    cudaStream_t stream = slot.stream.get();
    cudaGraph_t raw = nullptr;
    bool ok = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess;
    if (ok) {
      const bool enqueued = slot.context->enqueueV3(stream);
      // Ends the capture whatever happened inside it, so the stream is usable again.
      const cudaError_t ended = cudaStreamEndCapture(stream, &raw);
      ok = enqueued && ended == cudaSuccess && raw != nullptr;
    }
    cuda_rt::Graph graph(raw);
    cudaGraphExec_t exec = nullptr;
    if (ok) ok = cudaGraphInstantiateWithFlags(&exec, raw, 0) == cudaSuccess && exec != nullptr;
    if (!ok) {
      cudaGetLastError();
      slot.graphFailed.insert(batch);
      logLine(LogSeverity::kWarning, ("spleen-trt: CUDA graph capture failed for batch " + std::to_string(batch) +
                                      "; this context runs it with plain enqueueV3")
                                         .c_str());
      return;
    }
    slot.graphs.emplace(batch, cuda_rt::GraphExec(exec));
  }
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const std::uint8_t* plan, std::size_t size, const EngineOptions& options) {
  LogCapture capture(LogSeverity::kInfo);
  const TensorRtLibraries& libraries = trt::requireLibraries();
  const std::string loaded = trt::loadedVersion(libraries);

  const PlanHeader header = parsePlanHeader(plan, size);
  if (!header.isPlan) {
    throw NativeError(ErrorCode::kEngineIncompatible,
                      "Not a TensorRT plan: the " + std::to_string(size) +
                          " bytes do not start with a serialized engine's magic (\"ftrt\")");
  }
  const TensorRtVersion library = libraries.version();
  const bool sameVersion = header.major == library.major && header.minor == library.minor && header.patch == library.patch;
  if (header.major != library.major) {
    throw NativeError(ErrorCode::kEngineIncompatible, "The plan was built by TensorRT " + formatPlanVersion(header) +
                                                          "; the loaded TensorRT is " + loaded +
                                                          ": rebuild the engine with this TensorRT");
  }

  cuda_rt::selectDevice(options.device);
  auto impl = std::make_unique<Impl>();
  impl->device = options.device;
  impl->useCudaGraph = options.useCudaGraph;
  impl->info.tensorrtVersion = loaded;

  impl->runtime.reset(trt::createRuntime(libraries));
  if (!impl->runtime) {
    throw NativeError(ErrorCode::kTensorRtUnavailable,
                      "TensorRT could not create a runtime (createInferRuntime returned null)" + firstError(capture),
                      capture.lines());
  }
  // A plan built with kVERSION_COMPATIBLE carries its own lean runtime (host code), which a newer
  // TensorRT runs only when allowed; loading a plan trusts its producer in any case.
  impl->runtime->setEngineHostCodeAllowed(true);
  impl->engine.reset(impl->runtime->deserializeCudaEngine(plan, size));
  if (!impl->engine) {
    // Within one major, a plan from another release loads only if it was built version-compatible;
    // TensorRT itself checks and refuses the rest, which lands here.
    const std::string why = sameVersion ? "TensorRT could not deserialize the plan (built by TensorRT " +
                                              formatPlanVersion(header) + ")"
                                        : "The plan was built by TensorRT " + formatPlanVersion(header) +
                                              " and the loaded TensorRT " + loaded +
                                              " cannot deserialize it (not version-compatible): rebuild the engine";
    throw NativeError(ErrorCode::kEngineIncompatible, why + firstError(capture), capture.lines());
  }
  nvinfer1::ICudaEngine& engine = *impl->engine;

  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  for (int i = 0; i < engine.getNbIOTensors(); ++i) {
    const char* name = engine.getIOTensorName(i);
    if (name == nullptr) continue;
    (engine.getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT ? inputs : outputs).emplace_back(name);
  }
  if (inputs.size() != 1 || outputs.size() != 1) {
    throw NativeError(ErrorCode::kEngineIncompatible, "The engine has " + std::to_string(inputs.size()) + " input(s) and " +
                                                          std::to_string(outputs.size()) +
                                                          " output(s); spleen-trt runs engines with exactly one of each");
  }
  EngineInfo& info = impl->info;
  info.inputName = inputs.front();
  info.outputName = outputs.front();
  for (const std::string* name : {&info.inputName, &info.outputName}) {
    const nvinfer1::DataType type = engine.getTensorDataType(name->c_str());
    if (type != nvinfer1::DataType::kFLOAT) {
      throw NativeError(ErrorCode::kEngineIncompatible, "Tensor \"" + *name + "\" is " + dataTypeName(type) +
                                                            "; spleen-trt feeds and reads float32 (an fp16 engine "
                                                            "keeps float32 input and output)");
    }
  }
  if (engine.getNbOptimizationProfiles() < 1) {
    throw NativeError(ErrorCode::kEngineIncompatible, "The engine has no optimization profile");
  }
  const char* inputName = info.inputName.c_str();
  const Dims minDims = engine.getProfileShape(inputName, 0, nvinfer1::OptProfileSelector::kMIN);
  const Dims optDims = engine.getProfileShape(inputName, 0, nvinfer1::OptProfileSelector::kOPT);
  const Dims maxDims = engine.getProfileShape(inputName, 0, nvinfer1::OptProfileSelector::kMAX);
  bool onlyBatchVaries = minDims.nbDims == maxDims.nbDims;
  for (int i = 1; onlyBatchVaries && i < maxDims.nbDims; ++i) onlyBatchVaries = minDims.d[i] == maxDims.d[i];
  if (maxDims.nbDims != 5 || !allPositive(minDims) || !allPositive(maxDims) || !onlyBatchVaries) {
    throw NativeError(ErrorCode::kEngineIncompatible,
                      "Input \"" + info.inputName + "\" has profile " + formatDims(minDims) + " .. " + formatDims(maxDims) +
                          "; expected [batch, channels, d0, d1, d2] with only the batch varying");
  }
  impl->inputMax = maxDims;
  info.profileMin = static_cast<int>(minDims.d[0]);
  info.profileOpt = static_cast<int>(optDims.d[0]);
  info.profileMax = static_cast<int>(maxDims.d[0]);
  info.inputShapeMax = toVector(maxDims);
  impl->inputItemFloats = static_cast<std::size_t>(volume(maxDims, 1));

  const std::int64_t activationBytes = engine.getDeviceMemorySizeV2();
  const std::size_t inputBytes = impl->inputItemFloats * static_cast<std::size_t>(info.profileMax) * sizeof(float);
  for (int s = 0; s < options.contexts; ++s) {
    auto slot = std::make_unique<Slot>();
    // kUSER_MANAGED: TensorRT allocates no activation memory of its own, so nothing is allocated
    // inside enqueue and the memory accounting is exact.
    slot->context.reset(engine.createExecutionContext(nvinfer1::ExecutionContextAllocationStrategy::kUSER_MANAGED));
    if (!slot->context) {
      throw NativeError(ErrorCode::kInferenceFailed, "TensorRT could not create execution context " + std::to_string(s) +
                                                         firstError(capture),
                        capture.lines());
    }
    slot->stream = cuda_rt::createStream();
    for (auto& event : slot->events) event = cuda_rt::createEvent();
    if (activationBytes > 0) {
      slot->activation = cuda_rt::allocateDevice(static_cast<std::size_t>(activationBytes), "activation memory");
      slot->context->setDeviceMemoryV2(slot->activation.get(), activationBytes);
      info.deviceMemoryBytes += static_cast<std::uint64_t>(activationBytes);
    }
    if (!slot->context->setOptimizationProfileAsync(0, slot->stream.get())) {
      throw NativeError(ErrorCode::kEngineIncompatible, "TensorRT could not select optimization profile 0" + firstError(capture),
                        capture.lines());
    }
    if (!slot->context->setInputShape(inputName, maxDims)) {
      throw NativeError(ErrorCode::kEngineIncompatible, "TensorRT rejected input shape " + formatDims(maxDims) +
                                                            firstError(capture),
                        capture.lines());
    }
    const Dims outDims = slot->context->getTensorShape(info.outputName.c_str());
    if (outDims.nbDims != 5 || !allPositive(outDims) || outDims.d[0] != maxDims.d[0]) {
      throw NativeError(ErrorCode::kEngineIncompatible, "Output \"" + info.outputName + "\" has shape " + formatDims(outDims) +
                                                            " for input " + formatDims(maxDims) +
                                                            "; expected [batch, channels, d0, d1, d2]");
    }
    if (s == 0) {
      info.outputShapeMax = toVector(outDims);
      info.outputChannels = outDims.d[1];
      impl->outputItemFloats = static_cast<std::size_t>(volume(outDims, 1));
    }
    slot->currentBatch = info.profileMax;
    const std::size_t outputBytes = impl->outputItemFloats * static_cast<std::size_t>(info.profileMax) * sizeof(float);
    slot->input = cuda_rt::allocateDevice(inputBytes, "input buffer");
    slot->output = cuda_rt::allocateDevice(outputBytes, "output buffer");
    info.deviceMemoryBytes += inputBytes + outputBytes;
    for (void* pointer : {slot->input.get(), slot->output.get()}) {
      if (reinterpret_cast<std::uintptr_t>(pointer) % kTensorAlignment != 0) {
        throw NativeError(ErrorCode::kInferenceFailed, "cudaMalloc returned memory not aligned to 256 bytes");
      }
    }
    slot->hostInput = cuda_rt::allocatePinned(inputBytes, "pinned input staging");
    slot->hostOutput = cuda_rt::allocatePinned(outputBytes, "pinned output staging");
    // Fixed for the context's life: CUDA graphs bake these addresses in.
    if (!slot->context->setTensorAddress(inputName, slot->input.get()) ||
        !slot->context->setTensorAddress(info.outputName.c_str(), slot->output.get())) {
      throw NativeError(ErrorCode::kInferenceFailed, "TensorRT rejected the I/O tensor addresses" + firstError(capture),
                        capture.lines());
    }
    cuda_rt::check(cudaStreamSynchronize(slot->stream.get()), "cudaStreamSynchronize");
    impl->slots.push_back(std::move(slot));
  }
  info.log = capture.lines();
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

const EngineInfo& Engine::info() const noexcept { return impl_->info; }
int Engine::contexts() const noexcept { return static_cast<int>(impl_->slots.size()); }
std::size_t Engine::inputItemFloats() const noexcept { return impl_->inputItemFloats; }
std::size_t Engine::outputItemFloats() const noexcept { return impl_->outputItemFloats; }

void Engine::bindThread() const { cuda_rt::check(cudaSetDevice(impl_->device), "cudaSetDevice", ErrorCode::kNoGpu); }

RunTimings Engine::run(int slotIndex, const float* input, int batch, float* output) {
  Impl& impl = *impl_;
  if (slotIndex < 0 || slotIndex >= static_cast<int>(impl.slots.size())) {
    throw NativeError(ErrorCode::kInferenceFailed, "No execution context " + std::to_string(slotIndex));
  }
  if (batch < impl.info.profileMin || batch > impl.info.profileMax) {
    throw NativeError(ErrorCode::kInferenceFailed, "Batch " + std::to_string(batch) + " is outside the engine's profile " +
                                                       std::to_string(impl.info.profileMin) + ".." +
                                                       std::to_string(impl.info.profileMax));
  }
  Slot& slot = *impl.slots[static_cast<std::size_t>(slotIndex)];
  LogCapture capture(LogSeverity::kWarning);
  cudaStream_t stream = slot.stream.get();
  const std::size_t inputBytes = impl.inputItemFloats * static_cast<std::size_t>(batch) * sizeof(float);
  const std::size_t outputBytes = impl.outputItemFloats * static_cast<std::size_t>(batch) * sizeof(float);
  RunTimings timings;
  try {
    // Also before a graph launch: the context's shape must match what the graph was captured
    // with, in case TensorRT keeps shape-dependent state outside the captured work.
    impl.setBatch(slot, batch);
    std::memcpy(slot.hostInput.get(), input, inputBytes);
    cuda_rt::check(cudaEventRecord(slot.events[kBeforeH2d].get(), stream), "cudaEventRecord");
    cuda_rt::check(cudaMemcpyAsync(slot.input.get(), slot.hostInput.get(), inputBytes, cudaMemcpyHostToDevice, stream),
                   "cudaMemcpyAsync (input)");
    cuda_rt::check(cudaEventRecord(slot.events[kAfterH2d].get(), stream), "cudaEventRecord");
    const auto graph = impl.useCudaGraph ? slot.graphs.find(batch) : slot.graphs.end();
    if (graph != slot.graphs.end()) {
      cuda_rt::check(cudaGraphLaunch(graph->second.get(), stream), "cudaGraphLaunch");
      timings.usedCudaGraph = true;
    } else if (!slot.context->enqueueV3(stream)) {
      throw NativeError(ErrorCode::kInferenceFailed, "TensorRT enqueueV3 failed" + firstError(capture), capture.lines());
    }
    cuda_rt::check(cudaEventRecord(slot.events[kAfterCompute].get(), stream), "cudaEventRecord");
    cuda_rt::check(cudaMemcpyAsync(slot.hostOutput.get(), slot.output.get(), outputBytes, cudaMemcpyDeviceToHost, stream),
                   "cudaMemcpyAsync (output)");
    cuda_rt::check(cudaEventRecord(slot.events[kAfterD2h].get(), stream), "cudaEventRecord");
    cuda_rt::check(cudaEventSynchronize(slot.events[kAfterD2h].get()), "inference (cudaEventSynchronize)");
    timings.h2dMs = cuda_rt::elapsedMs(slot.events[kBeforeH2d].get(), slot.events[kAfterH2d].get());
    timings.computeMs = cuda_rt::elapsedMs(slot.events[kAfterH2d].get(), slot.events[kAfterCompute].get());
    timings.d2hMs = cuda_rt::elapsedMs(slot.events[kAfterCompute].get(), slot.events[kAfterD2h].get());
    std::memcpy(output, slot.hostOutput.get(), outputBytes);
  } catch (...) {
    // Nothing queued may still read the staging buffers when the next run refills them.
    cudaStreamSynchronize(stream);
    cudaGetLastError();
    throw;
  }
  if (impl.useCudaGraph && !timings.usedCudaGraph && slot.graphFailed.count(batch) == 0) impl.captureGraph(slot, batch);
  return timings;
}

#else  // !SPLEEN_TRT_HAS_TENSORRT_HEADERS

struct Engine::Impl {
  EngineInfo info;
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const std::uint8_t* /*plan*/, std::size_t /*size*/, const EngineOptions& /*options*/) {
  throw NativeError(ErrorCode::kTensorRtUnavailable, "TensorRT is unavailable: " + tensorRtStatus().reason);
}

const EngineInfo& Engine::info() const noexcept { return impl_->info; }
int Engine::contexts() const noexcept { return 0; }
std::size_t Engine::inputItemFloats() const noexcept { return 0; }
std::size_t Engine::outputItemFloats() const noexcept { return 0; }
void Engine::bindThread() const {}

RunTimings Engine::run(int /*slot*/, const float* /*input*/, int /*batch*/, float* /*output*/) {
  throw NativeError(ErrorCode::kTensorRtUnavailable, "TensorRT is unavailable: " + tensorRtStatus().reason);
}

#endif  // SPLEEN_TRT_HAS_TENSORRT_HEADERS

}  // namespace spleen_trt::core
