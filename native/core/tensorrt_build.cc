#include "core/tensorrt_build.h"

#include "core/native_error.h"
#include "core/tensorrt_status.h"

// The builder needs NvOnnxParser.h, which TensorRT < 10.14 ships outside include/: without it the
// addon still runs engines and only building says why it cannot.
#if SPLEEN_TRT_HAS_TENSORRT_HEADERS && defined(__has_include)
#if __has_include(<NvOnnxParser.h>)
#define SPLEEN_TRT_CAN_BUILD 1
#endif
#endif
#ifndef SPLEEN_TRT_CAN_BUILD
#define SPLEEN_TRT_CAN_BUILD 0
#endif

#if SPLEEN_TRT_CAN_BUILD
#include <NvOnnxParser.h>

#include <chrono>
#include <map>
#include <mutex>

#include "core/build_objects.h"
#include "core/cuda_resources.h"
#include "core/log_collector.h"
#include "core/tensorrt_common.h"
#endif

namespace spleen_trt::core {

#if SPLEEN_TRT_CAN_BUILD

namespace {

using nvinfer1::BuilderFlag;
using nvinfer1::Dims;
using nvinfer1::OptProfileSelector;

// createNvOnnxParser_INTERNAL's C signature (NvOnnxParser.h).
using ParserFactoryFn = void* (*)(void* network, void* logger, int version);

// Reports TensorRT's build phases, and is how a build is cancelled: TensorRT stops at the next
// step when stepComplete() returns false. TensorRT may call it from its own threads.
class ProgressMonitor final : public nvinfer1::IProgressMonitor {
 public:
  ProgressMonitor(const ProgressCallback& onProgress, const std::atomic<bool>& cancelled)
      : onProgress_(onProgress), cancelled_(cancelled) {}

  void phaseStart(char const* phaseName, char const* /*parentPhase*/, int32_t nbSteps) noexcept override {
    const std::string phase = phaseName != nullptr ? phaseName : "";
    {
      std::lock_guard<std::mutex> lock(mutex_);
      phases_[phase] = Phase{nbSteps, Clock::now()};
    }
    report(phase, 0, nbSteps);
  }

  bool stepComplete(char const* phaseName, int32_t step) noexcept override {
    const std::string phase = phaseName != nullptr ? phaseName : "";
    int total = 0;
    bool due = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Phase& state = phases_[phase];
      total = state.total;
      const Clock::time_point now = Clock::now();
      // Tactic timing completes thousands of steps: a few updates a second is plenty for a
      // progress bar, and each one crosses to the JS thread.
      due = step + 1 >= total || now - state.lastReport >= std::chrono::milliseconds(100);
      if (due) state.lastReport = now;
    }
    if (due) report(phase, step + 1, total);
    return !cancelled_.load();
  }

  void phaseFinish(char const* phaseName) noexcept override {
    const std::string phase = phaseName != nullptr ? phaseName : "";
    int total = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto found = phases_.find(phase);
      if (found != phases_.end()) {
        total = found->second.total;
        phases_.erase(found);
      }
    }
    report(phase, total, total);
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Phase {
    int total = 0;
    Clock::time_point lastReport;
  };

  void report(const std::string& phase, int current, int total) noexcept {
    if (!onProgress_) return;
    try {
      onProgress_(BuildProgress{phase, current, total});
    } catch (...) {
      // A progress report that fails (out of memory) must not unwind through TensorRT.
    }
  }

