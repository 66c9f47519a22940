// getRuntimeInfo / getRuntimeInfoAsync: pack core::RuntimeInfo into the JS object that
// src/native/addon.ts types as NativeAddonRuntimeInfo.
#pragma once

#include <napi.h>

#include "core/runtime_info.h"

namespace spleen_trt {

Napi::Object RuntimeInfoToJs(Napi::Env env, const core::RuntimeInfo& info);

// Synchronous: blocks the event loop for as long as cuInit takes. For scripts and tests.
Napi::Value GetRuntimeInfo(const Napi::CallbackInfo& info);

// Returns a promise; the probing runs on the libuv thread pool.
Napi::Value GetRuntimeInfoAsync(const Napi::CallbackInfo& info);

}  // namespace spleen_trt
