#include "memory_js.h"

#include <cstdint>

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
  memory.Set("setHugePageAdvice", Napi::Function::New(env, SetHugePageAdvice, "setHugePageAdvice"));
  exports.Set("memory", memory);
}

}  // namespace spleen_trt
