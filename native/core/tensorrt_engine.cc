#include "core/tensorrt_engine.h"

#include "core/native_error.h"
#include "core/tensorrt_status.h"

#if SPLEEN_TRT_HAS_TENSORRT_HEADERS
#include <atomic>
#include <mutex>
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

// One IExecutionContext, with the shape and addresses the slot gives it once.
class TensorRtContext final : public ExecutionContext {
 public:
  TensorRtContext(nvinfer1::IExecutionContext* context, const std::string& inputName, const std::string& outputName,
                  const Dims& inputMax, std::size_t outputItemFloats)
      : context_(context), inputName_(inputName), outputName_(outputName), inputMax_(inputMax),
        outputItemFloats_(outputItemFloats) {}

  void setBatch(int batch) override {
    Dims dims = inputMax_;
    dims.d[0] = batch;
    LogCapture capture(LogSeverity::kWarning);
    if (!context_->setInputShape(inputName_.c_str(), dims)) {
      throw NativeError(ErrorCode::kInferenceFailed, "TensorRT rejected input shape " + formatDims(dims) + firstError(capture),
                        capture.lines());
    }
    const Dims out = context_->getTensorShape(outputName_.c_str());
    if (out.nbDims < 1 || out.d[0] != batch ||
        volume(out, 0) != static_cast<std::int64_t>(outputItemFloats_) * batch) {
      throw NativeError(ErrorCode::kInferenceFailed, "Unexpected output shape " + formatDims(out) + " for input " +
                                                         formatDims(dims));
    }
  }

  void setAddresses(void* input, void* output) override {
    // Fixed for the context's life: its CUDA graph bakes these addresses in.
    if (!context_->setTensorAddress(inputName_.c_str(), input) ||
        !context_->setTensorAddress(outputName_.c_str(), output)) {
      throw NativeError(ErrorCode::kInferenceFailed, "TensorRT rejected the I/O tensor addresses");
    }
  }

  bool enqueue(cuda::Stream stream) override {
    // A CUstream is the same handle as the runtime's cudaStream_t.
    return context_->enqueueV3(reinterpret_cast<cudaStream_t>(stream));
  }

 private:
  trt::Ptr<nvinfer1::IExecutionContext> context_;
  std::string inputName_;
  std::string outputName_;
  Dims inputMax_;
  std::size_t outputItemFloats_;
};

}  // namespace

struct Engine::Impl {
  bool useCudaGraph = true;
  EngineInfo info;
  std::size_t inputItemFloats = 0;
  std::size_t outputItemFloats = 0;
  Dims inputMax{};
  std::atomic<bool> faulted{false};
  std::mutex createMutex;
  // Declaration order is destruction order reversed: slots (contexts, graphs, streams, buffers)
  // first, then the engine, the runtime, and last the device context they all used.
  std::unique_ptr<gpu::PrimaryContext> primary;
  trt::Ptr<nvinfer1::IRuntime> runtime;
  trt::Ptr<nvinfer1::ICudaEngine> engine;
  std::vector<std::unique_ptr<EngineSlot>> slots;

