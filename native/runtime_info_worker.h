// Collects core::RuntimeInfo on the libuv thread pool and settles a promise with it.
#pragma once

#include <napi.h>

#include "core/runtime_info.h"

namespace spleen_trt {

class RuntimeInfoWorker : public Napi::AsyncWorker {
 public:
  explicit RuntimeInfoWorker(Napi::Env env);

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  // Worker thread: plain C++ only, no JS values.
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  Napi::Promise::Deferred deferred_;
  core::RuntimeInfo result_;
};

}  // namespace spleen_trt
