#include "core/cuda_driver.h"

#include <array>
#include <type_traits>
#include <utility>

#ifdef SPLEEN_TRT_HAVE_CUDA_H
// Compile-time proof that the local declarations match the driver API the build machine has.
#include <cuda.h>

namespace {
namespace local = spleen_trt::core::cuda;
static_assert(sizeof(CUresult) == sizeof(local::Result), "CUresult must be int-sized");
static_assert(sizeof(CUdevice_attribute) == sizeof(int), "CUdevice_attribute must be int-sized");
static_assert(std::is_same_v<CUdevice, local::Device>, "CUdevice must be int");
static_assert(CUDA_SUCCESS == local::kSuccess);
static_assert(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR == local::kAttributeComputeCapabilityMajor);
static_assert(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR == local::kAttributeComputeCapabilityMinor);
static_assert(std::is_same_v<decltype(&::cuInit), CUresult (*)(unsigned int)>);
static_assert(std::is_same_v<decltype(&::cuDriverGetVersion), CUresult (*)(int*)>);
static_assert(std::is_same_v<decltype(&::cuDeviceGetCount), CUresult (*)(int*)>);
static_assert(std::is_same_v<decltype(&::cuDeviceGet), CUresult (*)(CUdevice*, int)>);
static_assert(std::is_same_v<decltype(&::cuDeviceGetName), CUresult (*)(char*, int, CUdevice)>);
static_assert(std::is_same_v<decltype(&::cuDeviceTotalMem_v2), CUresult (*)(std::size_t*, CUdevice)>);
static_assert(std::is_same_v<decltype(&::cuDeviceGetAttribute),
                             CUresult (*)(int*, CUdevice_attribute, CUdevice)>);
static_assert(std::is_same_v<decltype(&::cuDeviceGetPCIBusId), CUresult (*)(char*, int, CUdevice)>);
static_assert(std::is_same_v<decltype(&::cuGetErrorName), CUresult (*)(CUresult, const char**)>);
static_assert(std::is_same_v<decltype(&::cuGetErrorString), CUresult (*)(CUresult, const char**)>);
// Execution entry points. cuda.h maps the plain names onto the versioned symbols (cuMemAlloc ->
// cuMemAlloc_v2 ...), which are the names load() resolves.
static_assert(sizeof(CUdeviceptr) == sizeof(local::DevicePtr));
static_assert(sizeof(CUstreamCaptureMode) == sizeof(int));
static_assert(CU_STREAM_NON_BLOCKING == local::kStreamNonBlocking);
static_assert(CU_EVENT_BLOCKING_SYNC == local::kEventBlockingSync);
static_assert(CU_STREAM_CAPTURE_MODE_THREAD_LOCAL == local::kStreamCaptureModeThreadLocal);
static_assert(CUDA_ERROR_NOT_READY == local::kErrorNotReady);
static_assert(CU_CTX_SCHED_MASK == local::kCtxSchedMask && CU_CTX_SCHED_AUTO == local::kCtxSchedAuto &&
              CU_CTX_SCHED_BLOCKING_SYNC == local::kCtxSchedBlockingSync);
static_assert(std::is_same_v<decltype(&::cuDevicePrimaryCtxGetState), CUresult (*)(CUdevice, unsigned int*, int*)>);
static_assert(std::is_same_v<decltype(&::cuDevicePrimaryCtxSetFlags_v2), CUresult (*)(CUdevice, unsigned int)>);
static_assert(std::is_same_v<decltype(&::cuDevicePrimaryCtxRetain), CUresult (*)(CUcontext*, CUdevice)>);
static_assert(std::is_same_v<decltype(&::cuDevicePrimaryCtxRelease_v2), CUresult (*)(CUdevice)>);
static_assert(std::is_same_v<decltype(&::cuCtxSetCurrent), CUresult (*)(CUcontext)>);
static_assert(std::is_same_v<decltype(&::cuCtxGetCurrent), CUresult (*)(CUcontext*)>);
static_assert(std::is_same_v<decltype(&::cuMemAlloc_v2), CUresult (*)(CUdeviceptr*, std::size_t)>);
static_assert(std::is_same_v<decltype(&::cuMemFree_v2), CUresult (*)(CUdeviceptr)>);
static_assert(std::is_same_v<decltype(&::cuMemHostAlloc), CUresult (*)(void**, std::size_t, unsigned int)>);
static_assert(std::is_same_v<decltype(&::cuMemFreeHost), CUresult (*)(void*)>);
static_assert(std::is_same_v<decltype(&::cuMemcpyHtoDAsync_v2),
                             CUresult (*)(CUdeviceptr, const void*, std::size_t, CUstream)>);
static_assert(std::is_same_v<decltype(&::cuMemcpyDtoHAsync_v2),
                             CUresult (*)(void*, CUdeviceptr, std::size_t, CUstream)>);
static_assert(std::is_same_v<decltype(&::cuStreamCreate), CUresult (*)(CUstream*, unsigned int)>);
static_assert(std::is_same_v<decltype(&::cuStreamDestroy_v2), CUresult (*)(CUstream)>);
static_assert(std::is_same_v<decltype(&::cuStreamSynchronize), CUresult (*)(CUstream)>);
static_assert(std::is_same_v<decltype(&::cuEventCreate), CUresult (*)(CUevent*, unsigned int)>);
static_assert(std::is_same_v<decltype(&::cuEventDestroy_v2), CUresult (*)(CUevent)>);
static_assert(std::is_same_v<decltype(&::cuEventRecord), CUresult (*)(CUevent, CUstream)>);
static_assert(std::is_same_v<decltype(&::cuEventSynchronize), CUresult (*)(CUevent)>);
static_assert(std::is_same_v<decltype(&::cuEventElapsedTime), CUresult (*)(float*, CUevent, CUevent)>);
static_assert(std::is_same_v<decltype(&::cuStreamBeginCapture_v2), CUresult (*)(CUstream, CUstreamCaptureMode)>);
static_assert(std::is_same_v<decltype(&::cuStreamEndCapture), CUresult (*)(CUstream, CUgraph*)>);
static_assert(std::is_same_v<decltype(&::cuGraphInstantiateWithFlags),
                             CUresult (*)(CUgraphExec*, CUgraph, unsigned long long)>);
static_assert(std::is_same_v<decltype(&::cuGraphLaunch), CUresult (*)(CUgraphExec, CUstream)>);
static_assert(std::is_same_v<decltype(&::cuGraphDestroy), CUresult (*)(CUgraph)>);
static_assert(std::is_same_v<decltype(&::cuGraphExecDestroy), CUresult (*)(CUgraphExec)>);
static_assert(CUDA_ERROR_ILLEGAL_ADDRESS == 700 && CUDA_ERROR_LAUNCH_FAILED == 719 &&
              CUDA_ERROR_MISALIGNED_ADDRESS == 716 && CUDA_ERROR_ILLEGAL_INSTRUCTION == 715 &&
              CUDA_ERROR_INVALID_ADDRESS_SPACE == 717 && CUDA_ERROR_INVALID_PC == 718 &&
              CUDA_ERROR_HARDWARE_STACK_ERROR == 714 && CUDA_ERROR_ASSERT == 710 &&
              CUDA_ERROR_ECC_UNCORRECTABLE == 214 && CUDA_ERROR_LAUNCH_TIMEOUT == 702);
}  // namespace
#endif