  ~Impl() {
    // Frees may run on a thread that never selected this device.
    if (primary) {
      try {
        primary->makeCurrent();
      } catch (...) {
      }
    }
    slots.clear();   // contexts first,
    engine.reset();  // then the engine,
    runtime.reset(); // then the runtime that deserialized it.
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
  const bool sameVersion = header.versionKnown && header.major == library.major && header.minor == library.minor &&
                           header.patch == library.patch;
  // A header whose layout we do not know says nothing about its version: TensorRT decides.
  if (header.versionKnown && header.major != library.major) {
    throw NativeError(ErrorCode::kEngineIncompatible, "The plan was built by TensorRT " + formatPlanVersion(header) +
                                                          "; the loaded TensorRT is " + loaded +
                                                          ": rebuild the engine with this TensorRT");
  }

  const CudaDriverApi& api = gpu::requireDriver();
  auto impl = std::make_unique<Impl>();
  impl->primary = std::make_unique<gpu::PrimaryContext>(api, options.device);
  impl->primary->makeCurrent();
  impl->useCudaGraph = options.useCudaGraph;
  impl->info.tensorrtVersion = loaded;

  impl->runtime.reset(trt::createRuntime(libraries));
  if (!impl->runtime) {
    throw NativeError(ErrorCode::kTensorRtUnavailable,
                      "TensorRT could not create a runtime (createInferRuntime returned null)" + firstError(capture),
                      capture.lines());
  }
  // A plan built with kVERSION_COMPATIBLE carries its own lean runtime (host code), which TensorRT
  // runs only when allowed ("the runtime will execute host code from the plan": a plan from an
  // untrusted path could run anything). Off unless the caller opts in.
  impl->runtime->setEngineHostCodeAllowed(options.allowHostCode);
  impl->engine.reset(impl->runtime->deserializeCudaEngine(plan, size));
  if (!impl->engine) {
    // Within one major, a plan from another release loads only if it was built version-compatible;
    // TensorRT itself checks and refuses the rest, which lands here.
    const std::string why = sameVersion ? "TensorRT could not deserialize the plan (built by TensorRT " +
                                              formatPlanVersion(header) + ")"
                                        : "The plan was built by TensorRT " + formatPlanVersion(header) +
                                              " and the loaded TensorRT " + loaded +
                                              " cannot deserialize it (not version-compatible): rebuild the engine";
    // A version-compatible plan carries host code, which TensorRT refuses unless allowed.
    const std::string hostCode = options.allowHostCode ? ""
                                                       : " (a version-compatible plan also needs its host code allowed: "
                                                         "allowEngineHostCode, for plans you trust)";
    throw NativeError(ErrorCode::kEngineIncompatible, why + hostCode + firstError(capture), capture.lines());
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

  // The output shape at the maximum batch, from a context that exists only for this question.
  {
    trt::Ptr<nvinfer1::IExecutionContext> probe(
        engine.createExecutionContext(nvinfer1::ExecutionContextAllocationStrategy::kUSER_MANAGED));
    if (!probe || !probe->setInputShape(inputName, maxDims)) {
      throw NativeError(ErrorCode::kEngineIncompatible, "TensorRT rejected input shape " + formatDims(maxDims) +
                                                            firstError(capture),
                        capture.lines());
    }
    const Dims outDims = probe->getTensorShape(info.outputName.c_str());
    if (outDims.nbDims != 5 || !allPositive(outDims) || outDims.d[0] != maxDims.d[0]) {
      throw NativeError(ErrorCode::kEngineIncompatible, "Output \"" + info.outputName + "\" has shape " + formatDims(outDims) +
                                                            " for input " + formatDims(maxDims) +
                                                            "; expected [batch, channels, d0, d1, d2]");
    }
    info.outputShapeMax = toVector(outDims);
    info.outputChannels = outDims.d[1];
    impl->outputItemFloats = static_cast<std::size_t>(volume(outDims, 1));
  }

  SlotConfig config;
  config.inputItemFloats = impl->inputItemFloats;
  config.outputItemFloats = impl->outputItemFloats;
  config.minBatch = info.profileMin;
  config.maxBatch = info.profileMax;
  config.activationBytes = static_cast<std::size_t>(engine.getDeviceMemorySizeV2());
  config.useCudaGraph = options.useCudaGraph;
  const Dims inputMax = maxDims;
  const std::size_t outputItemFloats = impl->outputItemFloats;
  const std::size_t activationBytes = config.activationBytes;
  // Pointers, not references to the locals: the factory lives in the slots, as long as the engine
  // and its info (both owned by impl, which never moves).
  nvinfer1::ICudaEngine* const enginePtr = impl->engine.get();
  const EngineInfo* const infoPtr = &impl->info;
  std::mutex* const createMutex = &impl->createMutex;
  ContextFactory factory = [enginePtr, infoPtr, createMutex, inputMax, outputItemFloats, activationBytes](
                               void* activation, cuda::Stream stream) -> std::unique_ptr<ExecutionContext> {
    // Slots create contexts lazily (a new batch size) on their own threads; the engine is shared,
    // so its context creation is serialised rather than assumed thread-safe.
    std::lock_guard<std::mutex> lock(*createMutex);
    LogCapture contextCapture(LogSeverity::kWarning);
    // kUSER_MANAGED: TensorRT allocates no activation memory of its own, so nothing is allocated
    // inside enqueue and the memory accounting is exact.
    nvinfer1::IExecutionContext* raw =
        enginePtr->createExecutionContext(nvinfer1::ExecutionContextAllocationStrategy::kUSER_MANAGED);
    if (raw == nullptr) {
      throw NativeError(ErrorCode::kInferenceFailed, "TensorRT could not create an execution context" +
                                                         firstError(contextCapture),
                        contextCapture.lines());
    }
    auto context =
        std::make_unique<TensorRtContext>(raw, infoPtr->inputName, infoPtr->outputName, inputMax, outputItemFloats);
    if (activationBytes > 0) raw->setDeviceMemoryV2(activation, static_cast<std::int64_t>(activationBytes));
    if (!raw->setOptimizationProfileAsync(0, reinterpret_cast<cudaStream_t>(stream))) {
      throw NativeError(ErrorCode::kEngineIncompatible, "TensorRT could not select optimization profile 0" +
                                                            firstError(contextCapture),
                        contextCapture.lines());
    }
    return context;
  };
  for (int s = 0; s < options.contexts; ++s) {
    impl->slots.push_back(std::make_unique<EngineSlot>(api, config, factory, impl->faulted));
    info.deviceMemoryBytes += impl->slots.back()->deviceMemoryBytes();
  }
  info.log = capture.lines();
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

const EngineInfo& Engine::info() const noexcept { return impl_->info; }
int Engine::contexts() const noexcept { return static_cast<int>(impl_->slots.size()); }
std::size_t Engine::inputItemFloats() const noexcept { return impl_->inputItemFloats; }
std::size_t Engine::outputItemFloats() const noexcept { return impl_->outputItemFloats; }

void Engine::bindThread() const { impl_->primary->makeCurrent(); }

RunTimings Engine::run(int slotIndex, const float* input, int batch, float* output) {
  Impl& impl = *impl_;
  if (slotIndex < 0 || slotIndex >= static_cast<int>(impl.slots.size())) {
    throw NativeError(ErrorCode::kInferenceFailed, "No execution context " + std::to_string(slotIndex));
  }
  // Cheap when the thread is already bound; binds one whose first bind failed (or that never
  // bound), so a run never goes to whichever device happens to be current.
  impl.primary->makeCurrent();
  return impl.slots[static_cast<std::size_t>(slotIndex)]->run(input, batch, output);
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
