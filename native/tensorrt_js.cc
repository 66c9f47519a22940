#include "tensorrt_js.h"

#include "core/tensorrt_status.h"

namespace spleen_trt {

namespace {

// Opening libnvinfer maps hundreds of megabytes: done on the libuv pool, not the JS thread.
class TensorRtStatusWorker : public Napi::AsyncWorker {
 public:
  explicit TensorRtStatusWorker(Napi::Env env)
      : Napi::AsyncWorker(env, "spleen_trt:getTensorRtStatus"), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override { status_ = core::tensorRtStatus(); }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object object = Napi::Object::New(env);
    object.Set("available", status_.available);
    if (!status_.version.empty()) object.Set("version", status_.version);
    if (!status_.reason.empty()) object.Set("reason", status_.reason);
    deferred_.Resolve(object);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  core::TensorRtStatus status_;
};

Napi::Value GetTensorRtStatusAsync(const Napi::CallbackInfo& info) {
  auto* worker = new TensorRtStatusWorker(info.Env());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void RegisterTensorRt(Napi::Env env, Napi::Object exports) {
  exports.Set("getTensorRtStatusAsync", Napi::Function::New(env, GetTensorRtStatusAsync, "getTensorRtStatusAsync"));
  exports.Set("buildEngine", Napi::Function::New(env, BuildEngine, "buildEngine"));
  exports.Set("loadEngine", Napi::Function::New(env, LoadEngine, "loadEngine"));
  exports.Set("engineRun", Napi::Function::New(env, EngineRun, "engineRun"));
  exports.Set("engineClose", Napi::Function::New(env, EngineClose, "engineClose"));
}

}  // namespace spleen_trt
