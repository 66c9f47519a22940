// RAII for the CUDA objects the TensorRT code owns (device and pinned buffers, streams, events,
// graphs, the device's primary context), all through the driver API loaded at run time
// (cuda_driver.h): no CUDA runtime is linked, so the addon runs on any driver the user's TensorRT
// supports. Plain C++ (no CUDA headers), so it is tested against the fake libcuda.so.1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include "core/cuda_driver.h"
#include "core/native_error.h"

namespace spleen_trt::core::gpu {

// The process-wide driver, when it loaded with every execution entry point; otherwise throws
// ERR_NO_GPU saying why.
const CudaDriverApi& requireDriver();

// The package's code for a driver error: no device or driver -> kNoGpu, allocation ->
// kOutOfMemory, a sticky error (the context is lost) -> kGpuFault, anything else -> `otherwise`.
ErrorCode classify(cuda::Result result, ErrorCode otherwise);

// Throws NativeError("<what> failed: CUDA_ERROR_... (n): text") unless result is success. The
// driver API has no "last error" to clear: a failed call leaves nothing behind, except a sticky
// error, which every later call on the context reports again.
void check(const CudaDriverApi& api, cuda::Result result, const char* what,
           ErrorCode otherwise = ErrorCode::kInferenceFailed);

// A retained primary context of one device: the context the CUDA runtime inside TensorRT uses
// too, so TensorRT and these calls share streams and memory. Released when destroyed.
class PrimaryContext {
 public:
  // cuInit, the device exists, cuDevicePrimaryCtxRetain; ERR_NO_GPU otherwise. A primary context
  // whose scheduling nobody chose is switched to blocking sync first (waits sleep, not spin).
  PrimaryContext(const CudaDriverApi& api, int device);
  ~PrimaryContext();
  PrimaryContext(const PrimaryContext&) = delete;
  PrimaryContext& operator=(const PrimaryContext&) = delete;

  // Makes the context current on the calling thread (CUDA's current context is per thread);
  // cheap when it already is. ERR_NO_GPU when the driver refuses.
  void makeCurrent() const;
  int device() const noexcept { return device_; }
  const CudaDriverApi& api() const noexcept { return api_; }

 private:
  static void preferBlockingSync(const CudaDriverApi& api, cuda::Device handle);

  const CudaDriverApi& api_;
  int device_;
  cuda::Context context_ = nullptr;
};

template <typename Handle, typename Fn, Fn CudaDriverApi::*destroy>
struct Release {
  const CudaDriverApi* api = nullptr;
  void operator()(Handle handle) const noexcept {
    if (api != nullptr) (api->*destroy)(handle);
  }
};
struct DeviceFree {
  const CudaDriverApi* api = nullptr;
  void operator()(void* pointer) const noexcept {
    if (api != nullptr) api->memFree(static_cast<cuda::DevicePtr>(reinterpret_cast<std::uintptr_t>(pointer)));
  }
};

using DeviceBuffer = std::unique_ptr<void, DeviceFree>;
using PinnedBuffer = std::unique_ptr<void, Release<void*, cuda::MemFreeHostFn, &CudaDriverApi::memFreeHost>>;
using Stream = std::unique_ptr<cuda::StreamSt, Release<cuda::Stream, cuda::StreamDestroyFn, &CudaDriverApi::streamDestroy>>;
using Event = std::unique_ptr<cuda::EventSt, Release<cuda::Event, cuda::EventDestroyFn, &CudaDriverApi::eventDestroy>>;
using Graph = std::unique_ptr<cuda::GraphSt, Release<cuda::Graph, cuda::GraphDestroyFn, &CudaDriverApi::graphDestroy>>;
using GraphExec =
    std::unique_ptr<cuda::GraphExecSt, Release<cuda::GraphExec, cuda::GraphExecDestroyFn, &CudaDriverApi::graphExecDestroy>>;

inline cuda::DevicePtr devicePtr(const DeviceBuffer& buffer) {
  return static_cast<cuda::DevicePtr>(reinterpret_cast<std::uintptr_t>(buffer.get()));
}

DeviceBuffer allocateDevice(const CudaDriverApi& api, std::size_t bytes, const char* what);
PinnedBuffer allocatePinned(const CudaDriverApi& api, std::size_t bytes, const char* what);
// Non-blocking: no implicit synchronisation with the legacy default stream.
Stream createStream(const CudaDriverApi& api);
// Blocking-sync: waiting for it sleeps the thread instead of spinning a core.
Event createEvent(const CudaDriverApi& api);

// Milliseconds between two completed events.
double elapsedMs(const CudaDriverApi& api, cuda::Event start, cuda::Event end);

}  // namespace spleen_trt::core::gpu
