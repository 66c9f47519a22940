#include "memory_js.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "core/huge_pages.h"

namespace spleen_trt {

namespace {

Napi::Value AdviseHugePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "Expected a TypedArray for view");
  Napi::TypedArray view = info[0].As<Napi::TypedArray>();
  auto* data = static_cast<std::uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
  core::adviseHugePages(data, view.ByteLength());
  return env.Undefined();
}

// Pages of the views faulted in on the pool; the views are referenced until it is done.
class PrefaultWorker : public Napi::AsyncWorker {
 public:
  PrefaultWorker(Napi::Env env, Napi::Array views)
      : Napi::AsyncWorker(env, "spleen_trt:prefault"), deferred_(Napi::Promise::Deferred::New(env)) {
    for (std::uint32_t i = 0; i < views.Length(); ++i) {
      Napi::TypedArray view = views.Get(i).As<Napi::TypedArray>();
      refs_.push_back(Napi::Persistent(view.As<Napi::Object>()));
      ranges_.emplace_back(static_cast<std::uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset(), view.ByteLength());
    }
  }
  Napi::Promise promise() const { return deferred_.Promise(); }
  void Execute() override {
    for (const auto& [data, size] : ranges_) populated_ = core::populateForWrite(data, size) && populated_;
  }
  void OnOK() override { deferred_.Resolve(Napi::Boolean::New(Env(), populated_)); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> refs_;
  std::vector<std::pair<std::uint8_t*, std::size_t>> ranges_;
  bool populated_ = true;
};

// prefault(views: ArrayBufferView[]): Promise<boolean>, false where the kernel cannot.
Napi::Value Prefault(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "Expected an array of TypedArrays for views");
  Napi::Array views = info[0].As<Napi::Array>();
  for (std::uint32_t i = 0; i < views.Length(); ++i) {
    if (!views.Get(i).IsTypedArray()) throw Napi::TypeError::New(env, "Expected an array of TypedArrays for views");
  }
  auto* worker = new PrefaultWorker(env, views);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// setHugePageAdvice(on: boolean): for A/B benches.
Napi::Value SetHugePageAdvice(const Napi::CallbackInfo& info) {
  if (!info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "Expected a boolean for on");
  core::setHugePageAdvice(info[0].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}

}  // namespace

void RegisterMemory(Napi::Env env, Napi::Object exports) {
  Napi::Object memory = Napi::Object::New(env);
  memory.Set("adviseHugePages", Napi::Function::New(env, AdviseHugePages, "adviseHugePages"));
  memory.Set("prefault", Napi::Function::New(env, Prefault, "prefault"));
  memory.Set("setHugePageAdvice", Napi::Function::New(env, SetHugePageAdvice, "setHugePageAdvice"));
  exports.Set("memory", memory);
}

}  // namespace spleen_trt