namespace spleen_trt::core {

std::vector<std::string> CudaDriverApi::defaultCandidates() {
#if defined(_WIN32)
  return {"nvcuda.dll"};
#else
  // Only the runtime soname: libcuda.so (no suffix) is the development symlink, and on a machine
  // with the toolkit but no driver it can point at the link-time stub, whose cuInit always fails.
  return {"libcuda.so.1"};
#endif
}

std::unique_ptr<CudaDriverApi> CudaDriverApi::load(const std::vector<std::string>& candidates) {
  std::unique_ptr<CudaDriverApi> api(new CudaDriverApi());
  std::vector<OpenFailure> failures;
  api->library_ = openFirst(candidates, DynamicLibrary::Binding::kNow, &failures);
  if (!api->library_.isLoaded()) {
    api->loadError_ = "CUDA driver library not found (" + describeFailures(failures) + ")";
    return api;
  }
  api->libraryPath_ = api->library_.path();

  std::string missing;
  auto resolve = [&](auto& slot, const char* name) {
    std::string error;
    slot = api->library_.function<std::remove_reference_t<decltype(slot)>>(name, &error);
    if (slot == nullptr) missing += (missing.empty() ? "" : "; ") + error;
  };
  resolve(api->init, "cuInit");
  resolve(api->driverGetVersion, "cuDriverGetVersion");
  resolve(api->deviceGetCount, "cuDeviceGetCount");
  resolve(api->deviceGet, "cuDeviceGet");
  resolve(api->deviceGetName, "cuDeviceGetName");
  resolve(api->deviceTotalMem, "cuDeviceTotalMem_v2");
  resolve(api->deviceGetAttribute, "cuDeviceGetAttribute");
  resolve(api->deviceGetPciBusId, "cuDeviceGetPCIBusId");
  if (!missing.empty()) {
    api->loadError_ = "CUDA driver " + api->libraryPath_ + " lacks required symbols: " + missing;
    return api;
  }
  api->getErrorName = api->library_.function<cuda::GetErrorTextFn>("cuGetErrorName", nullptr);
  api->getErrorString = api->library_.function<cuda::GetErrorTextFn>("cuGetErrorString", nullptr);
  api->loaded_ = true;

  missing.clear();
  resolve(api->devicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  resolve(api->devicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
  resolve(api->ctxSetCurrent, "cuCtxSetCurrent");
  resolve(api->ctxGetCurrent, "cuCtxGetCurrent");
  resolve(api->memAlloc, "cuMemAlloc_v2");
  resolve(api->memFree, "cuMemFree_v2");
  resolve(api->memHostAlloc, "cuMemHostAlloc");
  resolve(api->memFreeHost, "cuMemFreeHost");
  resolve(api->memcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
  resolve(api->memcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
  resolve(api->streamCreate, "cuStreamCreate");
  resolve(api->streamDestroy, "cuStreamDestroy_v2");
  resolve(api->streamSynchronize, "cuStreamSynchronize");
  resolve(api->eventCreate, "cuEventCreate");
  resolve(api->eventDestroy, "cuEventDestroy_v2");
  resolve(api->eventRecord, "cuEventRecord");
  resolve(api->eventSynchronize, "cuEventSynchronize");
  // The unversioned symbol: every driver exports it (the _v2 of CUDA 12.8+ only changes
  // behaviour for events recorded in graphs, which these are not).
  resolve(api->eventElapsedTime, "cuEventElapsedTime");
  resolve(api->streamBeginCapture, "cuStreamBeginCapture_v2");
  resolve(api->streamEndCapture, "cuStreamEndCapture");
  resolve(api->graphInstantiateWithFlags, "cuGraphInstantiateWithFlags");  // CUDA 11.4+
  resolve(api->graphLaunch, "cuGraphLaunch");
  resolve(api->graphDestroy, "cuGraphDestroy");
  resolve(api->graphExecDestroy, "cuGraphExecDestroy");
  // Optional: without them the primary context keeps its scheduling (see gpu::PrimaryContext).
  api->devicePrimaryCtxGetState =
      api->library_.function<cuda::DevicePrimaryCtxGetStateFn>("cuDevicePrimaryCtxGetState", nullptr);
  api->devicePrimaryCtxSetFlags =
      api->library_.function<cuda::DevicePrimaryCtxSetFlagsFn>("cuDevicePrimaryCtxSetFlags_v2", nullptr);
  if (missing.empty()) {
    api->executionReady_ = true;
  } else {
    api->executionError_ = "CUDA driver " + api->libraryPath_ + " lacks entry points engines need: " + missing;
  }
  return api;
}

const CudaDriverApi& CudaDriverApi::shared() {
  // Leaked on purpose: destroying it at exit would dlclose a driver that cuInit has started.
  static const CudaDriverApi* const instance = [] {
    std::unique_ptr<CudaDriverApi> api = load(defaultCandidates());
    api->library_.keepLoadedForever();
    return api.release();
  }();
  return *instance;
}

std::string CudaDriverApi::describeError(const char* call, cuda::Result result) const {
  std::string text = std::string(call) + " failed: ";
  const char* name = nullptr;
  const char* description = nullptr;
  if (getErrorName != nullptr && getErrorName(result, &name) != cuda::kSuccess) name = nullptr;
  if (getErrorString != nullptr && getErrorString(result, &description) != cuda::kSuccess) {
    description = nullptr;
  }
  if (name != nullptr) {
    text += std::string(name) + " (" + std::to_string(result) + ")";
  } else {
    text += "CUDA error " + std::to_string(result);
  }
  if (description != nullptr) text += ": " + std::string(description);
  return text;
}

namespace cuda {
bool isStickyError(Result result) noexcept {
  switch (result) {
    case 214:  // CUDA_ERROR_ECC_UNCORRECTABLE
    case 700:  // CUDA_ERROR_ILLEGAL_ADDRESS
    case 702:  // CUDA_ERROR_LAUNCH_TIMEOUT
    case 710:  // CUDA_ERROR_ASSERT
    case 714:  // CUDA_ERROR_HARDWARE_STACK_ERROR
    case 715:  // CUDA_ERROR_ILLEGAL_INSTRUCTION
    case 716:  // CUDA_ERROR_MISALIGNED_ADDRESS
    case 717:  // CUDA_ERROR_INVALID_ADDRESS_SPACE
    case 718:  // CUDA_ERROR_INVALID_PC
    case 719:  // CUDA_ERROR_LAUNCH_FAILED
      return true;
    default:
      return false;
  }
}
}  // namespace cuda

int minimumDriverVersionForTensorRt(int major) {
  if (major == 10) return 11080;
  if (major == 11) return 12000;
  return 0;
}

DriverSufficiency judgeDriverForTensorRt(int driverVersion, int tensorrtMajor) {
  DriverSufficiency result;
  result.requiredVersion = minimumDriverVersionForTensorRt(tensorrtMajor);
  if (driverVersion == 0) {
    result.note = "the CUDA driver's version is unknown";
  } else if (result.requiredVersion == 0) {
    result.note = "no known CUDA requirement for TensorRT " + std::to_string(tensorrtMajor);
  } else if (driverVersion < result.requiredVersion) {
    result.note = "the CUDA driver supports CUDA " + formatCudaVersion(driverVersion) + "; TensorRT " +
                  std::to_string(tensorrtMajor) + " needs at least CUDA " +
                  formatCudaVersion(result.requiredVersion) + ": update the NVIDIA driver";
  } else {
    result.sufficient = true;
    result.note = driverVersion >= 13000 ? "runs TensorRT packages for CUDA 12.x and 13.x"
                  : driverVersion >= 12000
                      ? "runs TensorRT packages for CUDA 12.x, not those for CUDA 13.x (they need an R580+ driver)"
                      : "runs only TensorRT packages for CUDA 11.8";
  }
  return result;
}

std::string formatCudaVersion(int version) {
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

CudaDriverInfo probeCudaDriver(const CudaDriverApi& api) {
  CudaDriverInfo info;
  if (!api.loaded()) {
    info.reason = api.loadError();
    return info;
  }
  info.libraryPath = api.libraryPath();

  // cuDriverGetVersion works before cuInit, so the version is known even when init fails
  // (a driver too old for the GPU, or no GPU at all).
  int version = 0;
  if (api.driverGetVersion(&version) == cuda::kSuccess) info.driverVersion = version;

  const cuda::Result initResult = api.init(0);
  if (initResult != cuda::kSuccess) {
    info.reason = api.describeError("cuInit(0)", initResult);
    return info;
  }
  info.driverAvailable = true;

  int count = 0;
  const cuda::Result countResult = api.deviceGetCount(&count);
  if (countResult != cuda::kSuccess) {
    info.reason = api.describeError("cuDeviceGetCount", countResult);
    return info;
  }

  std::string deviceErrors;
  for (int ordinal = 0; ordinal < count; ++ordinal) {
    CudaDeviceInfo device;
    device.index = ordinal;
    cuda::Device handle = 0;
    std::array<char, 256> name{};
    std::array<char, 32> busId{};  // "0000:00:00.0" is 13 characters with the terminator
    std::size_t bytes = 0;
    cuda::Result result = api.deviceGet(&handle, ordinal);
    const char* failedCall = "cuDeviceGet";
    if (result == cuda::kSuccess) {
      failedCall = "cuDeviceGetName";
      result = api.deviceGetName(name.data(), static_cast<int>(name.size()), handle);
    }
    if (result == cuda::kSuccess) {
      failedCall = "cuDeviceTotalMem_v2";
      result = api.deviceTotalMem(&bytes, handle);
    }
    if (result == cuda::kSuccess) {
      failedCall = "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MAJOR)";
      result = api.deviceGetAttribute(&device.computeCapabilityMajor,
                                      cuda::kAttributeComputeCapabilityMajor, handle);
    }
    if (result == cuda::kSuccess) {
      failedCall = "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MINOR)";
      result = api.deviceGetAttribute(&device.computeCapabilityMinor,
                                      cuda::kAttributeComputeCapabilityMinor, handle);
    }
    if (result == cuda::kSuccess) {
      failedCall = "cuDeviceGetPCIBusId";
      result = api.deviceGetPciBusId(busId.data(), static_cast<int>(busId.size()), handle);
    }
    if (result != cuda::kSuccess) {
      // One broken device (fallen off the bus, say) must not hide the others.
      if (!deviceErrors.empty()) deviceErrors += "; ";
      deviceErrors += "device " + std::to_string(ordinal) + ": " + api.describeError(failedCall, result);
      continue;
    }
    // The driver writes NUL-terminated strings, but a buggy one must not make us read past the end.
    name.back() = '\0';
    busId.back() = '\0';
    device.name = name.data();
    device.pciBusId = busId.data();
    device.totalMemoryBytes = static_cast<std::uint64_t>(bytes);
    info.devices.push_back(std::move(device));
  }
  info.reason = deviceErrors;
  return info;
}

}  // namespace spleen_trt::core
