// RAII for the CUDA runtime objects the TensorRT code owns (device and pinned buffers, streams,
// events, graphs) and the mapping of CUDA errors onto the package's error codes. Included only by
// code compiled with the CUDA toolkit (the TensorRT builder and engine). The runtime is linked
// statically: it opens libcuda.so.1 on its first call, so a machine without a driver gets an
// error from that call (reported as ERR_NO_GPU), not a failure to load the addon.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>

#include "core/native_error.h"

namespace spleen_trt::core::cuda_rt {

struct DeviceFree {
  void operator()(void* pointer) const noexcept { cudaFree(pointer); }
};
struct HostFree {
  void operator()(void* pointer) const noexcept { cudaFreeHost(pointer); }
};
struct StreamDestroy {
  void operator()(cudaStream_t stream) const noexcept { cudaStreamDestroy(stream); }
};
struct EventDestroy {
  void operator()(cudaEvent_t event) const noexcept { cudaEventDestroy(event); }
};
struct GraphDestroy {
  void operator()(cudaGraph_t graph) const noexcept { cudaGraphDestroy(graph); }
};
struct GraphExecDestroy {
  void operator()(cudaGraphExec_t exec) const noexcept { cudaGraphExecDestroy(exec); }
};

using DeviceBuffer = std::unique_ptr<void, DeviceFree>;
using PinnedBuffer = std::unique_ptr<void, HostFree>;
using Stream = std::unique_ptr<std::remove_pointer_t<cudaStream_t>, StreamDestroy>;
using Event = std::unique_ptr<std::remove_pointer_t<cudaEvent_t>, EventDestroy>;
using Graph = std::unique_ptr<std::remove_pointer_t<cudaGraph_t>, GraphDestroy>;
using GraphExec = std::unique_ptr<std::remove_pointer_t<cudaGraphExec_t>, GraphExecDestroy>;

// "cudaErrorMemoryAllocation (2): out of memory".
std::string describe(cudaError_t error);

// The package's code for a CUDA failure: no device or driver -> kNoGpu, allocation ->
// kOutOfMemory, anything else -> `otherwise`.
ErrorCode classify(cudaError_t error, ErrorCode otherwise);

// Throws NativeError("<what> failed: <describe(error)>") unless error is cudaSuccess.
void check(cudaError_t error, const char* what, ErrorCode otherwise = ErrorCode::kInferenceFailed);

// Makes `device` current on the calling thread (CUDA's current device is per thread), after
// checking that it exists; ERR_NO_GPU otherwise.
void selectDevice(int device);

DeviceBuffer allocateDevice(std::size_t bytes, const char* what);
PinnedBuffer allocatePinned(std::size_t bytes, const char* what);
Stream createStream();
Event createEvent();

// Milliseconds between two completed events.
double elapsedMs(cudaEvent_t start, cudaEvent_t end);

}  // namespace spleen_trt::core::cuda_rt
