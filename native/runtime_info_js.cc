#include "runtime_info_js.h"

#include <string>

#include "runtime_info_worker.h"

namespace spleen_trt {

namespace {

// Optional fields are left out rather than set to undefined, so `'reason' in info` and JSON
// output agree.
void setIfNotEmpty(Napi::Object& object, const char* key, const std::string& value) {
  if (!value.empty()) object.Set(key, value);
}

Napi::Object CudaToJs(Napi::Env env, const core::CudaDriverInfo& cuda) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("driverAvailable", cuda.driverAvailable);
  if (cuda.driverVersion != 0) object.Set("driverVersion", core::formatCudaVersion(cuda.driverVersion));
  setIfNotEmpty(object, "libraryPath", cuda.libraryPath);
  setIfNotEmpty(object, "reason", cuda.reason);
  Napi::Array devices = Napi::Array::New(env, cuda.devices.size());
  for (std::size_t i = 0; i < cuda.devices.size(); ++i) {
    const core::CudaDeviceInfo& device = cuda.devices[i];
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("index", device.index);
    entry.Set("name", device.name);
    entry.Set("computeCapability", std::to_string(device.computeCapabilityMajor) + "." +
                                       std::to_string(device.computeCapabilityMinor));
    // Exact as a double: GPU memory sizes are far below 2^53 bytes.
    entry.Set("totalMemoryBytes", static_cast<double>(device.totalMemoryBytes));
    entry.Set("pciBusId", device.pciBusId);
    devices.Set(static_cast<uint32_t>(i), entry);
  }
  object.Set("devices", devices);
  return object;
}

Napi::Object TensorRtToJs(Napi::Env env, const core::TensorRtInfo& trt) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("available", trt.available);
  setIfNotEmpty(object, "version", trt.version);
  if (trt.major != 0) object.Set("major", trt.major);
  setIfNotEmpty(object, "libraryPath", trt.libraryPath);
  setIfNotEmpty(object, "reason", trt.reason);
  object.Set("parserAvailable", trt.parserAvailable);
  setIfNotEmpty(object, "parserLibraryPath", trt.parserLibraryPath);
  setIfNotEmpty(object, "parserReason", trt.parserReason);
  object.Set("builderResourceAvailable", trt.builderResource.available);
  setIfNotEmpty(object, "builderResourcePath", trt.builderResource.path);
  setIfNotEmpty(object, "builderResourceReason", trt.builderResource.reason);
  if (trt.major != 0) {
    // Whether the driver can run this TensorRT at all (the addon itself needs no CUDA runtime).
    if (trt.driver.requiredVersion != 0) {
      object.Set("requiredDriverCudaVersion", core::formatCudaVersion(trt.driver.requiredVersion));
    }
    object.Set("driverSufficient", trt.driver.sufficient);
    setIfNotEmpty(object, "driverNote", trt.driver.note);
  }
  return object;
}

Napi::Value OptionalString(Napi::Env env, const std::optional<std::string>& value) {
  return value ? Napi::Value(Napi::String::New(env, *value)) : env.Null();
}

}  // namespace

Napi::Object RuntimeInfoToJs(Napi::Env env, const core::RuntimeInfo& info) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("addonVersion", info.build.addonVersion);
  // The Node-API version of the running Node; the addon itself needs NAPI_VERSION.
  object.Set("napiVersion", Napi::VersionManagement::GetNapiVersion(env));
  object.Set("napiBuildVersion", NAPI_VERSION);
  object.Set("cuda", CudaToJs(env, info.cuda));
  object.Set("tensorrt", TensorRtToJs(env, info.tensorrt));
  Napi::Object compiledWith = Napi::Object::New(env);
  compiledWith.Set("cudaToolkit", OptionalString(env, info.build.cudaToolkit));
  compiledWith.Set("tensorrtHeaders", OptionalString(env, info.build.tensorrtHeaders));
  object.Set("compiledWith", compiledWith);
  return object;
}

Napi::Value GetRuntimeInfo(const Napi::CallbackInfo& info) {
  return RuntimeInfoToJs(info.Env(), core::collectRuntimeInfo());
}

Napi::Value GetRuntimeInfoAsync(const Napi::CallbackInfo& info) {
  // Queue() hands ownership to Node-API, which deletes the worker after OnOK/OnError.
  auto* worker = new RuntimeInfoWorker(info.Env());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace spleen_trt
