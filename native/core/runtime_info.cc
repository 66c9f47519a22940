#include "core/runtime_info.h"

// The configure step defines these (CMakeLists.txt); defaults keep a bare compile working.
#ifndef SPLEEN_TRT_ADDON_VERSION
#define SPLEEN_TRT_ADDON_VERSION "0.0.0-unknown"
#endif

namespace spleen_trt::core {

BuildInfo buildInfo() {
  BuildInfo info;
  info.addonVersion = SPLEEN_TRT_ADDON_VERSION;
#ifdef SPLEEN_TRT_CUDA_TOOLKIT_VERSION
  info.cudaToolkit = SPLEEN_TRT_CUDA_TOOLKIT_VERSION;
#endif
#ifdef SPLEEN_TRT_TENSORRT_HEADERS_VERSION
  info.tensorrtHeaders = SPLEEN_TRT_TENSORRT_HEADERS_VERSION;
#endif
  return info;
}

TensorRtInfo describeTensorRt(const TensorRtLibraries& libraries,
                              const std::vector<ComputeCapability>& gpus) {
  TensorRtInfo info;
  info.available = libraries.available();
  info.reason = libraries.reason();
  info.libraryPath = libraries.inferPath();
  if (libraries.encodedVersion() != 0) {
    info.version = formatTensorRtVersion(libraries.version());
    info.major = libraries.version().major;
  }
  info.parserAvailable = libraries.parserAvailable();
  info.parserReason = libraries.parserReason();
  info.parserLibraryPath = libraries.parserPath();
  info.builderResource = probeBuilderResource(libraries, gpus);
  return info;
}

RuntimeInfo collectRuntimeInfo() {
  RuntimeInfo info;
  info.cuda = probeCudaDriver(CudaDriverApi::shared());
  std::vector<ComputeCapability> gpus;
  for (const CudaDeviceInfo& device : info.cuda.devices) {
    gpus.emplace_back(device.computeCapabilityMajor, device.computeCapabilityMinor);
  }
  info.tensorrt = describeTensorRt(TensorRtLibraries::shared(), gpus);
  info.build = buildInfo();
  return info;
}

}  // namespace spleen_trt::core
