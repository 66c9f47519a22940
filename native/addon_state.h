// Per-environment addon state. One exists for every Node environment (main thread or
// worker_thread) that loads the addon; process-wide state (the CUDA driver, TensorRT libraries)
// lives in core/ instead.
#pragma once

#include <napi.h>

#include <functional>
#include <vector>

namespace spleen_trt {

class AddonState {
 public:
  // The state of the environment `env`; created by the module initializer.
  static AddonState& of(Napi::Env env);

  // Registers `release` to run when the environment shuts down, newest first. Native objects that
  // hold GPU memory register here so it is freed deterministically at exit, before (and instead
  // of relying on) garbage-collection finalizers. Call from the JS thread only.
  void onCleanup(std::function<void()> release);

  // Runs and forgets every registered release; the env cleanup hook calls it.
  void runCleanups() noexcept;

 private:
  std::vector<std::function<void()>> cleanups_;
};

}  // namespace spleen_trt
