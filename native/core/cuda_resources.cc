#include "core/cuda_resources.h"

namespace spleen_trt::core::gpu {

namespace {

// CUDA_ERROR_* numbers, as cuda.h defines them (checked there in cuda_driver.cc's build).
constexpr cuda::Result kNotInitialized = 3;
constexpr cuda::Result kDeinitialized = 4;
constexpr cuda::Result kOutOfMemory = 2;
constexpr cuda::Result kNoDevice = 100;
constexpr cuda::Result kInvalidDevice = 101;
constexpr cuda::Result kInsufficientDriver = 35;
constexpr cuda::Result kSystemDriverMismatch = 803;
constexpr cuda::Result kCompatNotSupportedOnDevice = 804;
constexpr cuda::Result kDevicesUnavailable = 46;

}  // namespace

const CudaDriverApi& requireDriver() {
  const CudaDriverApi& api = CudaDriverApi::shared();
  if (!api.loaded()) throw NativeError(ErrorCode::kNoGpu, "No usable CUDA driver: " + api.loadError());
  if (!api.executionReady()) throw NativeError(ErrorCode::kNoGpu, "No usable CUDA driver: " + api.executionError());
  return api;
}

ErrorCode classify(cuda::Result result, ErrorCode otherwise) {
  if (cuda::isStickyError(result)) return ErrorCode::kGpuFault;
  switch (result) {
    case kNotInitialized:
    case kDeinitialized:
    case kNoDevice:
    case kInvalidDevice:
    case kInsufficientDriver:
    case kSystemDriverMismatch:
    case kCompatNotSupportedOnDevice:
    case kDevicesUnavailable:
      return ErrorCode::kNoGpu;
    case kOutOfMemory:
      return ErrorCode::kOutOfMemory;
    default:
      return otherwise;
  }
}

void check(const CudaDriverApi& api, cuda::Result result, const char* what, ErrorCode otherwise) {
  if (result == cuda::kSuccess) return;
  std::string message = api.describeError(what, result);
  if (cuda::isStickyError(result)) {
    message += " (a sticky CUDA error: this process can no longer use the GPU's context; restart it)";
  }
  throw NativeError(classify(result, otherwise), message);
}

PrimaryContext::PrimaryContext(const CudaDriverApi& api, int device) : api_(api), device_(device) {
  const cuda::Result init = api.init(0);
  if (init != cuda::kSuccess) {
    std::string message = "No usable CUDA device: " + api.describeError("cuInit(0)", init);
    int version = 0;
    if (api.driverGetVersion(&version) == cuda::kSuccess && version != 0) {
      message += " (the driver supports CUDA " + formatCudaVersion(version) + ")";
    }
    throw NativeError(ErrorCode::kNoGpu, message);
  }
  int count = 0;
  check(api, api.deviceGetCount(&count), "cuDeviceGetCount", ErrorCode::kNoGpu);
  if (device < 0 || device >= count) {
    throw NativeError(ErrorCode::kNoGpu, "CUDA device " + std::to_string(device) + " does not exist (" +
                                             std::to_string(count) + " device(s) visible)");
  }
  cuda::Device handle = 0;
  check(api, api.deviceGet(&handle, device), "cuDeviceGet", ErrorCode::kNoGpu);
  preferBlockingSync(api, handle);
  check(api, api.devicePrimaryCtxRetain(&context_, handle), "cuDevicePrimaryCtxRetain", ErrorCode::kNoGpu);
}

// CUDA's default scheduling (CU_CTX_SCHED_AUTO) spins the waiting thread on a core whenever the
// process has fewer active contexts than logical cores: on a 2-core host every wait for the GPU
// (a stream synchronize, a launch that finds the queue full, TensorRT's own waits) would burn the
// core that the sliding window's stitch kernels need while the network runs. Blocking sync sleeps
// the thread on an OS primitive instead. Its cost is the wake-up, tens of microseconds once per
// wait, against milliseconds of GPU work per batch (~2 ms a window): below 1 %. Set before the
// retain (flags apply to the context from its creation; the _v2 call also updates one that is
// already active). Only where nobody chose a scheduling mode: a process (or library) that asked
// for spinning or yielding keeps it. Advice, like the events' own blocking-sync flag: a driver
// without these entry points, or one that refuses, leaves the scheduling as it was.
void PrimaryContext::preferBlockingSync(const CudaDriverApi& api, cuda::Device handle) {
  if (api.devicePrimaryCtxGetState == nullptr || api.devicePrimaryCtxSetFlags == nullptr) return;
  unsigned flags = 0;
  int active = 0;
  if (api.devicePrimaryCtxGetState(handle, &flags, &active) != cuda::kSuccess) return;
  if ((flags & cuda::kCtxSchedMask) != cuda::kCtxSchedAuto) return;
  api.devicePrimaryCtxSetFlags(handle, (flags & ~cuda::kCtxSchedMask) | cuda::kCtxSchedBlockingSync);
}

PrimaryContext::~PrimaryContext() {
  if (context_ != nullptr) api_.devicePrimaryCtxRelease(device_);
}

void PrimaryContext::makeCurrent() const {
  cuda::Context current = nullptr;
  if (api_.ctxGetCurrent(&current) == cuda::kSuccess && current == context_) return;
  check(api_, api_.ctxSetCurrent(context_), "cuCtxSetCurrent", ErrorCode::kNoGpu);
}

DeviceBuffer allocateDevice(const CudaDriverApi& api, std::size_t bytes, const char* what) {
  cuda::DevicePtr pointer = 0;
  const cuda::Result result = api.memAlloc(&pointer, bytes);
  if (result != cuda::kSuccess) {
    throw NativeError(classify(result, ErrorCode::kOutOfMemory),
                      api.describeError(("cuMemAlloc of " + std::to_string(bytes) + " bytes (" + what + ")").c_str(),
                                        result));
  }
  return DeviceBuffer(reinterpret_cast<void*>(static_cast<std::uintptr_t>(pointer)), DeviceFree{&api});
}

PinnedBuffer allocatePinned(const CudaDriverApi& api, std::size_t bytes, const char* what) {
  void* pointer = nullptr;
  const cuda::Result result = api.memHostAlloc(&pointer, bytes, 0);
  if (result != cuda::kSuccess) {
    throw NativeError(classify(result, ErrorCode::kOutOfMemory),
                      api.describeError(("cuMemHostAlloc of " + std::to_string(bytes) + " bytes (" + what + ")").c_str(),
                                        result));
  }
  return PinnedBuffer(pointer, {&api});
}

Stream createStream(const CudaDriverApi& api) {
  cuda::Stream stream = nullptr;
  check(api, api.streamCreate(&stream, cuda::kStreamNonBlocking), "cuStreamCreate");
  return Stream(stream, {&api});
}

Event createEvent(const CudaDriverApi& api) {
  cuda::Event event = nullptr;
  check(api, api.eventCreate(&event, cuda::kEventBlockingSync), "cuEventCreate");
  return Event(event, {&api});
}

double elapsedMs(const CudaDriverApi& api, cuda::Event start, cuda::Event end) {
  float ms = 0.0f;
  check(api, api.eventElapsedTime(&ms, start, end), "cuEventElapsedTime");
  return static_cast<double>(ms);
}

}  // namespace spleen_trt::core::gpu
