// Module entry: registers the exports and the per-environment cleanup hook.
#include <napi.h>

#include <exception>
#include <utility>

#include "addon_state.h"
#include "gzip_js.h"
#include "memory_js.h"
#include "run_deflate_js.h"
#include "runtime_info_js.h"
#include "onednn_js.h"
#include "tensorrt_js.h"
#include "volume_kernels_js.h"

namespace spleen_trt {

AddonState& AddonState::of(Napi::Env env) { return *env.GetInstanceData<AddonState>(); }

void AddonState::onCleanup(std::function<void()> release) { cleanups_.push_back(std::move(release)); }

void AddonState::runCleanups() noexcept {
  while (!cleanups_.empty()) {
    std::function<void()> release = std::move(cleanups_.back());
    cleanups_.pop_back();
    try {
      release();
    } catch (const std::exception&) {
      // Teardown must go on: one failing release must not leak everything registered before it.
    }
  }
}

}  // namespace spleen_trt

namespace {

using spleen_trt::AddonState;
using spleen_trt::GetRuntimeInfo;
using spleen_trt::GetRuntimeInfoAsync;

// At file scope: NODE_API_MODULE pastes the function's name into an identifier.
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Instance data is deleted by Node after the cleanup hooks, so the hook below may use it.
  auto* state = new AddonState();
  env.SetInstanceData(state);
  env.AddCleanupHook([state]() { state->runCleanups(); });

  exports.Set("getRuntimeInfo", Napi::Function::New(env, GetRuntimeInfo, "getRuntimeInfo"));
  exports.Set("getRuntimeInfoAsync",
              Napi::Function::New(env, GetRuntimeInfoAsync, "getRuntimeInfoAsync"));
  spleen_trt::RegisterTensorRt(env, exports);
  spleen_trt::RegisterVolumeKernels(env, exports);
  spleen_trt::RegisterGzipCodec(env, exports);
  spleen_trt::RegisterRunDeflate(env, exports);
  spleen_trt::RegisterMemory(env, exports);
  spleen_trt::RegisterOnednn(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(spleen_trt, Init)
