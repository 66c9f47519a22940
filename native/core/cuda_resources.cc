#include "core/cuda_resources.h"

#include "core/cuda_driver.h"

namespace spleen_trt::core::cuda_rt {

std::string describe(cudaError_t error) {
  const char* name = cudaGetErrorName(error);
  const char* text = cudaGetErrorString(error);
  return std::string(name != nullptr ? name : "cudaError") + " (" +
         std::to_string(static_cast<int>(error)) + "): " + (text != nullptr ? text : "unknown");
}

ErrorCode classify(cudaError_t error, ErrorCode otherwise) {
  switch (error) {
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
      return ErrorCode::kNoGpu;
    case cudaErrorMemoryAllocation:
      return ErrorCode::kOutOfMemory;
    default:
      return otherwise;
  }
}

void check(cudaError_t error, const char* what, ErrorCode otherwise) {
  if (error == cudaSuccess) return;
  // Clears a non-sticky error so the next call on this thread does not report it again.
  cudaGetLastError();
  throw NativeError(classify(error, otherwise), std::string(what) + " failed: " + describe(error));
}

void selectDevice(int device) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    cudaGetLastError();
    std::string message = "No usable CUDA device: cudaGetDeviceCount failed: " + describe(error);
    // The runtime says "driver version is insufficient" even when there is no driver at all; the
    // driver probe (the same one getRuntimeInfo uses) tells which.
    const CudaDriverInfo driver = probeCudaDriver(CudaDriverApi::shared());
    if (!driver.reason.empty()) {
      message += " (CUDA driver: " + driver.reason + ")";
    } else if (driver.driverVersion != 0) {
      message += " (the CUDA driver supports CUDA " + formatCudaVersion(driver.driverVersion) +
                 "; this addon's runtime needs CUDA " + std::to_string(CUDART_VERSION / 1000) + "." +
                 std::to_string(CUDART_VERSION % 1000 / 10) + ")";
    }
    throw NativeError(ErrorCode::kNoGpu, message);
  }
  if (device < 0 || device >= count) {
    throw NativeError(ErrorCode::kNoGpu, "CUDA device " + std::to_string(device) +
                                             " does not exist (" + std::to_string(count) +
                                             " device(s) visible)");
  }
  check(cudaSetDevice(device), "cudaSetDevice", ErrorCode::kNoGpu);
}

DeviceBuffer allocateDevice(std::size_t bytes, const char* what) {
  void* pointer = nullptr;
  const cudaError_t error = cudaMalloc(&pointer, bytes);
  if (error != cudaSuccess) {
    cudaGetLastError();
    throw NativeError(classify(error, ErrorCode::kOutOfMemory),
                      std::string("cudaMalloc of ") + std::to_string(bytes) + " bytes (" + what +
                          ") failed: " + describe(error));
  }
  return DeviceBuffer(pointer);
}

PinnedBuffer allocatePinned(std::size_t bytes, const char* what) {
  void* pointer = nullptr;
  const cudaError_t error = cudaHostAlloc(&pointer, bytes, cudaHostAllocDefault);
  if (error != cudaSuccess) {
    cudaGetLastError();
    throw NativeError(classify(error, ErrorCode::kOutOfMemory),
                      std::string("cudaHostAlloc of ") + std::to_string(bytes) + " bytes (" +
                          what + ") failed: " + describe(error));
  }
  return PinnedBuffer(pointer);
}

Stream createStream() {
  cudaStream_t stream = nullptr;
  // Non-blocking: no implicit synchronisation with the legacy default stream, which other code
  // in the process (another addon, a plain cudaMemcpy) may use.
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  return Stream(stream);
}

Event createEvent() {
  cudaEvent_t event = nullptr;
  check(cudaEventCreate(&event), "cudaEventCreate");
  return Event(event);
}

double elapsedMs(cudaEvent_t start, cudaEvent_t end) {
  float ms = 0.0f;
  check(cudaEventElapsedTime(&ms, start, end), "cudaEventElapsedTime");
  return static_cast<double>(ms);
}

}  // namespace spleen_trt::core::cuda_rt
