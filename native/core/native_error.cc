#include "core/native_error.h"

namespace spleen_trt::core {

const char* errorCodeName(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kTensorRtUnavailable: return "ERR_TENSORRT_UNAVAILABLE";
    case ErrorCode::kNoGpu: return "ERR_NO_GPU";
    case ErrorCode::kOnnxParse: return "ERR_ONNX_PARSE";
    case ErrorCode::kBuildFailed: return "ERR_BUILD_FAILED";
    case ErrorCode::kEngineIncompatible: return "ERR_ENGINE_INCOMPATIBLE";
    case ErrorCode::kOutOfMemory: return "ERR_OUT_OF_MEMORY";
    case ErrorCode::kInferenceFailed: return "ERR_INFERENCE_FAILED";
    case ErrorCode::kAborted: return "ERR_ABORTED";
    case ErrorCode::kClosed: return "ERR_CLOSED";
    case ErrorCode::kGpuFault: return "ERR_GPU_FAULT";
  }
  return "ERR_INFERENCE_FAILED";
}

}  // namespace spleen_trt::core
