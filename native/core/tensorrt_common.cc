// Compiled in every build; empty without TensorRT headers.
#if SPLEEN_TRT_HAS_TENSORRT_HEADERS

#include "core/tensorrt_common.h"

#include <cstdint>

#include "core/log_collector.h"
#include "core/tensorrt_status.h"

namespace spleen_trt::core::trt {

namespace {

class ForwardingLogger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, nvinfer1::AsciiChar const* message) noexcept override {
    logLine(static_cast<LogSeverity>(static_cast<int>(severity)), message);
  }
};

// The factories' C signature (NvInfer.h, NvInferRuntime.h): (ILogger*, NV_TENSORRT_VERSION).
using FactoryFn = void* (*)(void* logger, std::int32_t version);

}  // namespace

nvinfer1::ILogger& logger() {
  static ForwardingLogger* const instance = new ForwardingLogger();
  return *instance;
}

const TensorRtLibraries& requireLibraries() {
  const TensorRtStatus status = tensorRtStatus();
  if (!status.available) throw NativeError(ErrorCode::kTensorRtUnavailable, "TensorRT is unavailable: " + status.reason);
  return TensorRtLibraries::shared();
}

nvinfer1::IBuilder* createBuilder(const TensorRtLibraries& libraries) {
  // Exactly what the header's inline createInferBuilder() does, through the resolved address.
  const auto factory = reinterpret_cast<FactoryFn>(libraries.createInferBuilder());
  if (factory == nullptr) return nullptr;
  return static_cast<nvinfer1::IBuilder*>(factory(&logger(), NV_TENSORRT_VERSION));
}

nvinfer1::IRuntime* createRuntime(const TensorRtLibraries& libraries) {
  const auto factory = reinterpret_cast<FactoryFn>(libraries.createInferRuntime());
  if (factory == nullptr) return nullptr;
  return static_cast<nvinfer1::IRuntime*>(factory(&logger(), NV_TENSORRT_VERSION));
}

std::string loadedVersion(const TensorRtLibraries& libraries) {
  return formatTensorRtVersion(libraries.version());
}

}  // namespace spleen_trt::core::trt

#endif  // SPLEEN_TRT_HAS_TENSORRT_HEADERS