  const ProgressCallback& onProgress_;
  const std::atomic<bool>& cancelled_;
  std::mutex mutex_;
  std::map<std::string, Phase> phases_;
};

const char* parserErrorName(int code) {
  // nvonnxparser::ErrorCode, identical in 10.x and 11.x.
  static const char* const names[] = {
      "SUCCESS",          "INTERNAL_ERROR",         "MEM_ALLOC_FAILED",        "MODEL_DESERIALIZE_FAILED",
      "INVALID_VALUE",    "INVALID_GRAPH",          "INVALID_NODE",            "UNSUPPORTED_GRAPH",
      "UNSUPPORTED_NODE", "UNSUPPORTED_NODE_ATTR",  "UNSUPPORTED_NODE_INPUT",  "UNSUPPORTED_NODE_DATATYPE",
      "UNSUPPORTED_NODE_DYNAMIC", "UNSUPPORTED_NODE_SHAPE", "REFIT_FAILED"};
  if (code >= 0 && code < static_cast<int>(sizeof(names) / sizeof(names[0]))) return names[code];
  return "UNKNOWN";
}

std::string orEmpty(const char* text) { return text != nullptr ? text : ""; }

// "node 12 (Conv_3, op Conv): UNSUPPORTED_NODE (8): <description>".
std::vector<std::string> parserErrors(const nvonnxparser::IParser& parser) {
  std::vector<std::string> lines;
  for (int i = 0; i < parser.getNbErrors(); ++i) {
    const nvonnxparser::IParserError* error = parser.getError(i);
    if (error == nullptr) continue;
    const int code = static_cast<int>(error->code());
    std::string line;
    if (error->node() >= 0) {
      line = "node " + std::to_string(error->node()) + " (" + orEmpty(error->nodeName()) + ", op " +
             orEmpty(error->nodeOperator()) + "): ";
    } else {
      line = "model: ";
    }
    line += std::string(parserErrorName(code)) + " (" + std::to_string(code) + "): " + orEmpty(error->desc());
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string formatDims(const Dims& dims) {
  std::string text = "[";
  for (int i = 0; i < dims.nbDims; ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(dims.d[i]);
  }
  return text + "]";
}

Dims profileDims(int batch, int64_t channels, const int spatial[3]) {
  Dims dims{};
  dims.nbDims = 5;
  dims.d[0] = batch;
  dims.d[1] = channels;
  for (int k = 0; k < 3; ++k) dims.d[2 + k] = spatial[k];
  return dims;
}

bool mentionsOutOfMemory(const std::vector<std::string>& lines) {
  for (const std::string& line : lines) {
    if (line.find("out of memory") != std::string::npos ||
        line.find("cudaErrorMemoryAllocation") != std::string::npos ||
        line.find("OUT_OF_MEMORY") != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::string firstProblem(const LogCapture& capture) {
  for (const std::string& line : capture.problems()) {
    if (line.rfind("[E]", 0) == 0 || line.rfind("[F]", 0) == 0) return line;
  }
  return "";
}

nvinfer1::ITensor* findInput(nvinfer1::INetworkDefinition& network, const std::string& name,
                             std::string* available) {
  for (int i = 0; i < network.getNbInputs(); ++i) {
    nvinfer1::ITensor* tensor = network.getInput(i);
    const std::string tensorName = orEmpty(tensor->getName());
    if (tensorName == name) return tensor;
    *available += (available->empty() ? "" : ", ") + tensorName;
  }
  return nullptr;
}

#if NV_TENSORRT_MAJOR >= 11
// Whether any layer of the parsed network computes in fp16.
bool hasHalfTensors(nvinfer1::INetworkDefinition& network) {
  for (int i = 0; i < network.getNbLayers(); ++i) {
    nvinfer1::ILayer* layer = network.getLayer(i);
    for (int j = 0; layer != nullptr && j < layer->getNbOutputs(); ++j) {
      const nvinfer1::ITensor* output = layer->getOutput(j);
      if (output != nullptr && output->getType() == nvinfer1::DataType::kHALF) return true;
    }
  }
  return false;
}
#endif

void applyPrecision(nvinfer1::IBuilderConfig& config, Precision precision, std::vector<std::string>& notes) {
  switch (precision) {
    case Precision::kFp32:
      // TF32 is on by default; cleared, fp32 convolutions match torch's fp32 arithmetic.
      config.clearFlag(BuilderFlag::kTF32);
      break;
    case Precision::kTf32:
      config.setFlag(BuilderFlag::kTF32);
      break;
    case Precision::kFp16:
#if NV_TENSORRT_MAJOR < 11
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      // Deprecated from 10.12 in favour of strongly typed networks, still honoured through 10.x.
      config.setFlag(BuilderFlag::kFP16);
#pragma GCC diagnostic pop
      static_cast<void>(notes);
#else
      // TensorRT 11 networks are strongly typed and kFP16 is gone: the layer types come from the
      // ONNX, which the export step converted to fp16 (fp32 input and output).
      notes.push_back("[I] spleen-trt: TensorRT " + std::to_string(NV_TENSORRT_MAJOR) +
                      " is strongly typed; fp16 precision comes from the ONNX model's types");
#endif
      break;
  }
}

}  // namespace

BuildResult buildEngine(const BuildRequest& request, const ProgressCallback& onProgress,
                        const std::atomic<bool>& cancelled) {
  // The builder logs from its own threads too: this capture takes their lines.
  LogCapture capture(LogSeverity::kInfo, 2000, ForeignLines::kAccept);
  auto aborted = [&capture]() {
    return NativeError(ErrorCode::kAborted, "The TensorRT engine build was cancelled", capture.lines());
  };

  const TensorRtLibraries& libraries = trt::requireLibraries();
  if (!libraries.parserAvailable()) {
    throw NativeError(ErrorCode::kTensorRtUnavailable,
                      "TensorRT's ONNX parser is unavailable: " + libraries.parserReason());
  }
  const CudaDriverApi& api = gpu::requireDriver();
  // TensorRT's own CUDA runtime works in the device's primary context, current on this thread.
  const gpu::PrimaryContext primary(api, request.device);
  primary.makeCurrent();
  if (cancelled.load()) throw aborted();

  // Destruction order (build_objects.h): config, parser, network, builder, and last the timing
  // cache, which must outlive every builder that uses it.
  BuildObjects<nvinfer1::ITimingCache, nvinfer1::IBuilder, nvinfer1::INetworkDefinition, nvonnxparser::IParser,
               nvinfer1::IBuilderConfig>
      objects;
  auto& timingCache = objects.timingCache;
  auto& builder = objects.builder;
  auto& network = objects.network;
  auto& parser = objects.parser;
  auto& config = objects.config;
  builder.reset(trt::createBuilder(libraries));
  if (!builder) {
    throw NativeError(ErrorCode::kTensorRtUnavailable,
                      "TensorRT could not create a builder (createInferBuilder returned null)" +
                          std::string(firstProblem(capture).empty() ? "" : ": " + firstProblem(capture)),
                      capture.lines());
  }
  network.reset(builder->createNetworkV2(0));
  if (!network) throw NativeError(ErrorCode::kBuildFailed, "TensorRT could not create a network definition", capture.lines());

  const auto parserFactory = reinterpret_cast<ParserFactoryFn>(libraries.createOnnxParser());
  parser.reset(static_cast<nvonnxparser::IParser*>(parserFactory(network.get(), &trt::logger(), NV_ONNX_PARSER_VERSION)));
  if (!parser) {
    throw NativeError(ErrorCode::kTensorRtUnavailable, "TensorRT could not create an ONNX parser", capture.lines());
  }
  if (!parser->parse(request.onnx.data(), request.onnx.size())) {
    std::vector<std::string> errors = parserErrors(*parser);
    const std::string first = errors.empty() ? "no error recorded" : errors.front();
    if (errors.empty()) errors = capture.problems();
    throw NativeError(ErrorCode::kOnnxParse,
                      "TensorRT's ONNX parser rejected the model (" + std::to_string(parser->getNbErrors()) +
                          " error(s)); first: " + first,
                      std::move(errors));
  }
  if (cancelled.load()) throw aborted();

  std::string inputs;
  nvinfer1::ITensor* input = findInput(*network, request.inputName, &inputs);
  if (input == nullptr) {
    throw NativeError(ErrorCode::kBuildFailed, "The ONNX model has no input named \"" + request.inputName +
                                                   "\" (its inputs: " + inputs + ")");
  }
  const Dims inputDims = input->getDimensions();
  if (inputDims.nbDims != 5) {
    throw NativeError(ErrorCode::kBuildFailed, "Input \"" + request.inputName + "\" has shape " + formatDims(inputDims) +
                                                   "; expected [batch, channels, d0, d1, d2]");
  }
  if (inputDims.d[0] >= 0 && !(request.batchMin == inputDims.d[0] && request.batchMax == inputDims.d[0])) {
    throw NativeError(ErrorCode::kBuildFailed,
                      "Input \"" + request.inputName + "\" has a static batch dimension of " +
                          std::to_string(inputDims.d[0]) + ", so the batch profile " + std::to_string(request.batchMin) +
                          "/" + std::to_string(request.batchOpt) + "/" + std::to_string(request.batchMax) +
                          " cannot apply; make the batch dimension symbolic in the ONNX first");
  }
  const int64_t channels = inputDims.d[1];
  if (channels <= 0) {
    throw NativeError(ErrorCode::kBuildFailed, "Input \"" + request.inputName + "\" has a dynamic channel dimension " +
                                                   formatDims(inputDims) + "; it must be static");
  }
  for (int k = 0; k < 3; ++k) {
    if (inputDims.d[2 + k] >= 0 && inputDims.d[2 + k] != request.spatial[k]) {
      throw NativeError(ErrorCode::kBuildFailed,
                        "Input \"" + request.inputName + "\" has shape " + formatDims(inputDims) +
                            ", which does not admit the spatial shape [" + std::to_string(request.spatial[0]) + ", " +
                            std::to_string(request.spatial[1]) + ", " + std::to_string(request.spatial[2]) + "]");
    }
  }

  config.reset(builder->createBuilderConfig());
  if (!config) throw NativeError(ErrorCode::kBuildFailed, "TensorRT could not create a builder config", capture.lines());

  // Owned by the builder: never deleted here.
  nvinfer1::IOptimizationProfile* profile = builder->createOptimizationProfile();
  const char* name = request.inputName.c_str();
  if (profile == nullptr ||
      !profile->setDimensions(name, OptProfileSelector::kMIN, profileDims(request.batchMin, channels, request.spatial)) ||
      !profile->setDimensions(name, OptProfileSelector::kOPT, profileDims(request.batchOpt, channels, request.spatial)) ||
      !profile->setDimensions(name, OptProfileSelector::kMAX, profileDims(request.batchMax, channels, request.spatial)) ||
      config->addOptimizationProfile(profile) < 0) {
    throw NativeError(ErrorCode::kBuildFailed, "TensorRT rejected the optimization profile for \"" + request.inputName + "\"",
                      capture.lines());
  }

  std::vector<std::string> notes;
  applyPrecision(*config, request.precision, notes);
#if NV_TENSORRT_MAJOR >= 11
  // Strongly typed: an fp32 ONNX builds an fp32 engine whatever was asked. Refuse rather than
  // silently hand back fp32 under the name fp16 (buildEngine() in TS converts the ONNX first).
  if (request.precision == Precision::kFp16 && !hasHalfTensors(*network)) {
    throw NativeError(ErrorCode::kBuildFailed,
                      "fp16 on TensorRT " + std::to_string(NV_TENSORRT_MAJOR) +
                          " needs an fp16 ONNX model (networks are strongly typed and kFP16 is gone), but this "
                          "model computes in fp32; convert it first (buildEngine() does) or build fp32");
  }
#endif
  if (request.workspaceBytes > 0) {
    config->setMemoryPoolLimit(nvinfer1::MemoryPoolType::kWORKSPACE, static_cast<std::size_t>(request.workspaceBytes));
  }
  config->setBuilderOptimizationLevel(request.optimizationLevel);
  if (request.versionCompatible) config->setFlag(BuilderFlag::kVERSION_COMPATIBLE);
  if (request.hardwareCompat == HardwareCompat::kAmperePlus) {
    config->setHardwareCompatibilityLevel(nvinfer1::HardwareCompatibilityLevel::kAMPERE_PLUS);
  }

  if (request.hasTimingCache && !request.timingCache.empty()) {
    timingCache.reset(config->createTimingCache(request.timingCache.data(), request.timingCache.size()));
    if (!timingCache) notes.push_back("[W] spleen-trt: the given timing cache could not be read; starting a fresh one");
  }
  // ignoreMismatch stays false unless asked: NvInfer.h warns that a cache from another device or
  // TensorRT "may lead to functional/performance bugs". A refused cache is replaced by a fresh
  // one, which the caller then writes back.
  if (timingCache && !config->setTimingCache(*timingCache, request.timingCacheIgnoreMismatch)) {
    notes.push_back("[W] spleen-trt: the timing cache was made for another device or TensorRT; starting a fresh one");
    timingCache.reset();
  }
  if (!timingCache) {
    timingCache.reset(config->createTimingCache(nullptr, 0));
    if (!timingCache) throw NativeError(ErrorCode::kBuildFailed, "TensorRT could not create a timing cache", capture.lines());
    if (!config->setTimingCache(*timingCache, false)) {
      notes.push_back("[W] spleen-trt: TensorRT did not accept a fresh timing cache; building without one");
    }
  }

  ProgressMonitor monitor(onProgress, cancelled);
  config->setProgressMonitor(&monitor);
  trt::Ptr<nvinfer1::IHostMemory> plan(builder->buildSerializedNetwork(*network, *config));
  config->setProgressMonitor(nullptr);

  if (!plan || plan->size() == 0) {
    if (cancelled.load()) throw aborted();
    std::vector<std::string> lines = notes;
    for (std::string& line : capture.lines()) lines.push_back(std::move(line));
    std::string message = "TensorRT could not build the engine";
    const std::string first = firstProblem(capture);
    if (!first.empty()) message += ": " + first;
    cuda::Device device = 0;
    int major = 0;
    int minor = 0;
    if (api.deviceGet(&device, request.device) == cuda::kSuccess &&
        api.deviceGetAttribute(&major, cuda::kAttributeComputeCapabilityMajor, device) == cuda::kSuccess &&
        api.deviceGetAttribute(&minor, cuda::kAttributeComputeCapabilityMinor, device) == cuda::kSuccess) {
      const BuilderResourceInfo resource = probeBuilderResource(libraries, {{major, minor}});
      if (!resource.available) message += " (" + resource.reason + ")";
    }
    throw NativeError(mentionsOutOfMemory(lines) ? ErrorCode::kOutOfMemory : ErrorCode::kBuildFailed, message,
                      std::move(lines));
  }

  BuildResult result;
  const auto* planBytes = static_cast<const std::uint8_t*>(plan->data());
  result.plan.assign(planBytes, planBytes + plan->size());
  trt::Ptr<nvinfer1::IHostMemory> cacheBytes(timingCache->serialize());
  if (cacheBytes && cacheBytes->size() > 0) {
    const auto* bytes = static_cast<const std::uint8_t*>(cacheBytes->data());
    result.timingCache.assign(bytes, bytes + cacheBytes->size());
  }
  result.tensorrtVersion = trt::loadedVersion(libraries);
  result.log = std::move(notes);
  for (std::string& line : capture.lines()) result.log.push_back(std::move(line));
  return result;
}

#else  // !SPLEEN_TRT_CAN_BUILD

BuildResult buildEngine(const BuildRequest& /*request*/, const ProgressCallback& /*onProgress*/,
                        const std::atomic<bool>& /*cancelled*/) {
#if SPLEEN_TRT_HAS_TENSORRT_HEADERS
  throw NativeError(ErrorCode::kTensorRtUnavailable,
                    "This addon was compiled without TensorRT's NvOnnxParser.h, so it runs engines but cannot build "
                    "them; rebuild it with TENSORRT_PARSER_INCLUDE_DIR=<dir with NvOnnxParser.h> (TensorRT < 10.14 "
                    "ships it with its packages, not in the GitHub include/)");
#else
  throw NativeError(ErrorCode::kTensorRtUnavailable, "TensorRT is unavailable: " + tensorRtStatus().reason);
#endif
}

#endif  // SPLEEN_TRT_CAN_BUILD

}  // namespace spleen_trt::core
