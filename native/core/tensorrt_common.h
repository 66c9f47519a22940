// Shared by the TensorRT builder and engine code, and only by code compiled with TensorRT headers
// (SPLEEN_TRT_HAS_TENSORRT_HEADERS): the process-wide logger and the three factory entry points,
// called through the addresses TensorRtLibraries resolved with dlsym. The program references no
// TensorRT symbol at link time, which is what lets the addon load where TensorRT is absent.
#pragma once

#if !SPLEEN_TRT_HAS_TENSORRT_HEADERS
#error "core/tensorrt_common.h needs the TensorRT headers (SPLEEN_TRT_HAS_TENSORRT_HEADERS=1)"
#endif

#include <NvInfer.h>
#include <NvInferVersion.h>

#include <memory>
#include <string>

#include "core/native_error.h"
#include "core/tensorrt_loader.h"

#if NV_TENSORRT_MAJOR < 10 || (NV_TENSORRT_MAJOR == 10 && NV_TENSORRT_MINOR < 1)
// getDeviceMemorySizeV2 / setDeviceMemoryV2 (exact user-managed activation memory) are 10.1+.
#error "spleen-trt needs TensorRT 10.1 or newer headers"
#endif

namespace spleen_trt::core::trt {

// TensorRT 10 made every interface deletable with `delete` (destroy() is gone): the default
// deleter is the right one.
template <typename T>
using Ptr = std::unique_ptr<T>;

// The process-wide logger. TensorRT keeps the first logger it is given for the life of the
// process, so this one is never destroyed; it forwards to core::logLine (log_collector.h), which
// is thread-safe and never calls Node-API.
nvinfer1::ILogger& logger();

// TensorRtLibraries::shared() when tensorRtStatus() says it is usable; otherwise throws
// ERR_TENSORRT_UNAVAILABLE with the reason.
const TensorRtLibraries& requireLibraries();

// createInferBuilder / createInferRuntime through the dlsym'd factories; nullptr on failure
// (TensorRT logs why).
nvinfer1::IBuilder* createBuilder(const TensorRtLibraries& libraries);
nvinfer1::IRuntime* createRuntime(const TensorRtLibraries& libraries);

// "10.13.0", of the loaded library.
std::string loadedVersion(const TensorRtLibraries& libraries);

}  // namespace spleen_trt::core::trt
