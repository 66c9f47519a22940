// The one exception type native code throws for runtime failures. It carries the package's error
// code (src/errors.ts) and diagnostic lines, so the TS side can re-create a SpleenTrtError with the
// same code and details; nothing here knows about Node-API.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace spleen_trt::core {

// The subset of src/errors.ts ErrorCode that native code produces.
enum class ErrorCode {
  kTensorRtUnavailable,
  kNoGpu,
  kOnnxParse,
  kBuildFailed,
  kEngineIncompatible,
  kOutOfMemory,
  kInferenceFailed,
  kAborted,
  kClosed,
  kGpuFault,
};

// "ERR_TENSORRT_UNAVAILABLE" and so on, exactly as src/errors.ts spells them.
const char* errorCodeName(ErrorCode code) noexcept;

class NativeError : public std::runtime_error {
 public:
  NativeError(ErrorCode code, const std::string& message, std::vector<std::string> details = {})
      : std::runtime_error(message), code_(code), details_(std::move(details)) {}

  ErrorCode code() const noexcept { return code_; }
  const std::vector<std::string>& details() const noexcept { return details_; }

 private:
  ErrorCode code_;
  std::vector<std::string> details_;
};

}  // namespace spleen_trt::core
