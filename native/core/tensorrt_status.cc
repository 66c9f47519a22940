#include "core/tensorrt_status.h"

#if SPLEEN_TRT_HAS_TENSORRT_HEADERS
#include <NvInferVersion.h>
#endif

namespace spleen_trt::core {

CompiledTensorRt compiledTensorRt() noexcept {
  CompiledTensorRt compiled;
#if SPLEEN_TRT_HAS_TENSORRT_HEADERS
  compiled.headers = true;
  compiled.version.major = NV_TENSORRT_MAJOR;
  compiled.version.minor = NV_TENSORRT_MINOR;
  compiled.version.patch = NV_TENSORRT_PATCH;
#endif
  return compiled;
}

TensorRtStatus tensorRtStatus(const TensorRtLibraries& libraries) {
  TensorRtStatus status;
  if (libraries.encodedVersion() != 0) status.version = formatTensorRtVersion(libraries.version());
  const CompiledTensorRt compiled = compiledTensorRt();
  if (!compiled.headers) {
    status.reason =
        "the native addon was built without TensorRT headers, so it cannot build or run engines; "
        "rebuild it with TENSORRT_ROOT=<TensorRT install> (or TENSORRT_INCLUDE_DIR=<dir with "
        "NvInfer.h>) set: npm run build:addon";
    return status;
  }
  if (!libraries.available()) {
    status.reason = libraries.reason();
    return status;
  }
  const TensorRtVersion loaded = libraries.version();
  const TensorRtVersion& headers = compiled.version;
  if (loaded.major != headers.major) {
    // defaultMajors() only looks for the compiled major, so this needs a hand-picked library.
    status.reason = libraries.inferPath() + " is TensorRT " + status.version +
                    ", but the addon was compiled against TensorRT " +
                    formatTensorRtVersion(headers) + " headers (one binary serves one major version)";
    return status;
  }
  if (loaded.minor < headers.minor) {
    status.reason = libraries.inferPath() + " is TensorRT " + status.version +
                    ", older than the TensorRT " + formatTensorRtVersion(headers) +
                    " headers the addon was compiled against; install TensorRT >= " +
                    std::to_string(headers.major) + "." + std::to_string(headers.minor) +
                    " or rebuild the addon against this TensorRT's headers";
    return status;
  }
  status.available = true;
  return status;
}

TensorRtStatus tensorRtStatus() { return tensorRtStatus(TensorRtLibraries::shared()); }

}  // namespace spleen_trt::core
