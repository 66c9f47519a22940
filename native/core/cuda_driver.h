// The CUDA driver (libcuda.so.1 / nvcuda.dll) through dlsym, so the addon builds without cuda.h,
// loads on machines without a driver and runs on every driver the user's TensorRT supports: no
// CUDA runtime is linked (CUDA 13's cudart refuses drivers older than R580). The driver API types
// it needs are declared here; when the build finds cuda.h, cuda_driver.cc checks these
// declarations against it. Versioned entry points (cuMemAlloc_v2 ...) are resolved by their real
// symbol names, which every driver since CUDA 11.4 exports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dynamic_library.h"

namespace spleen_trt::core {

// The driver API's C types, as cuda.h declares them (an enum is int-sized on every ABI CUDA
// supports, which is what lets CUresult travel as int here).
namespace cuda {
using Result = int;  // CUresult
using Device = int;  // CUdevice
constexpr Result kSuccess = 0;                              // CUDA_SUCCESS
constexpr int kAttributeComputeCapabilityMajor = 75;        // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kAttributeComputeCapabilityMinor = 76;        // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR

using InitFn = Result (*)(unsigned int flags);
using DriverGetVersionFn = Result (*)(int* version);
using DeviceGetCountFn = Result (*)(int* count);
using DeviceGetFn = Result (*)(Device* device, int ordinal);
using DeviceGetNameFn = Result (*)(char* name, int length, Device device);
using DeviceTotalMemFn = Result (*)(std::size_t* bytes, Device device);  // cuDeviceTotalMem_v2
using DeviceGetAttributeFn = Result (*)(int* value, int attribute, Device device);
using DeviceGetPciBusIdFn = Result (*)(char* busId, int length, Device device);
using GetErrorTextFn = Result (*)(Result error, const char** text);

// Execution: what the TensorRT engine and builder need besides TensorRT itself.
struct ContextSt;
struct StreamSt;
struct EventSt;
struct GraphSt;
struct GraphExecSt;
using Context = ContextSt*;      // CUcontext
using Stream = StreamSt*;        // CUstream; TensorRT takes it as a cudaStream_t (same handle)
using Event = EventSt*;          // CUevent
using Graph = GraphSt*;          // CUgraph
using GraphExec = GraphExecSt*;  // CUgraphExec
using DevicePtr = unsigned long long;  // CUdeviceptr (CUdeviceptr_v2)
constexpr unsigned kStreamNonBlocking = 0x1;       // CU_STREAM_NON_BLOCKING
constexpr unsigned kEventBlockingSync = 0x1;       // CU_EVENT_BLOCKING_SYNC
constexpr int kStreamCaptureModeThreadLocal = 1;   // CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
constexpr Result kErrorNotReady = 600;             // CUDA_ERROR_NOT_READY
constexpr unsigned kCtxSchedMask = 0x07;           // CU_CTX_SCHED_MASK
constexpr unsigned kCtxSchedAuto = 0x00;           // CU_CTX_SCHED_AUTO
constexpr unsigned kCtxSchedBlockingSync = 0x04;   // CU_CTX_SCHED_BLOCKING_SYNC

using DevicePrimaryCtxRetainFn = Result (*)(Context* context, Device device);
using DevicePrimaryCtxReleaseFn = Result (*)(Device device);  // cuDevicePrimaryCtxRelease_v2
using DevicePrimaryCtxGetStateFn = Result (*)(Device device, unsigned* flags, int* active);
using DevicePrimaryCtxSetFlagsFn = Result (*)(Device device, unsigned flags);  // cuDevicePrimaryCtxSetFlags_v2
using CtxSetCurrentFn = Result (*)(Context context);
using CtxGetCurrentFn = Result (*)(Context* context);
using MemAllocFn = Result (*)(DevicePtr* pointer, std::size_t bytes);  // cuMemAlloc_v2
using MemFreeFn = Result (*)(DevicePtr pointer);                       // cuMemFree_v2
using MemHostAllocFn = Result (*)(void** pointer, std::size_t bytes, unsigned flags);
using MemFreeHostFn = Result (*)(void* pointer);
using MemcpyHtoDAsyncFn = Result (*)(DevicePtr dst, const void* src, std::size_t bytes, Stream stream);
using MemcpyDtoHAsyncFn = Result (*)(void* dst, DevicePtr src, std::size_t bytes, Stream stream);
using StreamCreateFn = Result (*)(Stream* stream, unsigned flags);
using StreamDestroyFn = Result (*)(Stream stream);  // cuStreamDestroy_v2
using StreamSynchronizeFn = Result (*)(Stream stream);
using EventCreateFn = Result (*)(Event* event, unsigned flags);
using EventDestroyFn = Result (*)(Event event);  // cuEventDestroy_v2
using EventRecordFn = Result (*)(Event event, Stream stream);
using EventSynchronizeFn = Result (*)(Event event);
using EventElapsedTimeFn = Result (*)(float* ms, Event start, Event end);
using StreamBeginCaptureFn = Result (*)(Stream stream, int mode);  // cuStreamBeginCapture_v2
using StreamEndCaptureFn = Result (*)(Stream stream, Graph* graph);
using GraphInstantiateWithFlagsFn = Result (*)(GraphExec* exec, Graph graph, unsigned long long flags);
using GraphLaunchFn = Result (*)(GraphExec exec, Stream stream);
using GraphDestroyFn = Result (*)(Graph graph);
using GraphExecDestroyFn = Result (*)(GraphExec exec);

// Errors after which the CUDA context is unusable ("the process must be terminated and relaunched
// to continue using CUDA", cuda.h): an illegal address, a kernel fault, an uncorrectable ECC error.
bool isStickyError(Result result) noexcept;
}  // namespace cuda

// The driver entry points, resolved once. Loading never throws; a library or symbol that is
// missing leaves loaded() false with loadError() saying which and why.
class CudaDriverApi {
 public:
  // The file names the driver is looked up under, in order.
  static std::vector<std::string> defaultCandidates();

