#include "core/runtime_info.h"

#include <map>
#include <mutex>
#include <utility>

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

namespace {

// The builder resource library is hundreds of megabytes of kernels: mapping it on every
// getRuntimeInfo() call costs real time and I/O. The library search path is fixed for the
// process's life, so one probe per (TensorRT, GPUs) answers for good.
BuilderResourceInfo cachedBuilderResource(const TensorRtLibraries& libraries, const std::vector<ComputeCapability>& gpus) {
  static std::mutex mutex;
  static std::map<std::pair<std::int32_t, std::vector<ComputeCapability>>, BuilderResourceInfo> cache;
  const auto key = std::make_pair(libraries.encodedVersion(), gpus);
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto found = cache.find(key);
    if (found != cache.end()) return found->second;
  }
  BuilderResourceInfo probed = probeBuilderResource(libraries, gpus);
  std::lock_guard<std::mutex> lock(mutex);
  return cache.emplace(key, std::move(probed)).first->second;
}

}  // namespace

TensorRtInfo describeTensorRt(const TensorRtLibraries& libraries, const std::vector<ComputeCapability>& gpus) {
  return describeTensorRt(libraries, gpus, probeBuilderResource(libraries, gpus));
}

TensorRtInfo describeTensorRt(const TensorRtLibraries& libraries, const std::vector<ComputeCapability>& /*gpus*/,
                              BuilderResourceInfo builderResource) {
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
  info.builderResource = std::move(builderResource);
  return info;
}

RuntimeInfo collectRuntimeInfo() {
  RuntimeInfo info;
  info.cuda = probeCudaDriver(CudaDriverApi::shared());
  std::vector<ComputeCapability> gpus;
  for (const CudaDeviceInfo& device : info.cuda.devices) {
    gpus.emplace_back(device.computeCapabilityMajor, device.computeCapabilityMinor);
  }
  const TensorRtLibraries& libraries = TensorRtLibraries::shared();
  info.tensorrt = describeTensorRt(libraries, gpus, cachedBuilderResource(libraries, gpus));
  info.tensorrt.driver = judgeDriverForTensorRt(info.cuda.driverVersion, info.tensorrt.major);
  info.build = buildInfo();
  return info;
}

}  // namespace spleen_trt::core
