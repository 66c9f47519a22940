// Everything getRuntimeInfo() reports, gathered as plain data (no Node-API) so it can be computed
// on a worker thread and tested without Node.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/cuda_driver.h"
#include "core/tensorrt_loader.h"

namespace spleen_trt::core {

struct TensorRtInfo {
  bool available = false;
  std::string version;  // "10.13.0" once libnvinfer loaded, even when unusable
  int major = 0;
  std::string libraryPath;
  std::string reason;
  bool parserAvailable = false;
  std::string parserLibraryPath;
  std::string parserReason;
  BuilderResourceInfo builderResource;
  // Whether the CUDA driver is new enough for this TensorRT major (cuda_driver.h).
  DriverSufficiency driver;
};

// What the binary was compiled against, from the build's configure step.
struct BuildInfo {
  std::string addonVersion;
  std::optional<std::string> cudaToolkit;
  std::optional<std::string> tensorrtHeaders;
};

struct RuntimeInfo {
  CudaDriverInfo cuda;
  TensorRtInfo tensorrt;
  BuildInfo build;
};

BuildInfo buildInfo();

TensorRtInfo describeTensorRt(const TensorRtLibraries& libraries,
                              const std::vector<ComputeCapability>& gpus);
TensorRtInfo describeTensorRt(const TensorRtLibraries& libraries, const std::vector<ComputeCapability>& gpus,
                              BuilderResourceInfo builderResource);

// Probes the process-wide CUDA driver and TensorRT libraries. Blocking (cuInit can take hundreds
// of milliseconds with a GPU): call it off the JS thread.
RuntimeInfo collectRuntimeInfo();

}  // namespace spleen_trt::core