  // Opens the first loadable candidate and resolves every required symbol.
  static std::unique_ptr<CudaDriverApi> load(const std::vector<std::string>& candidates);

  // The process-wide driver, loaded from defaultCandidates() on first use and never unloaded
  // (after cuInit the driver owns threads and exit handlers). Thread-safe.
  static const CudaDriverApi& shared();

  bool loaded() const noexcept { return loaded_; }
  const std::string& loadError() const noexcept { return loadError_; }
  const std::string& libraryPath() const noexcept { return libraryPath_; }

  cuda::InitFn init = nullptr;
  cuda::DriverGetVersionFn driverGetVersion = nullptr;
  cuda::DeviceGetCountFn deviceGetCount = nullptr;
  cuda::DeviceGetFn deviceGet = nullptr;
  cuda::DeviceGetNameFn deviceGetName = nullptr;
  cuda::DeviceTotalMemFn deviceTotalMem = nullptr;
  cuda::DeviceGetAttributeFn deviceGetAttribute = nullptr;
  cuda::DeviceGetPciBusIdFn deviceGetPciBusId = nullptr;
  // Optional: only used to name error codes.
  cuda::GetErrorTextFn getErrorName = nullptr;
  cuda::GetErrorTextFn getErrorString = nullptr;

  // Execution entry points: resolved at load, but only probing needs to succeed for loaded();
  // executionReady() says whether engines can run, executionError() which symbols are missing.
  bool executionReady() const noexcept { return executionReady_; }
  const std::string& executionError() const noexcept { return executionError_; }
  cuda::DevicePrimaryCtxRetainFn devicePrimaryCtxRetain = nullptr;
  cuda::DevicePrimaryCtxReleaseFn devicePrimaryCtxRelease = nullptr;
  // Optional (executionReady() does not need them): how the primary context waits for the GPU.
  cuda::DevicePrimaryCtxGetStateFn devicePrimaryCtxGetState = nullptr;
  cuda::DevicePrimaryCtxSetFlagsFn devicePrimaryCtxSetFlags = nullptr;
  cuda::CtxSetCurrentFn ctxSetCurrent = nullptr;
  cuda::CtxGetCurrentFn ctxGetCurrent = nullptr;
  cuda::MemAllocFn memAlloc = nullptr;
  cuda::MemFreeFn memFree = nullptr;
  cuda::MemHostAllocFn memHostAlloc = nullptr;
  cuda::MemFreeHostFn memFreeHost = nullptr;
  cuda::MemcpyHtoDAsyncFn memcpyHtoDAsync = nullptr;
  cuda::MemcpyDtoHAsyncFn memcpyDtoHAsync = nullptr;
  cuda::StreamCreateFn streamCreate = nullptr;
  cuda::StreamDestroyFn streamDestroy = nullptr;
  cuda::StreamSynchronizeFn streamSynchronize = nullptr;
  cuda::EventCreateFn eventCreate = nullptr;
  cuda::EventDestroyFn eventDestroy = nullptr;
  cuda::EventRecordFn eventRecord = nullptr;
  cuda::EventSynchronizeFn eventSynchronize = nullptr;
  cuda::EventElapsedTimeFn eventElapsedTime = nullptr;
  cuda::StreamBeginCaptureFn streamBeginCapture = nullptr;
  cuda::StreamEndCaptureFn streamEndCapture = nullptr;
  cuda::GraphInstantiateWithFlagsFn graphInstantiateWithFlags = nullptr;
  cuda::GraphLaunchFn graphLaunch = nullptr;
  cuda::GraphDestroyFn graphDestroy = nullptr;
  cuda::GraphExecDestroyFn graphExecDestroy = nullptr;

