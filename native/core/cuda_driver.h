// Probes the CUDA driver (libcuda.so.1 / nvcuda.dll) through dlsym, so the addon builds without
// cuda.h and loads on machines without a driver. The few driver API types it needs are declared
// here; when the build finds cuda.h, cuda_driver.cc checks these declarations against it.
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

  // "cuInit failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected", or with the
  // number alone when the driver cannot name it.
  std::string describeError(const char* call, cuda::Result result) const;

 private:
  CudaDriverApi() = default;

  DynamicLibrary library_;
  bool loaded_ = false;
  std::string loadError_;
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

}  // namespace spleen_trt::core
