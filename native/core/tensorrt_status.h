// Whether this addon can use TensorRT: it was compiled against TensorRT headers (only then does
// it contain the builder and runtime code), and the library of that major version loads and is
// not older than the headers (the headers' inline wrappers may call methods an older library
// lacks).
#pragma once

#include <string>

#include "core/tensorrt_loader.h"

namespace spleen_trt::core {

struct CompiledTensorRt {
  bool headers = false;  // SPLEEN_TRT_HAS_TENSORRT_HEADERS
  TensorRtVersion version;
};

// The TensorRT headers this binary was compiled against.
CompiledTensorRt compiledTensorRt() noexcept;

struct TensorRtStatus {
  bool available = false;
  std::string version;  // of the loaded library, when one loaded
  std::string reason;   // why not available; empty when available
};

// Judges `libraries` against the compiled headers.
TensorRtStatus tensorRtStatus(const TensorRtLibraries& libraries);

// tensorRtStatus(TensorRtLibraries::shared()).
TensorRtStatus tensorRtStatus();

}  // namespace spleen_trt::core