  // "cuInit failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected", or with the
  // number alone when the driver cannot name it.
  std::string describeError(const char* call, cuda::Result result) const;

 private:
  CudaDriverApi() = default;

  DynamicLibrary library_;
  bool loaded_ = false;
  std::string loadError_;
  bool executionReady_ = false;
  std::string executionError_;
  std::string libraryPath_;
};

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int computeCapabilityMajor = 0;
  int computeCapabilityMinor = 0;
  std::uint64_t totalMemoryBytes = 0;
  std::string pciBusId;
};

struct CudaDriverInfo {
  // True when the driver loaded and cuInit succeeded.
  bool driverAvailable = false;
  // cuDriverGetVersion's encoding, 1000 * major + 10 * minor; 0 when unknown.
  int driverVersion = 0;
  std::string libraryPath;
  // Why the driver is unavailable, or which device queries failed; empty when all is well.
  std::string reason;
  std::vector<CudaDeviceInfo> devices;
};

// Queries the driver and every device it reports. Safe to call from any thread, any number of
// times (cuInit is idempotent).
CudaDriverInfo probeCudaDriver(const CudaDriverApi& api);

// "12.4" for 12040.
std::string formatCudaVersion(int version);

// The oldest driver CUDA version (cuDriverGetVersion's encoding) that some package of TensorRT
// `major` runs on: 10.x shipped for CUDA 11.8, 12.x and (from 10.13) 13.x; 11.x for 12.x and 13.x.
// CUDA's minor version compatibility lets a CUDA 12.x package run on any 12.0+ driver (R525+),
// a 13.x package needs R580+. 0 when unknown. Below it, no package of that TensorRT can run.
int minimumDriverVersionForTensorRt(int major);

// What getRuntimeInfo says about the driver and the loaded TensorRT major.
struct DriverSufficiency {
  int requiredVersion = 0;  // minimumDriverVersionForTensorRt; 0 when unknown
  bool sufficient = false;  // driver version known and >= requiredVersion
  std::string note;         // why not, or which packages it runs
};
DriverSufficiency judgeDriverForTensorRt(int driverVersion, int tensorrtMajor);

}  // namespace spleen_trt::core
